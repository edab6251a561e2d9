"""The sandbox's isolation: files, environment and network hidden, an unprivileged user, and
the report of what is in effect (with the loud fallback when nothing is available).

Tests that need an isolation primitive this machine lacks skip and say which.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
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


def _namespaces() -> list[str]:
    return isolation_report()["namespaces"]


# --- files, environment, network, user ------------------------------------------------------------
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


# --- per-check user, process count and priority ---------------------------------------------------
def test_each_check_runs_as_a_uid_of_its_own_when_root():
    if os.geteuid() != 0 or not isolation_report()["user"].startswith("a uid"):
        pytest.skip("not root, or no per-check uid here")
    program = "import os, time\nprint(os.getuid(), os.getgid(), os.getgroups())\ntime.sleep(0.5)"
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run_check, [program] * 4))
    ids = [result.output.split() for result in results]
    assert all(r.passed for r in results), results
    uids = [int(uid) for uid, _, _ in ids]
    assert len(set(uids)) == 4, uids  # running at the same time: four different users
    assert all(sandbox_isolation.UID_BASE <= u < sandbox_isolation.UID_BASE + 2**16 for u in uids)
    assert [int(gid) for _, gid, _ in ids] == uids and all(g == "[]" for _, _, g in ids)


def test_a_fork_bomb_does_not_use_up_another_checks_processes():
    """RLIMIT_NPROC counts per check: a check beside a fork bomb still starts threads and
    processes (with one user for all checks, the bomb took the whole count)."""
    if isolation_report()["processes"].startswith("RLIMIT_NPROC shared"):
        pytest.skip("no per-check uid or user namespace here: checks share a process count")
    bomb = textwrap.dedent(
        """
        import os, time
        while True:
            try:
                os.fork()
            except OSError:
                time.sleep(0.01)
        """
    )
    honest = textwrap.dedent(
        """
        import subprocess, threading
        threads = [threading.Thread(target=sum, args=([1, 2],)) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert subprocess.run(["true"]).returncode == 0
        """
    )
    with ThreadPoolExecutor(max_workers=2) as pool:
        bombing = pool.submit(run_check, bomb, timeout_s=3)
        time.sleep(1.0)  # the bomb has reached its process limit by now
        result = run_check(honest, timeout_s=5)
        assert bombing.result().status == "timeout"
    assert result.passed, result


@pytest.mark.parametrize("junk", [False, True], ids=["plain", "junk-on-its-pipes"])
def test_a_cpu_hungry_check_is_demoted_and_cannot_undo_it(junk):
    if not isolation_report()["supervisor"].startswith("PID 1"):
        pytest.skip("no PID and mount namespace here: no supervisor to demote long checks")
    (cpu, nice), start = sandbox_isolation.DEMOTION[-1], sandbox_isolation.START_NICE
    assert nice == 20  # the last step is SCHED_IDLE
    program = textwrap.dedent(
        f"""
        import os, time
        assert os.getpriority(os.PRIO_PROCESS, 0) == {start}
        assert os.sched_getscheduler(0) == os.SCHED_OTHER
        if {junk}:  # more than the verdict pipe keeps, on every pipe it holds
            for fd in range(3, 64):
                try:
                    os.write(fd, b"20\\n" + b"x" * {sandbox.OUTPUT_CAP + 1000})
                except OSError:
                    pass
        while time.process_time() < {cpu} + 0.1:
            pass
        time.sleep(0.3)  # the supervisor looks every 20 ms
        assert os.sched_getscheduler(0) == os.SCHED_IDLE, os.sched_getscheduler(0)
        for undo in (
            lambda: os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0)),
            lambda: os.setpriority(os.PRIO_PROCESS, 0, 0),
            lambda: open("/proc/self/autogroup", "w").write("0"),  # the caller's autogroup
        ):
            try:
                undo()
            except OSError:  # PermissionError, read-only /proc (or no autogroups at all)
                pass
            else:
                raise AssertionError("undid its demotion")
        print("demoted for good")
        """
    )
    result = run_check(program, timeout_s=20)
    assert result.output.startswith("demoted for good"), result
    # With junk the verdict itself is lost (the program's own doing); the demotion is not.
    assert result.passed != junk, result


def test_a_crowd_of_processes_is_demoted_without_using_cpu():
    if not isolation_report()["supervisor"].startswith("PID 1"):
        pytest.skip("no PID and mount namespace here: no supervisor to demote crowds")
    crowd = sandbox_isolation.CROWD
    program = textwrap.dedent(
        f"""
        import os, time
        children = []
        for _ in range({crowd}):  # with the program itself: one more than a crowd
            pid = os.fork()
            if pid == 0:
                time.sleep(2)
                os._exit(0)
            children.append(pid)
        time.sleep(0.3)
        assert os.sched_getscheduler(0) == os.SCHED_IDLE, os.sched_getscheduler(0)
        for pid in children:
            os.kill(pid, 9)
        """
    )
    result = run_check(program, timeout_s=10)
    assert result.passed, result
    few = program.replace(f"range({crowd})", f"range({crowd} - 2)")
    few = few.replace("os.sched_getscheduler(0) == os.SCHED_IDLE", "os.sched_getscheduler(0) == 0")
    result = run_check(few, timeout_s=10)
    assert result.passed, result  # a few processes, little CPU: not demoted


def test_setsid_succeeds_but_keeps_the_checks_session():
    if not isolation_report()["supervisor"].startswith("PID 1"):
        pytest.skip("no supervised checks here")
    if platform.machine() not in sandbox_isolation.SETSID_SYSCALL:
        pytest.skip(f"no seccomp filter for {platform.machine()}")
    program = "import os\nbefore = os.getsid(0)\nos.setsid()\nassert os.getsid(0) == before\n"
    result = run_check(program)
    assert result.passed, result
