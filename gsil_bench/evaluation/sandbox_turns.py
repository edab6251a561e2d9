"""Turns for demoted sandbox checks, so that hostile checks cannot slow fresh ones beside them.

Each supervised check's PID 1 stops (SIGSTOP) or continues (SIGCONT) every process of its check
when told so on a pipe; ``Turns`` decides, for all the checks of this process, which are told
what.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass


class Turns:
    """When our checks want more CPUs than there are, the demoted ones take turns.

    A check is fresh until its supervisor reports it demoted (at PAUSE_NICE of
    ``sandbox_isolation``). While any fresh check runs, at most (CPUs - fresh checks) demoted
    ones run, each for a turn of TURN_S, and the others are stopped: however many processes a
    hostile check has and whatever they do in the kernel, fresh checks beside it keep their
    speed. With no fresh check for HOLD_S, or with no more checks than CPUs (the default pool),
    nothing is stopped. Turns count against a check's wall-clock timeout, as any wait for the CPU
    does.
    """

    TURN_S = 0.5
    HOLD_S = 0.1  # fresh checks usually come one after another: no resuming in between

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checks: dict[int, _Turn] = {}
        self._cpus = len(os.sched_getaffinity(0))
        self._rotated = 0.0
        self._fresh_ended = 0.0

    def add(self, key: int, pause_w: int) -> None:
        with self._lock:
            self._checks[key] = _Turn(pause_w)
            self._balance(rotate=False)

    def remove(self, key: int) -> None:
        with self._lock:
            turn = self._checks.pop(key, None)
            if turn is not None:
                if not turn.demoted:
                    self._fresh_ended = time.monotonic()
                self._balance(rotate=False)

    def demoted(self, key: int) -> None:
        with self._lock:
            if key in self._checks:
                self._checks[key].demoted = True
                self._balance(rotate=False)

    def tick(self) -> None:
        """From every check's wait loop (at least every 50 ms): new turns, the end of a hold."""
        with self._lock:
            self._balance(rotate=time.monotonic() - self._rotated >= self.TURN_S)

    def _balance(self, rotate: bool) -> None:
        now = time.monotonic()
        self._rotated = now if rotate else self._rotated
        fresh = sum(not turn.demoted for turn in self._checks.values())
        demoted = [turn for turn in self._checks.values() if turn.demoted]
        if not fresh and now - self._fresh_ended < self.HOLD_S:
            fresh = 1  # as if the one that just ended were still there
        slots = len(demoted) if fresh == 0 else max(0, self._cpus - fresh)
        # At a new turn, those stopped longest ago go first and the running ones last; between
        # turns, those running keep running.
        if rotate:
            demoted.sort(key=lambda t: now if t.running else t.since)
        else:
            demoted.sort(key=lambda t: (not t.running, t.since))
        for rank, turn in enumerate(demoted):
            run = rank < slots
            if run != turn.running:
                turn.running, turn.since = run, now
                with contextlib.suppress(OSError):  # a full pipe: the supervisor is behind
                    os.write(turn.pause_w, b"C" if run else b"S")


@dataclass
class _Turn:
    pause_w: int
    demoted: bool = False
    running: bool = True
    since: float = 0.0  # when it was last stopped or let go on


TURNS = Turns()  # one for the process: all its checks share the CPUs
