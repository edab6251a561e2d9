"""Eight hostile checks at once: each ends cleanly, and honest checks run beside them are not
slowed by more than 2x.

The bound compares honest checks beside the hostile ones with honest checks alone, measured in
the same test just before and just after (so a machine that others load is the baseline too);
each side is a median of several checks. The hostile checks' CPU is bounded by their timeouts.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from gsil_bench.evaluation.sandbox import CheckResult, isolation_report, run_check
from gsil_bench.evaluation.sandbox_turns import Turns

HOSTILE_TIMEOUT_S = 3.0
HOSTILE_MEMORY_MB = 256

FORK_BOMB = textwrap.dedent(
    """
    import os
    for _ in range(4):
        if os.fork() == 0:
            os.setsid()  # a new session would be a new scheduling group of its own
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
    while True:
        pass
    """
)
MEMORY_BOMB = "xs = []\nwhile True:\n    xs.append(b'x' * 10**7)\n"
INFINITE_LOOP = "while True:\n    pass\n"
MIXED = textwrap.dedent(
    """
    import os, threading
    def spin():
        while True:
            pass
    for _ in range(4):
        threading.Thread(target=spin, daemon=True).start()
    for _ in range(8):
        try:
            os.fork()
        except OSError:
            break
    xs = []
    while True:
        xs.append(b'x' * 10**6)
    """
)
HOSTILE = [FORK_BOMB, MEMORY_BOMB, INFINITE_LOOP, MIXED] * 2
# What an honest HumanEval-style check looks like: a small function and a few asserts.
HONEST = textwrap.dedent(
    """
    def sum_squares(n):
        return sum(i * i for i in range(n + 1))

    assert sum_squares(3) == 14
    assert sum_squares(10) == 385
    """
)


def _honest() -> float:
    result = run_check(HONEST, timeout_s=30)
    assert result.passed, result
    return result.seconds


def _measure() -> tuple[float, float, list[CheckResult], int]:
    before = [_honest() for _ in range(7)]
    beside = []
    with ThreadPoolExecutor(max_workers=len(HOSTILE)) as pool:
        futures = [
            pool.submit(
                run_check, program, timeout_s=HOSTILE_TIMEOUT_S, memory_mb=HOSTILE_MEMORY_MB
            )
            for program in HOSTILE
        ]
        while not all(f.done() for f in futures):
            beside.append(_honest())
        hostile = [f.result() for f in futures]
    after = [_honest() for _ in range(7)]
    alone = statistics.median(before + after)
    return statistics.median(beside), alone, hostile, len(beside)


def _check_hostile(results: list[CheckResult]) -> None:
    for program, result in zip(HOSTILE, results, strict=True):
        assert not result.passed and result.status in ("failed", "timeout"), result
        assert result.seconds < HOSTILE_TIMEOUT_S + 3, result  # ended, and was cleaned up, promptly
        if program is INFINITE_LOOP:
            assert result.status == "timeout", result
        if program is MEMORY_BOMB and result.status == "failed":
            assert "MemoryError" in result.detail, result


def test_eight_hostile_checks_hold_and_leave_honest_checks_their_speed():
    if not isolation_report()["supervisor"].startswith("PID 1"):
        pytest.skip("no PID and mount namespace here: no per-check demotion or memory sum")
    run_check("pass")  # the isolation probe, outside the measurements
    # A load spike from other jobs on this machine can land in either window; a sandbox that lets
    # hostile checks take the CPU fails both tries.
    for _ in range(2):
        beside, alone, hostile, count = _measure()
        _check_hostile(hostile)
        assert count >= 5, count  # enough honest checks ran while the hostile ones did
        if beside <= 2 * alone:
            break
    assert beside <= 2 * alone, (
        f"honest check: {alone * 1000:.0f} ms alone, {beside * 1000:.0f} ms beside"
    )
    # The machine is fine afterwards.
    assert subprocess.run(["true"], check=False).returncode == 0
    assert run_check(HONEST).passed


# --- demoted checks take turns while fresh ones need the CPUs ------------------------------------
def _read_all(fd: int) -> bytes:
    os.set_blocking(fd, False)
    try:
        return os.read(fd, 1024)
    except BlockingIOError:
        return b""


def test_demoted_checks_take_turns_beside_fresh_ones(monkeypatch):
    turns = Turns()
    monkeypatch.setattr(turns, "_cpus", 2)
    pipes = {key: os.pipe() for key in "abcd"}
    try:
        for key in "abc":
            turns.add(ord(key), pipes[key][1])
            turns.demoted(ord(key))
        # Each was fresh for a while (and a demoted one may have yielded to it then); now three
        # demoted checks and nothing fresh: all run (the last word each was told is not stop).
        told = [_read_all(pipes[k][0]) for k in "abc"]
        assert all(not t.endswith(b"S") for t in told), told
        turns.add(ord("d"), pipes["d"][1])  # a fresh check: 2 CPUs - 1 fresh = 1 demoted runs
        told = [_read_all(pipes[k][0]) for k in "abc"]
        assert sorted(told) == [b"", b"S", b"S"], told
        running = "abc"[told.index(b"")]
        time.sleep(Turns.TURN_S + 0.02)
        turns.tick()  # its turn is over: it stops, one that waited goes on
        told = [_read_all(pipes[k][0]) for k in "abc"]
        assert told["abc".index(running)] == b"S" and told.count(b"C") == 1, told
        turns.remove(ord("d"))  # no fresh check any more, but fresh ones tend to follow at once
        assert b"C" not in b"".join(_read_all(pipes[k][0]) for k in "abc")
        time.sleep(Turns.HOLD_S + 0.02)
        turns.tick()  # ... and after a while without any, every demoted check goes on
        told = [_read_all(pipes[k][0]) for k in "abc"]
        assert told.count(b"C") == 2 and told.count(b"") == 1, told
    finally:
        for r, w in pipes.values():
            os.close(r)
            os.close(w)


def test_no_more_checks_than_cpus_means_nobody_stops(monkeypatch):
    turns = Turns()
    monkeypatch.setattr(turns, "_cpus", 2)
    (r1, w1), (r2, w2) = os.pipe(), os.pipe()
    try:
        turns.add(1, w1)
        turns.demoted(1)
        turns.add(2, w2)  # one fresh + one demoted on two CPUs
        time.sleep(Turns.TURN_S + 0.02)
        turns.tick()
        assert _read_all(r1) == b"" and _read_all(r2) == b""
    finally:
        for fd in (r1, w1, r2, w2):
            os.close(fd)
