"""Rich progress bars that stay quiet when stdout is not a terminal (CI, logs, pipes)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def interactive() -> bool:
    return sys.stdout.isatty()


class Bar:
    """One task of a Rich Progress, with the two operations the loops need."""

    def __init__(self, progress: Progress, task: TaskID):
        self.progress, self.task = progress, task

    def advance(self, n: int = 1, status: str | None = None) -> None:
        if status is None:
            self.progress.update(self.task, advance=n)
        else:
            self.progress.update(self.task, advance=n, status=status)

    def set_completed(self, n: int) -> None:
        self.progress.update(self.task, completed=n)


@contextmanager
def progress_bar(total: int, description: str, enabled: bool = True) -> Iterator[Bar]:
    """Yield a started bar. Outside a TTY the bar is off and a stage of some length logs
    one line when it starts and one when it ends, so CI logs still show where time goes."""
    if enabled and not interactive():
        began = time.perf_counter()
        print(f"[gsil-bench] {description}: {total} to do", file=sys.stderr, flush=True)
        with _rich_bar(total, description, enabled=False) as bar:
            yield bar
        seconds = time.perf_counter() - began
        print(f"[gsil-bench] {description}: done in {seconds:.1f}s", file=sys.stderr, flush=True)
        return
    with _rich_bar(total, description, enabled) as bar:
        yield bar


@contextmanager
def _rich_bar(total: int, description: str, enabled: bool) -> Iterator[Bar]:
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        disable=not enabled,
        transient=False,
    )
    with progress:
        yield Bar(progress, progress.add_task(description, total=total, status=""))
