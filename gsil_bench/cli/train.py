"""`gsil-bench train [CONFIG] [--set key=value ...]`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from gsil_bench.errors import TrainingError, UserError
from gsil_bench.evaluation.result import primary_metric

if TYPE_CHECKING:  # the record module (pydantic) loads when a run finishes, not at start-up
    from gsil_bench.record import RunRecord


def summarize(record: RunRecord, console: Console) -> None:
    from gsil_bench.record import RunDir

    rounds = record.rounds
    last = record.trajectory
    trained = record.loss if rounds else "base model (iterations: 0, no training)"
    console.print(f"[bold green]done[/] {trained} seed {record.seed}")
    console.print(f"  model:  {record.model_path}", soft_wrap=True)
    console.print(f"  log:    {rounds[-1]['log'] if rounds else '-'}", soft_wrap=True)
    console.print(f"  record: {RunDir(Path(record.output_dir)).result_path}", soft_wrap=True)
    if last:
        first, final = last[0], last[-1]
        keys = [
            k for k in ("loss", "reward/real", "reward/generated", "reward/accuracy") if k in final
        ]
        console.print("  " + ", ".join(f"{k} {first[k]:.3f} -> {final[k]:.3f}" for k in keys))
    timings = record.timings
    console.print("  time:   " + ", ".join(f"{k[:-2]} {v:.1f}s" for k, v in timings.items()))
    if record.diagnostics:
        moved = ", ".join(f"{k} {v:.3f}" for k, v in record.diagnostics.items())
        console.print(f"  vs base: {moved}", soft_wrap=True)
    benchmarks = record.benchmarks
    if benchmarks:
        table = Table("benchmark", "metric", "value", "ref_logp")
        for name, result in benchmarks.items():
            metric = primary_metric(result)
            value = result["metrics"][metric]
            ref_logp = result["metrics"].get("ref_logp")
            shown = "-" if ref_logp is None else f"{ref_logp:.3f}"
            table.add_row(name, metric, f"{value:.3f}", shown)
        console.print(table)


def train_command(
    config: Path = typer.Argument(None, help="Run config YAML; omit for the embedded default."),
    set_: list[str] = typer.Option([], "--set", help="Override a key: --set optim.lr=1e-4"),
    report_to: list[str] = typer.Option(
        [], "--report-to", help="Experiment trackers: tensorboard, wandb, mlflow, trackio."
    ),
    push_to_hub: str = typer.Option(
        None,
        "--push-to-hub",
        help="Upload the trained model (with its model card) to this Hub repo (owner/name).",
    ),
    private: bool = typer.Option(False, help="With --push-to-hub: create the repo private."),
) -> None:
    """Train one loss on one dataset (default: the tiny base model on the mini suite)."""
    from gsil_bench.backend.tracking import parse_report_to
    from gsil_bench.config import load_config
    from gsil_bench.experiment.recipe import run_experiment

    if push_to_hub:
        from gsil_bench.experiment.hub import check_repo_id

        check_repo_id(push_to_hub)  # before any training
    trackers = parse_report_to(report_to)
    overrides = [*set_, f"report_to={','.join(trackers)}"] if trackers else set_
    run_config = load_config(config, overrides)
    try:
        record = run_experiment(run_config)
    except TrainingError as exc:
        raise UserError(str(exc)) from None
    summarize(record, Console())
    if push_to_hub:
        from gsil_bench.experiment.hub import push_model

        if not record.rounds:
            raise UserError("--push-to-hub: the run trained nothing (iterations: 0)")
        url = push_model(Path(record.model_path), push_to_hub, private=private)
        Console().print(f"  pushed: {url}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
