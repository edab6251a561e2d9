"""`gsil-bench eval TARGET [--suite mini|paper|NAME ...] [--limit N] [--judge SPEC]`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table


def eval_command(
    target: str = typer.Argument(..., help="A run folder, a model checkpoint or an HF name."),
    suite: list[str] = typer.Option(
        ["mini"],
        "--suite",
        "-s",
        help="mini, paper (gsm8k humaneval mt-bench hh-safety), "
        "one of those, or an lm-eval task name.",
    ),
    limit: int = typer.Option(None, help="Evaluate at most N items per benchmark."),
    judge: str = typer.Option(None, help="Judge for mt-bench / hh-safety (see README)."),
    output: Path = typer.Option(None, help="Where to write the JSON record."),
) -> None:
    """Evaluate a model and write a result record next to it."""
    from gsil_bench.evaluation.target import evaluate_target

    record, path = evaluate_target(target, suites=suite, limit=limit, judge=judge, output=output)
    table = Table("benchmark", "metric", "value", "n", title=f"{target}")
    for name, result in record["benchmarks"].items():
        for metric, value in result["metrics"].items():
            table.add_row(name, metric, f"{value:.4f}", str(len(result["items"])))
    console = Console()
    console.print(table)
    console.print(f"record: {path}  ({record['seconds']:.1f}s)")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
