"""`gsil-bench report [STUDY]`: tables, plots and manifest of a finished (or running) study."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console


def report(
    study: Annotated[
        str, typer.Argument(help="A study name under --results-dir, or a study folder.")
    ] = "quickstart",
    results_dir: Annotated[
        Path, typer.Option("--results-dir", help="Where the study folders live.")
    ] = Path("results"),
    baseline: Annotated[
        str | None,
        typer.Option("--baseline", help="Method label for paired tests (default: the sweep's)."),
    ] = None,
) -> None:
    """Write table.md/.csv/.tex, plots, index.html and manifest.json into the study folder."""
    from rich.markdown import Markdown

    from gsil_bench.report.study import find_study
    from gsil_bench.report.write import write_report  # matplotlib, scipy: only when asked

    written = write_report(find_study(study, results_dir), baseline=baseline)
    console = Console()
    console.print(Markdown(written["table.md"].read_text(encoding="utf-8")))
    for name in sorted(written):
        console.print(f"wrote {written[name]}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
