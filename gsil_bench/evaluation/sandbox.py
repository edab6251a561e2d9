"""Run untrusted generated code and say whether it ran to the end without raising.

Each program runs in a process of its own, in its own process group: a fresh interpreter
(``python -I -S``), or (as root with ``unshare``) a fork of one such interpreter kept warm for the
purpose, holding nothing but the runner (:mod:`gsil_bench.evaluation.sandbox_zygote`), with a
wall-clock timeout, CPU/address-space/file-size/process rlimits, a scratch working directory that
is deleted afterwards, and an environment holding none of the caller's variables. Where the OS
allows it (checked once by running a probe program), it also gets fresh network, PID and mount
namespaces (``unshare``): no network interface is up, everything it forked dies with it, the
caller's home, working directory and temp dirs are hidden behind private tmpfs mounts, and it runs
as a user of its own (a fresh uid per check as root, a user namespace of its own otherwise), so
concurrent checks neither share a process count nor can signal each other. A supervising PID 1
caps the check's total memory and demotes it as it uses CPU, so hostile checks cannot slow short
honest ones beside them; where our cgroup delegates the memory controller (cgroup v2), each check
also gets a cgroup with ``memory.max``. What is used on which kernel:
:mod:`gsil_bench.evaluation.sandbox_isolation`. The verdict is a line carrying a per-run random
nonce, written to a pipe by the trusted runner after the program returned; exit codes and output
never count.

Threat model: this protects the machine and the caller's secrets. A completion written to *game*
the verdict from inside the interpreter (hunting the nonce in memory) is out of scope, as it is
for every in-process test harness; a stray ``sys.exit(0)``, ``os._exit(0)`` or ``print("passed")``
never passes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import marshal
import math
import os
import platform
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from gsil_bench.evaluation import sandbox_cgroup, sandbox_zygote
from gsil_bench.evaluation.sandbox_cgroup import CgroupSupport, CheckCgroup
from gsil_bench.evaluation.sandbox_isolation import (
    CROWD,
    DEMOTION,
    PAUSE_NICE,
    RUNNER,
    SETSID_SYSCALL,
    START_NICE,
    UID_BASE,
    UID_COUNT,
    Isolation,
    detect,
)
from gsil_bench.evaluation.sandbox_turns import TURNS

log = logging.getLogger(__name__)
_lock = threading.Lock()
_chosen: Isolation | None = None
_cgroups: CgroupSupport | None = None  # per-check memory cgroups; detected with _chosen
_uids_lock = threading.Lock()
_uids_in_use: set[int] = set()

Status = Literal["passed", "failed", "timeout", "error"]
OUTPUT_CAP = 16 * 1024  # bytes of stdout+stderr kept; the rest is read and dropped
DETAIL_CAP = 2000
FILE_SIZE_MB = 16
MAX_PROCESSES = 32  # per check (its own uid or user namespace); candidate code rarely forks
MAX_OPEN_FILES = 256
_UNFINISHED = "ended without finishing the program"
# The runner is compiled once here and travels marshalled on stdin ahead of its config: the
# interpreter of every check (the same executable as ours, so the same marshal format) then only
# loads it, instead of compiling its source each time (about 1.7 ms of CPU per check).
_RUNNER_CODE = marshal.dumps(compile(RUNNER, "<string>", "exec"))
_BOOT = "import marshal, sys; exec(marshal.load(sys.stdin.buffer))"  # reads the code, not more
# The zygote holds the runner's functions and starts each check's `_main()` itself.
assert RUNNER.endswith("\n_main()\n")
_RUNNER_LIB = marshal.dumps(compile(RUNNER.removesuffix("_main()\n"), "<string>", "exec"))
# A check started by the zygote finds its pipes at these numbers (0-2: config, output, output).
_AT = {"fd": 3, "control_fd": 4, "pause_fd": 5, "cgroup_fd": 6}


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
    report = iso.report(
        limits={
            "cpu_seconds": "ceil(timeout) + 1",
            "address_space_mb": "memory_mb (default 1024)",
            "file_size_mb": FILE_SIZE_MB,
            "processes": MAX_PROCESSES,
            "open_files": MAX_OPEN_FILES,
            "priority": f"nice {START_NICE}, then "
            + ", ".join(
                f"{'SCHED_IDLE' if nice >= 20 else f'nice {nice}'} after {cpu:g} CPU-s"
                for cpu, nice in DEMOTION
            )
            + f" or past {CROWD} processes",
        }
    )
    if sandbox_zygote.usable_prefix(iso.prefix) is not None and not sandbox_zygote.is_off():
        report["start"] = "fork of a warm zygote (python -I -S holding only the runner) per check"
    else:
        report["start"] = "a fresh interpreter (python -I -S) per check"
    if _cgroups is not None:
        report["memory"] = f"cgroup v2 per check under {_cgroups.parent}: memory.max = memory_mb"
    elif iso.supervised:
        report["memory"] = "RLIMIT_AS per process; PID 1 kills the check past memory_mb in all"
    else:
        report["memory"] = "RLIMIT_AS per process only (no memory cgroup, no supervisor)"
    return report


def run_check(program: str, *, timeout_s: float = 5.0, memory_mb: int = 1024) -> CheckResult:
    """Run ``program`` (candidate code followed by its tests) in the sandbox.

    Passed iff executing the whole program raised nothing; "timeout" when it ran past
    ``timeout_s`` wall-clock seconds or its CPU limit; "error" when the sandbox itself failed.
    """
    start = time.monotonic()
    iso = _isolation()
    scratch = tempfile.mkdtemp(prefix="gsil-sandbox-")
    try:
        return _run(program, iso, _cgroups, scratch, timeout_s, memory_mb, start)
    finally:
        _remove_tree(scratch)


def _isolation() -> Isolation:
    global _chosen, _cgroups
    with _lock:
        if _chosen is None:
            chosen = detect(_probe_passes)
            _cgroups = _memory_cgroups(chosen)
            _chosen = chosen
        return _chosen


def _probe_passes(program: str, candidate: Isolation, cgroups: CgroupSupport | None = None) -> bool:
    if _probe_once(program, candidate, cgroups):
        return True
    if sandbox_zygote.usable_prefix(candidate.prefix) is None or sandbox_zygote.is_off():
        return False
    # A candidate must not be lost to a zygote that cannot start its checks: fresh interpreters
    # then start every check, and the candidate is judged by them.
    with sandbox_zygote.suspended():
        passed = _probe_once(program, candidate, cgroups)
    if passed:
        sandbox_zygote.give_up(RuntimeError("its check failed a probe that passes without it"))
    return passed


def _probe_once(program: str, candidate: Isolation, cgroups: CgroupSupport | None) -> bool:
    scratch = tempfile.mkdtemp(prefix="gsil-sandbox-probe-")
    try:
        return _run(program, candidate, cgroups, scratch, 10.0, 1024, time.monotonic()).passed
    finally:
        _remove_tree(scratch)


def _memory_cgroups(iso: Isolation) -> CgroupSupport | None:
    """Per-check memory cgroups if our cgroup v2 delegates ``memory`` and a check really runs in
    one; None (RLIMIT_AS and the supervisor's sum) otherwise. Never raises."""
    support = sandbox_cgroup.detect()
    if support is None:
        return None
    probe = (
        "name = open('/proc/self/cgroup').read().strip().rsplit('/', 1)[-1]\n"
        f"assert name.startswith({sandbox_cgroup.PREFIX!r}), name\n"
    )
    if "mount" not in iso.namespaces or _probe_passes(probe, iso, support):
        return support  # without a private /proc the probe cannot look; the join is checked
    log.warning("SANDBOX: a check could not join its memory cgroup; using RLIMIT_AS only")
    return None


def _take_uid() -> int:
    with _uids_lock:
        while True:
            uid = UID_BASE + secrets.randbelow(UID_COUNT)
            if uid not in _uids_in_use:
                _uids_in_use.add(uid)
                return uid


def _give_uid(uid: int) -> None:
    with _uids_lock:
        _uids_in_use.discard(uid)


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
        ("RLIMIT_NICE", 0),  # nice can be raised (demotion) but never lowered again
    ]


def _run(
    program: str,
    iso: Isolation,
    cgroups: CgroupSupport | None,
    scratch: str,
    timeout_s: float,
    memory_mb: int,
    start: float,
) -> CheckResult:
    uid = _take_uid() if iso.own_uid else None
    try:
        cgroup = (
            CheckCgroup.create(
                cgroups, memory_bytes=memory_mb * 1024 * 1024, max_pids=MAX_PROCESSES + 2
            )
            if cgroups is not None
            else None
        )
    except OSError as exc:
        if uid is not None:
            _give_uid(uid)
        return CheckResult(False, "error", f"sandbox cgroup: {exc}", _since(start))
    try:
        return _run_as(program, iso, uid, cgroup, scratch, timeout_s, memory_mb, start)
    finally:
        if cgroup is not None:
            cgroup.close()
        if uid is not None:
            _give_uid(uid)


def _run_as(
    program: str,
    iso: Isolation,
    uid: int | None,
    cgroup: CheckCgroup | None,
    scratch: str,
    timeout_s: float,
    memory_mb: int,
    start: float,
) -> CheckResult:
    with open(os.path.join(scratch, "program.py"), "w", encoding="utf-8") as fh:
        fh.write(program)
    if uid is not None:
        os.chown(scratch, uid, uid)
    nonce = secrets.token_hex(16)
    verdict_r, verdict_w = os.pipe()
    out_r, out_w = os.pipe()
    config_r, config_w = os.pipe()
    control_r, control_w = os.pipe()  # the supervisor's demotions, to us
    pause_r, pause_w = os.pipe()  # our b"S"top / b"C"ontinue, to the supervisor
    os.set_blocking(pause_w, False)
    pipe_ends = (verdict_w, control_w, pause_r)
    pipes = {"fd": verdict_w, "control_fd": control_w, "pause_fd": pause_r}
    how = sandbox_zygote.usable_prefix(iso.prefix)
    zygote = sandbox_zygote.get(_RUNNER_LIB) if how is not None else None
    if zygote is not None:
        pipes = {name: _AT[name] for name in pipes}
    config = _config(nonce, pipes, scratch, iso, uid, cgroup, timeout_s, memory_mb)
    if zygote is not None and cgroup is not None:
        config["cgroup_fd"] = _AT["cgroup_fd"]
    boot = _send_config(config_w, config, with_runner=zygote is None)
    try:
        proc = _start(iso, zygote, how, boot, cgroup, scratch, config_r, out_w, pipe_ends)
    except _ZygoteFailed as exc:  # from now on fresh interpreters; this check too
        sandbox_zygote.give_up(exc.__cause__ or exc)
        for fd in (verdict_r, out_r, control_r, pause_w):
            os.close(fd)
        zygote_failed = True
    except OSError as exc:
        for fd in (verdict_r, out_r, control_r, pause_w):
            os.close(fd)
        return CheckResult(False, "error", f"sandbox could not start: {exc}", _since(start))
    else:
        zygote_failed = False
    finally:
        for fd in (config_r, verdict_w, out_w, control_w, pause_r):
            os.close(fd)
    if zygote_failed:
        return _run_as(program, iso, uid, cgroup, scratch, timeout_s, memory_mb, start)
    deadline = start + timeout_s
    if iso.supervised:
        TURNS.add(proc.pid, pause_w)
    try:
        follow = _Follow(proc.pid, cgroup)
        verdict, output, timed_out = _collect(proc, verdict_r, out_r, control_r, deadline, follow)
    finally:
        _kill_group(proc.pid)
        TURNS.remove(proc.pid)
        for fd in (verdict_r, out_r, control_r, pause_w):
            os.close(fd)
    cpu = _reap(proc)
    result = _judge(verdict, nonce, output, timed_out, proc.returncode, cpu, timeout_s, start)
    return _memory_verdict(result, cgroup, memory_mb)


def _send_config(config_w: int, config: dict[str, Any], *, with_runner: bool) -> list[str]:
    """Write a check's config to its runner's stdin and close it; the interpreter arguments
    that start the runner. The config (with the nonce) travels on stdin, never on argv, which
    /proc shows to anyone. ``with_runner`` (a fresh interpreter): the compiled runner goes ahead
    of the config when the pipe holds both, so that both are written before the runner starts
    (a user past fs.pipe-user-pages-soft gets one-page pipes: then the config alone and the
    runner's source on the command line). A zygote's child has the runner already."""
    payload = marshal.dumps(config)
    boot = ["-c", RUNNER]
    fits = fcntl.fcntl(config_w, fcntl.F_GETPIPE_SZ) >= len(_RUNNER_CODE) + len(payload)
    if with_runner and fits:
        payload, boot = _RUNNER_CODE + payload, ["-c", _BOOT]
    while payload:
        payload = payload[os.write(config_w, payload) :]
    os.close(config_w)
    return boot


def _start(
    iso: Isolation,
    zygote: sandbox_zygote.Zygote | None,
    how: tuple[int, bool, bool] | None,
    boot: list[str],
    cgroup: CheckCgroup | None,
    scratch: str,
    config_r: int,
    out_w: int,
    pipe_ends: tuple[int, int, int],
) -> subprocess.Popen[bytes] | _Launched:
    """Start a check's runner: forked by the zygote (``zygote`` and ``how`` given), else a fresh
    interpreter under ``iso.prefix``. ``pipe_ends``: our ends of the verdict, control and pause
    pipes that the runner gets (the last two only when supervised). Raises ``_ZygoteFailed``
    or ``OSError``."""
    verdict_w, control_w, pause_r = pipe_ends
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": scratch, "TMPDIR": scratch}
    env["LANG"] = "C.UTF-8"
    if zygote is not None and how is not None:
        at = [(config_r, 0), (out_w, 1), (out_w, 2), (verdict_w, _AT["fd"])]
        if iso.supervised:
            at += [(control_w, _AT["control_fd"]), (pause_r, _AT["pause_fd"])]
        if cgroup is not None:
            at.append((cgroup.procs_fd, _AT["cgroup_fd"]))
        return _launch(zygote, how, at, env, scratch)
    fds: tuple[int, ...] = (verdict_w, control_w, pause_r) if iso.supervised else (verdict_w,)
    fds += () if cgroup is None else (cgroup.procs_fd,)
    return subprocess.Popen(
        [*iso.prefix, sys.executable, "-I", "-S", *boot],
        stdin=config_r,
        stdout=out_w,
        stderr=out_w,
        pass_fds=fds,
        process_group=0,  # in the caller's session and autogroup: see DEMOTION
        env=env,
        cwd=scratch,
    )


def _memory_verdict(result: CheckResult, cgroup: CheckCgroup | None, memory_mb: int) -> CheckResult:
    """``result``, or where the check's cgroup killed processes for memory and the program did
    not finish, a MemoryError verdict that says so."""
    unfinished = result.status == "failed" and result.detail.startswith(_UNFINISHED)
    if cgroup is None or not unfinished:
        return result
    kills = cgroup.oom_kills()
    if not kills:
        return result
    detail = f"MemoryError: the check's processes together held more than {memory_mb} MB"
    detail += f" (memory limit; the cgroup killed {kills} process(es))"
    return CheckResult(False, "failed", detail, result.seconds, result.output)


def _config(
    nonce: str,
    pipes: dict[str, int],
    scratch: str,
    iso: Isolation,
    uid: int | None,
    cgroup: CheckCgroup | None,
    timeout_s: float,
    memory_mb: int,
) -> dict[str, Any]:
    """What the runner needs to know (it reads this from stdin)."""
    config: dict[str, Any] = {
        "nonce": nonce,
        "fd": pipes["fd"],
        "scratch": scratch,
        "limits": _limits(timeout_s, memory_mb),
        "uid": uid,
        "gid": uid,
        "hide": iso.hide,
        "keep": [*iso.keep, [scratch, True]],
        "cgroup_fd": None if cgroup is None else cgroup.procs_fd,
        "supervise": None,
        "setsid": None,
    }
    if iso.supervised:
        config["supervise"] = {
            "memory_bytes": memory_mb * 1024 * 1024,
            "demote": DEMOTION,
            "start_nice": START_NICE,
            "pause_nice": PAUSE_NICE,
            "crowd": CROWD,
            "control_fd": pipes["control_fd"],
            "pause_fd": pipes["pause_fd"],
        }
        config["setsid"] = SETSID_SYSCALL.get(platform.machine())
    return config


class _ZygoteFailed(Exception):
    pass


@dataclass
class _Launched:
    """A runner the zygote started: not our child, its exit shows on a pidfd."""

    pid: int
    exit_fd: int
    zygote: sandbox_zygote.Zygote
    returncode: int | None = None


def _launch(
    zygote: sandbox_zygote.Zygote,
    how: tuple[int, bool, bool],
    at: list[tuple[int, int]],
    env: dict[str, str],
    cwd: str,
) -> _Launched:
    try:
        pid = zygote.spawn(how, at, env, cwd)
    except (OSError, EOFError, ValueError, TypeError) as exc:
        raise _ZygoteFailed(str(exc)) from exc
    # Not yet reaped (the zygote waits for our word), so the pid is still this check's.
    try:
        return _Launched(pid, os.pidfd_open(pid), zygote)
    except OSError as exc:  # no pidfds on this kernel after all: undo, then fresh interpreters
        _kill_group(pid)
        with contextlib.suppress(OSError, EOFError, ValueError, TypeError):
            zygote.reap(pid)
        raise _ZygoteFailed(str(exc)) from exc


class _Follow:
    """Follows the supervisor's demotions (one nice value a line, 20 for SCHED_IDLE): turns from
    PAUSE_NICE on, and the cgroup's ``cpu.weight`` where there is one with the cpu controller."""

    def __init__(self, key: int, cgroup: CheckCgroup | None) -> None:
        self.key, self.cgroup, self.nice = key, cgroup, 0

    def __call__(self, control: bytes) -> None:
        for line in control.decode("ascii", "replace").splitlines():
            if not line.isdigit() or int(line) <= self.nice:
                continue
            self.nice = int(line)
            if self.cgroup is not None:
                self.cgroup.renice(min(self.nice, 19))
            if self.nice >= PAUSE_NICE:
                TURNS.demoted(self.key)


def _collect(
    proc: subprocess.Popen[bytes] | _Launched,
    verdict_r: int,
    out_r: int,
    control_r: int,
    deadline: float,
    follow: Callable[[bytes], None],
) -> tuple[bytes, bytes, bool]:
    """Read the verdict and (capped) output until the runner exits or the deadline passes,
    following the supervisor's demotions as they come."""
    chunks = {verdict_r: bytearray(), out_r: bytearray(), control_r: bytearray()}
    dropped = 0
    open_fds = [verdict_r, out_r, control_r]
    timed_out = False
    exit_fd = _pidfd(proc.pid)  # readable once the runner exits: no polling for its end
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            if _exited(proc):
                # Drain what is already buffered; a leftover child (no PID namespace) may still
                # hold the pipes open, so never wait for EOF here.
                _kill_group(proc.pid)
                dropped += _drain(open_fds, chunks, wait=0.0)
                break
            watch = open_fds if exit_fd is None else [*open_fds, exit_fd]
            if not watch:
                time.sleep(min(0.005, remaining))
                continue
            ready, _, _ = select.select(watch, [], [], min(0.05, remaining))
            ready = [fd for fd in ready if fd != exit_fd]
            dropped += _read_ready(ready, open_fds, chunks)
            if control_r in ready:
                follow(bytes(chunks[control_r]))
            TURNS.tick()
    finally:
        if exit_fd is not None:
            os.close(exit_fd)
    if timed_out:
        _kill_group(proc.pid)
        dropped += _drain(open_fds, chunks, wait=0.05)
    output = bytes(chunks[out_r])
    if dropped:
        output += f"\n[... {dropped} more bytes of output dropped]".encode()
    return bytes(chunks[verdict_r]), output, timed_out


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # before Linux 5.3: poll for the exit instead
        return None


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


def _exited(proc: subprocess.Popen[bytes] | _Launched) -> bool:
    if isinstance(proc, _Launched):
        return bool(select.select([proc.exit_fd], [], [], 0)[0])
    pid = proc.pid
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


def _reap(proc: subprocess.Popen[bytes] | _Launched) -> float:
    """Wait for the runner; return the CPU seconds it and its reaped children used."""
    if isinstance(proc, _Launched):
        os.close(proc.exit_fd)
        try:
            answer = proc.zygote.reap(proc.pid)
        except (OSError, EOFError, ValueError, TypeError) as exc:
            sandbox_zygote.give_up(exc)
            answer = None
        if answer is None:
            proc.returncode = -1
            return 0.0
        proc.returncode = os.waitstatus_to_exitcode(answer[0])
        return answer[1]
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
    detail = f"{_UNFINISHED} (exit status {returncode})"
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
