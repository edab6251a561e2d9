"""Run untrusted generated code and say whether it ran to the end without raising.

Each program runs in a fresh interpreter (``python -I -S``) in its own process group, with a
wall-clock timeout, CPU/address-space/file-size/process rlimits, a scratch working directory that
is deleted afterwards, and an environment holding none of the caller's variables. Where the OS
allows it (checked once by running a probe program), it also gets fresh network, PID and mount
namespaces (``unshare``): no network interface is up, everything it forked dies with it, the
caller's home, working directory and temp dirs are hidden behind private tmpfs mounts, and when
we are root it runs as ``nobody``. The verdict is a line carrying a per-run random nonce, written
to a pipe by the trusted runner after the program returned; exit codes and output never count.

Threat model: this protects the machine and the caller's secrets. A completion written to *game*
the verdict from inside the interpreter (hunting the nonce in memory) is out of scope, as it is
for every in-process test harness; a stray ``sys.exit(0)``, ``os._exit(0)`` or ``print("passed")``
never passes.
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import math
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

from gsil_bench.evaluation.sandbox_isolation import RUNNER, Isolation, detect

log = logging.getLogger(__name__)
_lock = threading.Lock()
_chosen: Isolation | None = None

Status = Literal["passed", "failed", "timeout", "error"]
OUTPUT_CAP = 16 * 1024  # bytes of stdout+stderr kept; the rest is read and dropped
DETAIL_CAP = 2000
FILE_SIZE_MB = 16
MAX_PROCESSES = 64  # for the sandbox user as a whole; candidate code rarely forks
MAX_OPEN_FILES = 256


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    status: Status
    detail: str
    seconds: float
    output: str = ""


def isolation_report() -> dict[str, Any]:
    """What isolation the sandbox uses on this machine (probed once, then cached)."""
    iso = _isolation()
    return iso.report(
        limits={
            "cpu_seconds": "ceil(timeout) + 1",
            "address_space_mb": "memory_mb (default 1024)",
            "file_size_mb": FILE_SIZE_MB,
            "processes": MAX_PROCESSES,
            "open_files": MAX_OPEN_FILES,
        }
    )


def run_check(program: str, *, timeout_s: float = 5.0, memory_mb: int = 1024) -> CheckResult:
    """Run ``program`` (candidate code followed by its tests) in the sandbox.

    Passed iff executing the whole program raised nothing; "timeout" when it ran past
    ``timeout_s`` wall-clock seconds or its CPU limit; "error" when the sandbox itself failed.
    """
    start = time.monotonic()
    iso = _isolation()
    scratch = tempfile.mkdtemp(prefix="gsil-sandbox-")
    try:
        return _run(program, iso, scratch, timeout_s, memory_mb, start)
    finally:
        _remove_tree(scratch)


def _isolation() -> Isolation:
    global _chosen
    with _lock:
        if _chosen is None:
            _chosen = detect(_probe_passes)
        return _chosen


def _probe_passes(program: str, candidate: Isolation) -> bool:
    scratch = tempfile.mkdtemp(prefix="gsil-sandbox-probe-")
    try:
        return _run(program, candidate, scratch, 10.0, 1024, time.monotonic()).passed
    finally:
        _remove_tree(scratch)


def _limits(timeout_s: float, memory_mb: int) -> list[tuple[str, int]]:
    # soft == hard for CPU: the kernel then sends SIGKILL, which (unlike SIGXCPU) also reaches
    # a runner that is PID 1 of its namespace.
    return [
        ("RLIMIT_CPU", math.ceil(timeout_s) + 1),
        ("RLIMIT_AS", memory_mb * 1024 * 1024),
        ("RLIMIT_FSIZE", FILE_SIZE_MB * 1024 * 1024),
        ("RLIMIT_NPROC", MAX_PROCESSES),
        ("RLIMIT_NOFILE", MAX_OPEN_FILES),
        ("RLIMIT_CORE", 0),
    ]


def _run(
    program: str,
    iso: Isolation,
    scratch: str,
    timeout_s: float,
    memory_mb: int,
    start: float,
) -> CheckResult:
    with open(os.path.join(scratch, "program.py"), "w", encoding="utf-8") as fh:
        fh.write(program)
    if iso.uid is not None:
        os.chown(scratch, iso.uid, -1 if iso.gid is None else iso.gid)
    nonce = secrets.token_hex(16)
    verdict_r, verdict_w = os.pipe()
    out_r, out_w = os.pipe()
    config_r, config_w = os.pipe()
    config = {
        "nonce": nonce,
        "fd": verdict_w,
        "scratch": scratch,
        "limits": _limits(timeout_s, memory_mb),
        "uid": iso.uid,
        "gid": iso.gid,
        "hide": iso.hide,
        "keep": [*iso.keep, [scratch, True]],
    }
    # The config (with the nonce) travels on stdin, never on argv, which /proc shows to anyone.
    os.write(config_w, marshal.dumps(config))
    os.close(config_w)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": scratch, "TMPDIR": scratch}
    env["LANG"] = "C.UTF-8"
    try:
        proc = subprocess.Popen(
            [*iso.prefix, sys.executable, "-I", "-S", "-c", RUNNER],
            stdin=config_r,
            stdout=out_w,
            stderr=out_w,
            pass_fds=(verdict_w,),
            process_group=0,
            env=env,
            cwd=scratch,
        )
    except OSError as exc:
        for fd in (verdict_r, out_r):
            os.close(fd)
        return CheckResult(False, "error", f"sandbox could not start: {exc}", _since(start))
    finally:
        for fd in (config_r, verdict_w, out_w):
            os.close(fd)
    deadline = start + timeout_s
    try:
        verdict, output, timed_out = _collect(proc, verdict_r, out_r, deadline)
    finally:
        _kill_group(proc.pid)
        os.close(verdict_r)
        os.close(out_r)
    cpu = _reap(proc)
    return _judge(verdict, nonce, output, timed_out, proc.returncode, cpu, timeout_s, start)


def _collect(
    proc: subprocess.Popen[bytes], verdict_r: int, out_r: int, deadline: float
) -> tuple[bytes, bytes, bool]:
    """Read the verdict and (capped) output until the runner exits or the deadline passes."""
    chunks: dict[int, bytearray] = {verdict_r: bytearray(), out_r: bytearray()}
    dropped = 0
    open_fds = [verdict_r, out_r]
    timed_out = False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        if _exited(proc.pid):
            # Drain what is already buffered; a leftover child (no PID namespace) may still
            # hold the pipes open, so never wait for EOF here.
            _kill_group(proc.pid)
            dropped += _drain(open_fds, chunks, wait=0.0)
            break
        if not open_fds:
            time.sleep(min(0.005, remaining))
            continue
        ready, _, _ = select.select(open_fds, [], [], min(0.05, remaining))
        dropped += _read_ready(ready, open_fds, chunks)
    if timed_out:
        _kill_group(proc.pid)
        dropped += _drain(open_fds, chunks, wait=0.05)
    output = bytes(chunks[out_r])
    if dropped:
        output += f"\n[... {dropped} more bytes of output dropped]".encode()
    return bytes(chunks[verdict_r]), output, timed_out


def _read_ready(ready: list[int], open_fds: list[int], chunks: dict[int, bytearray]) -> int:
    dropped = 0
    for fd in ready:
        data = os.read(fd, 65536)
        if not data:
            open_fds.remove(fd)
            continue
        room = max(0, OUTPUT_CAP - len(chunks[fd]))
        chunks[fd] += data[:room]
        dropped += len(data) - min(room, len(data))
    return dropped


def _drain(open_fds: list[int], chunks: dict[int, bytearray], wait: float) -> int:
    dropped = 0
    while open_fds:
        ready, _, _ = select.select(open_fds, [], [], wait)
        if not ready:
            break
        dropped += _read_ready(ready, open_fds, chunks)
    return dropped


def _exited(pid: int) -> bool:
    # WNOWAIT leaves the zombie in place, so the process group id cannot be reused by another
    # process before we have killed the group.
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _reap(proc: subprocess.Popen[bytes]) -> float:
    """Wait for the runner; return the CPU seconds it and its reaped children used."""
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except ChildProcessError:
        proc.returncode = proc.returncode if proc.returncode is not None else -1
        return 0.0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def _judge(
    verdict: bytes,
    nonce: str,
    output: bytes,
    timed_out: bool,
    returncode: int | None,
    cpu: float,
    timeout_s: float,
    start: float,
) -> CheckResult:
    seconds = _since(start)
    text = output.decode("utf-8", "replace")
    if timed_out:
        return CheckResult(False, "timeout", f"timed out after {timeout_s:g} s", seconds, text)
    kind, message = _parse_verdict(verdict, nonce)
    if kind == "passed":
        return CheckResult(True, "passed", "", seconds, text)
    if kind in ("failed", "error"):
        return CheckResult(False, kind, message[:DETAIL_CAP], seconds, text)  # type: ignore[arg-type]
    if cpu >= math.ceil(timeout_s) + 1 - 0.05:
        return CheckResult(False, "timeout", "CPU time limit exceeded", seconds, text)
    tail = text[-DETAIL_CAP // 2 :].strip()
    detail = f"ended without finishing the program (exit status {returncode})"
    return CheckResult(
        False, "failed", f"{detail}; output: {tail}" if tail else detail, seconds, text
    )


def _parse_verdict(verdict: bytes, nonce: str) -> tuple[str, str]:
    """The runner's report: only a line that starts with this run's nonce counts."""
    for line in verdict.decode("utf-8", "replace").splitlines():
        head, _, rest = line.partition(" ")
        if secrets.compare_digest(head, nonce):
            kind, _, message = rest.partition(" ")
            try:
                return kind, bytes.fromhex(message).decode("utf-8", "replace")
            except ValueError:
                return kind, ""
    return "", ""


def _since(start: float) -> float:
    return time.monotonic() - start


def _remove_tree(path: str) -> None:
    def make_writable(func: Any, target: str, _exc: Any) -> None:
        # A program may have taken permissions away from what it created.
        os.chmod(os.path.dirname(target), 0o700)
        if os.path.isdir(target) and not os.path.islink(target):
            os.chmod(target, 0o700)
        func(target)

    try:
        shutil.rmtree(path, onerror=make_writable)
    except OSError as exc:
        log.warning("could not remove sandbox scratch dir %s: %s", path, exc)
