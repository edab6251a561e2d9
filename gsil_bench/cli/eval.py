"""`gsil-bench eval TARGET [--suite NAME ...] [--limit N] [--judge SPEC] [--config FILE]
[--set eval.KEY=VALUE]`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

COUNTS = frozenset({"n", "n_tasks"})  # metrics that are item counts, not scores


def eval_command(
    target: str = typer.Argument(..., help="A run folder, a model checkpoint or an HF name."),
    suite: list[str] = typer.Option(
        None,
        "--suite",
        "-s",
        help="mini, paper (gsm8k humaneval mt-bench hh-safety), one of those, or an lm-eval"
        " task name [default: the run's eval.suites; mini for a model]",
    ),
    limit: int = typer.Option(None, help="Evaluate at most N items per benchmark."),
    judge: str = typer.Option(None, help="Judge for mt-bench / hh-safety (see README)."),
    output: Path = typer.Option(None, help="Where to write the JSON record."),
    config: Path = typer.Option(
        None,
        "--config",
        help="A YAML file whose eval: section (benchmark sources, judge, options) is applied"
        " before --set.",
    ),
    set_: list[str] = typer.Option(
        [],
        "--set",
        help="Override an eval key, e.g. --set eval.options.gsm8k.source=gsm8k-test.jsonl",
    ),
) -> None:
    """Evaluate a model and write a result record next to it."""
    from gsil_bench.evaluation.target import evaluate_target

    record, path = evaluate_target(
        target,
        suites=suite or None,
        limit=limit,
        judge=judge,
        output=output,
        overrides=set_,
        config_file=config,
    )
    table = Table("benchmark", "metric", "value", "n", title=f"{target}")
    for name, result in record["benchmarks"].items():
        for metric, value in result["metrics"].items():
            if metric in COUNTS:  # the n column says it
                continue
            table.add_row(name, metric, f"{value:.4f}", str(len(result["items"])))
    console = Console()
    console.print(table)
    console.print(f"record: {path}  ({record['seconds']:.1f}s)")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
