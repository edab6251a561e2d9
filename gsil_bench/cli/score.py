"""`gsil-bench score`: score generations made elsewhere (GSM8K, HumanEval, the mini suite)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from gsil_bench.errors import UserError
from gsil_bench.evaluation.result import BenchmarkResult

score_app = typer.Typer(
    help="Score a file of model generations; --json prints a machine-readable object.",
    no_args_is_help=True,
)

JSON_OPTION = typer.Option(False, "--json", help="Print a JSON object instead of a table.")


def _number(name: str, value: float) -> float | int | None:
    # JSON has no NaN; counts (n, n_tasks) print as integers, rates as floats.
    if math.isnan(value):
        return None
    return int(value) if name == "n" or name.startswith("n_") else float(value)


def _metrics(result: BenchmarkResult) -> dict[str, Any]:
    return {name: _number(name, value) for name, value in result.metrics.items()}


def _format(value: float | int | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _print_table(result: BenchmarkResult, note: str = "") -> None:
    table = Table(title=result.benchmark)
    table.add_column("metric", style="bold", no_wrap=True)
    table.add_column("value", justify="right")
    for name, value in result.metrics.items():
        table.add_row(name, _format(_number(name, value)))
    console = Console(highlight=False)
    console.print(table)
    if note:  # below the table, not as its caption: a caption wraps to the narrow table width
        console.print(note)


def _echo_json(data: dict[str, Any]) -> None:
    # Plain stdout, not Rich: JSON must not be wrapped or styled.
    typer.echo(json.dumps(data, indent=2))


@score_app.command("gsm8k")
def gsm8k(
    file: Path = typer.Argument(..., help="JSONL with the GSM8K `answer` and the `completion`."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Exact match of the final number, as lm-eval's gsm8k task extracts it (strict, flexible)."""
    from gsil_bench.evaluation.gsm8k import read_records, score_gsm8k

    result = score_gsm8k(read_records(file, ("answer", "completion")))
    if as_json:
        _echo_json({"benchmark": result.benchmark, **_metrics(result)})
        return
    _print_table(result, "strict: the number after ####; flexible: the last number")


@score_app.command("humaneval")
def humaneval(
    file: Path = typer.Argument(..., help="human-eval samples JSONL: `task_id`, `completion`."),
    problems: Path | None = typer.Option(
        None, "--problems", help="Problems JSONL(.gz); default: the human-eval package's copy."
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Programs run at once (default: CPU count)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """pass@k of the samples' programs, each run in the sandbox."""
    from gsil_bench.evaluation.humaneval import load_problems, read_samples, score_samples

    table = load_problems(problems)
    result = score_samples(read_samples(file, table), table, workers=workers, progress=not as_json)
    if as_json:
        _echo_json(
            {
                "benchmark": result.benchmark,
                **_metrics(result),
                "n_samples": result.details["samples"],
                "status_counts": result.details["status_counts"],
                "isolation": result.details["isolation"],
                "results": result.items,
            }
        )
        return
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.details["status_counts"].items()))
    _print_table(result, f"{result.details['samples']} samples: {counts}")


@score_app.command("mini")
def mini(
    file: Path = typer.Argument(
        ..., help="JSONL: `id` (a mini-suite test item) and `responses` (one answer per turn)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the mini suite the ids refer to."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Score answers to the mini suite's test items, one result per domain."""
    from gsil_bench.evaluation.mini import score_items

    items, responses = _mini_inputs(file, seed)
    results = score_items(items, responses)
    if as_json:
        _echo_json({name: {**_metrics(r), "n": len(r.items)} for name, r in results.items()})
        return
    for result in results.values():
        _print_table(result)


def _mini_inputs(path: Path, seed: int) -> tuple[list[Any], list[list[str]]]:
    """Items and answers of a mini-suite file. A line may embed the whole item (``domain``,
    ``turns``, ``check``, ...) instead of naming it by ``id``; ``response`` is a one-turn
    shorthand for ``responses``."""
    from dataclasses import fields

    from gsil_bench.data.minisuite import MiniSuiteConfig, TestItem, build_suite
    from gsil_bench.evaluation.gsm8k import iter_jsonl

    known: dict[str, Any] | None = None
    names = {f.name for f in fields(TestItem)}
    items, responses = [], []
    for line_no, record in iter_jsonl(path):
        where = f"{path}:{line_no}"
        answers = record.get("responses", [record["response"]] if "response" in record else None)
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise UserError(f"{where}: field 'responses' missing or not a list of strings")
        if {"id", "domain", "turns", "check"} <= set(record):
            item = TestItem(**{"reference": "", **{k: v for k, v in record.items() if k in names}})
        else:
            if known is None:
                known = {
                    i.id: i
                    for i in build_suite(MiniSuiteConfig.model_validate({"seed": seed})).test
                }
            if record.get("id") not in known:
                raise UserError(f"{where}: unknown mini-suite item id {record.get('id')!r}")
            item = known[record["id"]]
        if len(answers) != len(item.turns):
            raise UserError(f"{where}: {item.id} has {len(item.turns)} turns, got {len(answers)}")
        items.append(item)
        responses.append(answers)
    return items, responses


def register(app: typer.Typer) -> None:
    app.add_typer(score_app, name="score")
