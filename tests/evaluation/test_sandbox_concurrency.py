"""Eight hostile checks at once: each ends cleanly, and honest checks run beside them are not
slowed by more than 2x.

The bound compares honest checks beside the hostile ones with honest checks alone, measured in
the same test just before and just after (so a machine that others load is the baseline too);
each side is a median of several checks. The hostile checks' CPU is bounded by their timeouts.
"""

from __future__ import annotations

import statistics
import subprocess
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest

from gsil_bench.evaluation.sandbox import CheckResult, isolation_report, run_check

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
