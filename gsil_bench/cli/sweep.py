"""`gsil-bench sweep [SWEEP_FILE] [--trials N] [--workers N] [--storage URL]`: the main job."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

DEFAULT_SWEEP = "quickstart"


def resolve_sweep_file(name: str) -> Path:
    """A path, or the name of a shipped sweep (sweeps/<name>.yaml, also inside the package)."""
    from gsil_bench.errors import UserError

    path = Path(name)
    if path.is_file():
        return path
    if path.is_dir():
        raise UserError(f"{name}: is a directory, expected a sweep YAML file")
    from importlib.resources import files

    filename = f"{name.removesuffix('.yaml')}.yaml"
    if (Path("sweeps") / filename).is_file():
        return Path("sweeps") / filename
    shipped = files("gsil_bench.sweeps") / filename
    if shipped.is_file():
        return Path(str(shipped))
    raise UserError(f"sweep file {name} not found (give a path or a name from sweeps/)")


def sweep_command(
    sweep_file: str = typer.Argument(DEFAULT_SWEEP, help="Sweep YAML or a shipped sweep name."),
    trials: int = typer.Option(None, help="Trial budget (TPE/random sweeps)."),
    workers: int = typer.Option(
        None,
        min=1,
        help="Local worker processes sharing the study, each with cores/workers threads"
        " (default: the sweep file's `workers`, else 1).",
    ),
    storage: str = typer.Option(None, help="Optuna RDB URL shared by several machines."),
    results_dir: Path = typer.Option(Path("results"), help="Tables, plots, records."),
    runs_dir: Path = typer.Option(Path("runs/sweeps"), help="Checkpoints and models."),
    report_to: list[str] = typer.Option(
        [], "--report-to", help="Experiment trackers: tensorboard, wandb, mlflow, trackio."
    ),
) -> None:
    """Run (or resume) a sweep, then write its comparison table and plots.

    SIGTERM stops it at the next safe point (the trial in flight checkpointed or finished and
    queued again), with one line and exit code 143; the same command resumes it."""
    from gsil_bench.backend.tracking import parse_report_to, sweep_report_to
    from gsil_bench.stop import StopRequested
    from gsil_bench.study.driver import run_sweep
    from gsil_bench.study.live import LiveView

    path = resolve_sweep_file(sweep_file)
    trackers = parse_report_to(report_to)
    console = Console()
    started = time.time()
    try:
        with sweep_report_to(trackers), LiveView(console) as live:
            out = run_sweep(
                path,
                results_dir=results_dir,
                runs_dir=runs_dir,
                storage_url=storage,
                workers=workers,
                trials=trials,
                live=live.update,
            )
    except StopRequested as stop:
        Console(stderr=True, highlight=False).print(
            f"{stop}: the trial in flight was kept and queued again; run the same command "
            "to resume",
            markup=False,
            soft_wrap=True,
        )
        raise SystemExit(143) from None
    table = out / "table.md"
    if table.exists() and table.stat().st_mtime >= started:  # written by this run
        console.print(table.read_text())
    console.print(f"results: {out}")


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep_command)
