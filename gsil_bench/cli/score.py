"""`gsil-bench score <benchmark> FILE`: score generations made elsewhere.

One subcommand per registered benchmark that scores files (GSM8K, HumanEval, the mini suite,
plugins), built when it is asked for: its flags come from the benchmark's options model
(field ``workers`` -> ``--workers``) and its note and extra JSON keys from the benchmark's
:class:`~gsil_bench.evaluation.benchmark.FileScoring`. Adding a benchmark touches nothing here.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

    from gsil_bench.evaluation.benchmark import Benchmark, FileScoring
    from gsil_bench.evaluation.result import BenchmarkResult

# The benchmark registry (pydantic, each benchmark's module) is imported when `score` runs, not
# when the CLI starts: `gsil-bench --help` and the other commands never pay for it.

JSON_OPTION = typer.Option(False, "--json", help="Print a JSON object instead of a table.")
# Benchmarks with a `progress` option score quietly under --json: stdout is then the JSON only.
PROGRESS_OPTION = "progress"


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


def print_results(
    benchmark: Benchmark, scoring: FileScoring, results: list[BenchmarkResult], as_json: bool
) -> None:
    """Tables (with the benchmark's note), or one JSON object.

    A benchmark scoring into one result named after itself prints that result's metrics at the
    top level; one scoring into several (the mini suite's domains) prints one object per result.
    """
    if not as_json:
        for result in results:
            _print_table(result, scoring.note(result) if scoring.note else "")
        return

    def extra(result: BenchmarkResult) -> dict[str, Any]:
        return scoring.json_extra(result) if scoring.json_extra else {}

    if len(results) == 1 and results[0].benchmark == benchmark.name:
        only = results[0]
        _echo_json({"benchmark": only.benchmark, **_metrics(only), **extra(only)})
    else:
        _echo_json({r.benchmark: {**_metrics(r), "n": len(r.items), **extra(r)} for r in results})


def score_file(
    benchmark: Benchmark, scoring: FileScoring, file: Path, values: dict[str, Any], as_json: bool
) -> None:
    """Validate the flags as the benchmark's options, score FILE and print the results."""
    from gsil_bench.evaluation.benchmark import parse_options

    raw = dict(values)
    if as_json and PROGRESS_OPTION in benchmark.Options.model_fields:
        raw[PROGRESS_OPTION] = False
    options = parse_options(benchmark, raw, f"score {benchmark.name} options")
    print_results(benchmark, scoring, benchmark.score_file(file, options), as_json)


# --------------------------------------------------------------------------- building commands


def _flag(name: str, field: FieldInfo) -> Any:
    """A Typer option for an options-model field: ``--field-name``, its default, help, bounds."""
    bounds: dict[str, Any] = {}
    for constraint in field.metadata:  # pydantic's Field(ge=..., le=...) constraints
        if getattr(constraint, "ge", None) is not None:
            bounds["min"] = constraint.ge
        if getattr(constraint, "le", None) is not None:
            bounds["max"] = constraint.le
    default = field.get_default(call_default_factory=True)
    flag = f"--{name.replace('_', '-')}"
    return typer.Option(default, flag, help=field.description, **bounds)


def _command_function(benchmark: Benchmark, scoring: FileScoring) -> Callable[..., None]:
    """A function whose signature Typer reads as ``FILE [--option ...] [--json]``."""
    fields = benchmark.Options.model_fields
    offered = scoring.options if scoring.options is not None else tuple(fields)
    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [
        inspect.Parameter(
            "file", keyword, default=typer.Argument(..., help=scoring.file_help), annotation=Path
        )
    ]
    params += [
        inspect.Parameter(
            name, keyword, default=_flag(name, fields[name]), annotation=fields[name].annotation
        )
        for name in offered
    ]
    params.append(inspect.Parameter("as_json", keyword, default=JSON_OPTION, annotation=bool))

    def command(**values: Any) -> None:
        file, as_json = values.pop("file"), values.pop("as_json")
        score_file(benchmark, scoring, file, values, as_json)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = scoring.help or benchmark.summary
    return command


class BenchmarkCommands(TyperGroup):
    """`score`'s subcommands, looked up in the benchmark registry when asked for."""

    def _scoring(self, name: str) -> tuple[Benchmark, FileScoring] | None:
        from gsil_bench.evaluation.benchmark import BENCHMARKS, file_scoring_of

        if name not in BENCHMARKS:
            return None
        benchmark = BENCHMARKS.get(name)
        scoring = file_scoring_of(benchmark)
        return None if scoring is None else (benchmark, scoring)

    # Typer vendors its own click; its Context and Command types are private, hence Any.
    def list_commands(self, ctx: Any) -> list[str]:
        from gsil_bench.evaluation.benchmark import BENCHMARKS

        return sorted(name for name in BENCHMARKS.names() if self._scoring(name) is not None)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = self._scoring(cmd_name)
        if found is None:
            return None
        single = typer.Typer(add_completion=False)
        single.command(cmd_name)(_command_function(*found))
        return typer.main.get_command(single)


def register(app: typer.Typer) -> None:
    score_app = typer.Typer(
        cls=BenchmarkCommands,
        help="Score a file of model generations; --json prints a machine-readable object.",
        no_args_is_help=True,
    )
    app.add_typer(score_app, name="score")
