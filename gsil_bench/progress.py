"""Rich progress bars that stay quiet when stdout is not a terminal (CI, logs, pipes)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def interactive() -> bool:
    return sys.stdout.isatty()


@contextmanager
def progress_bar(total: int, description: str, enabled: bool = True) -> Iterator[Progress]:
    """Yield a started Progress with one task (id 0); disabled outside a TTY."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        disable=not (enabled and interactive()),
        transient=False,
    )
    with progress:
        progress.add_task(description, total=total, status="")
        yield progress
