"""A graceful stop: SIGTERM (a scheduler's preemption, ``kill``) asks the sweep to stop at the
next safe point instead of dying mid-write.

:func:`sigterm_stops` installs the handler; the training loop checks :func:`stop_requested`
after every optimizer step (it saves a checkpoint, then raises :class:`StopRequested`), the
sweep between seeds and before claiming a trial. A second SIGTERM stops at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_requested = threading.Event()


class StopRequested(KeyboardInterrupt):
    """Raised at a safe point after SIGTERM: the work in flight is checkpointed or finished.

    A ``KeyboardInterrupt``: nothing that records a failure catches it, and the command line
    reports it as an interruption whose completed work is kept."""


def stop_requested() -> bool:
    return _requested.is_set()


def request_stop() -> None:
    _requested.set()


def check_stop(where: str) -> None:
    """Raise :class:`StopRequested` if a stop was requested (``where``: the safe point)."""
    if _requested.is_set():
        raise StopRequested(f"stopped on SIGTERM {where}")


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    if _requested.is_set():  # the second one: stop now
        raise StopRequested("stopped on a second SIGTERM")
    _requested.set()


@contextmanager
def sigterm_stops() -> Iterator[None]:
    """Within the block, SIGTERM requests a graceful stop (main thread only; elsewhere a
    no-op). The previous handler and the flag are restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _requested.clear()
