"""`gsil-bench losses`: list every registered loss (built-ins and plugins) and its metadata."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from gsil_bench.registry import describe


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _format_hparams(hparams: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in hparams.items()) or "-"


def losses_table(rows: list[dict[str, Any]]) -> Table:
    """One row per loss: the columns a person picks a loss and its sweep space by."""
    table = Table(
        title="gsil-bench losses",
        caption="ref / gen: needs a reference model / self-generated responses",
    )
    # Names are what users copy into configs: never wrap them; the summary takes what is left.
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("family")
    table.add_column("ref")
    table.add_column("gen")
    table.add_column("hyperparameters")
    table.add_column("summary", ratio=1)
    for row in rows:
        table.add_row(
            row["name"],
            row["family"],
            _yes_no(row["needs_reference"]),
            _yes_no(row["needs_generated"]),
            _format_hparams(row["hparams"]),
            row["summary"],
        )
    return table


def losses(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
) -> None:
    """List the registered losses, their metadata and hyperparameter defaults."""
    rows = describe()
    if as_json:
        # Plain stdout, not Rich: JSON must not be wrapped or styled. default=repr keeps a
        # plugin's non-JSON default (a tuple, an enum) printable.
        typer.echo(json.dumps(rows, indent=2, default=repr))
        return
    Console(highlight=False, width=_width()).print(losses_table(rows))


def _width() -> int | None:
    """The console width: Rich's own choice on a terminal or when COLUMNS is set; otherwise
    (a pipe, a file) wide enough that no row wraps, so that ``grep`` and ``column`` see one
    loss per line with its whole formula (Rich would assume 80 columns and wrap each)."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return None
    return 10_000


def register(app: typer.Typer) -> None:
    """Add the ``losses`` command to ``app``."""
    app.command("losses")(losses)
