"""A warm, trusted parent that starts sandbox checks by ``fork`` instead of a fresh interpreter.

Starting ``unshare ... python -I -S`` per check costs about 10 ms of CPU (the interpreter and the
runner's imports), more than most HumanEval programs use. The zygote is that same interpreter
(``python -I -S``, an environment of its own, cwd ``/``, its own process group), started once per
calling process with the runner's code loaded and nothing else: no caller state, no program, no
nonce (each check's config, nonce included, travels on a pipe straight to the check's runner,
never through the zygote). Per check it forks a child that does what ``unshare`` did:

* a process group of its own, the check's descriptors in place (config on stdin, output on
  stdout and stderr, the runner's pipes at fixed numbers), every other descriptor closed;
* ``unshare(2)`` of the same namespaces as the ``unshare`` command line it replaces (network,
  PID, mount, IPC), mounts made private; for a PID namespace it forks the runner as PID 1 (killed
  if this child dies, ``--kill-child``) with a fresh /proc (``--mount-proc``) and passes the
  runner's exit status on (by the same signal where it was killed);
* then the runner, exactly as before: limits, uid, hidden paths, supervisor, the program.

The child is not the caller's: the caller sees its exit on a pidfd, kills its process group as
before, and asks the zygote to reap it (exit status and CPU time). Only used as root with
``unshare`` candidates (a user namespace needs its id maps written from outside) and where
pidfds exist; everything else, and any zygote failure, takes the ``subprocess`` path.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import marshal
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence

log = logging.getLogger("gsil_bench.evaluation.sandbox")

# unshare(1) flags -> clone(2) flags; --fork, --kill-child and --mount-proc are behaviours.
CLONE = {"--net": 0x40000000, "--pid": 0x20000000, "--mount": 0x00020000, "--ipc": 0x08000000}
KNOWN = {*CLONE, "--fork", "--kill-child", "--mount-proc"}
REPLY_TIMEOUT_S = 30.0  # a fork, or the reap of a check already killed, takes milliseconds
FIRST_FREE_FD = 7  # the check's descriptors are 0-6 (see sandbox._run_as)

ZYGOTE = r"""
import os, sys, marshal, resource, socket, ctypes, struct, select, time, _signal, fcntl
libc = ctypes.CDLL(None, use_errno=True)
sock = socket.socket(fileno=int(sys.argv[1]))
runner = {"__name__": "__runner__"}
exec(marshal.loads(sock.recv(1 << 20)), runner)  # the runner's code; it does not start itself
del sys.argv[1:]  # as the runner's own interpreter had it: ["-c"]
def fail(what):
    err = ctypes.get_errno()
    raise OSError(err, "%s: %s" % (what, os.strerror(err)))
def start(flags, fork, mount_proc, pairs, env, cwd, fds):
    # The forked child (unshare's part). Never returns.
    try:
        os.setpgid(0, 0)
        sock.detach()
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, %(first_free)d) for fd in fds]  # above all targets
        for fd in list(fds):
            os.close(fd)
        for src, target in pairs:
            os.dup2(high[src], target)
        for fd in high:
            os.close(fd)
        os.closerange(%(first_free)d, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        if flags and libc.unshare(flags) != 0:
            fail("unshare")
        if flags & 0x00020000 and libc.mount(b"none", b"/", None, 16384 | (1 << 18), None) != 0:
            fail("make / private")
        if fork:
            child = os.fork()
            if child != 0:
                while True:
                    pid, status = os.waitpid(child, 0)
                    if os.WIFEXITED(status):
                        os._exit(os.WEXITSTATUS(status))
                    if os.WIFSIGNALED(status):
                        sig = os.WTERMSIG(status)
                        _signal.signal(sig, _signal.SIG_DFL)
                        os.kill(os.getpid(), sig)
                        os._exit(128 + sig)
            if libc.prctl(1, 9, 0, 0, 0) != 0:  # PR_SET_PDEATHSIG SIGKILL: --kill-child
                fail("kill-child")
        if mount_proc:
            if libc.mount(b"none", b"/proc", None, 16384 | (1 << 18), None) != 0:
                fail("make /proc private")
            if libc.mount(b"proc", b"/proc", b"proc", 2 | 4 | 8, None) != 0:
                fail("mount /proc")
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
    except BaseException as exc:
        try:
            os.write(2, ("sandbox zygote: %%s\n" %% (exc,)).encode())
        finally:
            os._exit(70)
    runner["_main"]()
    os._exit(70)
while True:
    try:
        data, fds, _flags, _addr = socket.recv_fds(sock, 1 << 16, 16)
    except OSError:
        os._exit(0)
    if not data:
        os._exit(0)
    request = marshal.loads(data)
    if request[0] == "spawn":
        try:
            pid = os.fork()
        except OSError as exc:
            pid = -exc.errno
        if pid == 0:
            start(*request[1:], fds)
        if pid > 0:  # its group exists before the caller learns its pid (and may kill the group)
            try:
                os.setpgid(pid, pid)
            except OSError:
                pass
        for fd in fds:
            os.close(fd)
        sock.send(marshal.dumps(pid))
    elif request[0] == "reap":
        try:
            _pid, status, usage = os.wait4(request[1], 0)
            sock.send(marshal.dumps((status, usage.ru_utime + usage.ru_stime)))
        except ChildProcessError:
            sock.send(marshal.dumps(None))
""".replace("%(first_free)d", str(FIRST_FREE_FD)).replace("%%", "%")


def usable_prefix(prefix: Sequence[str]) -> tuple[int, bool, bool] | None:
    """(clone flags, fork, mount /proc) for an ``unshare`` command line the zygote can replace,
    None for any other (a user namespace, unknown flags, no ``unshare``)."""
    if not prefix or os.path.basename(prefix[0]) != "unshare" or os.geteuid() != 0:
        return None
    flags = list(prefix[1:])
    if not set(flags) <= KNOWN or not hasattr(os, "pidfd_open"):
        return None
    clone = 0
    for flag in flags:
        clone |= CLONE.get(flag, 0)
    return clone, "--fork" in flags, "--mount-proc" in flags


class Zygote:
    """The caller's side: one zygote per process, requests serialised by a lock."""

    def __init__(self, runner_code: bytes) -> None:
        self._lock = threading.Lock()
        self._owner = os.getpid()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", ZYGOTE, str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                process_group=0,
                env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
                cwd="/",
            )
        finally:
            theirs.close()
        self._sock = ours
        self._sock.settimeout(REPLY_TIMEOUT_S)  # a stuck zygote fails (fresh interpreters)
        self._sock.send(runner_code)

    @property
    def alive(self) -> bool:
        return os.getpid() == self._owner and self._proc.poll() is None

    def spawn(
        self,
        how: tuple[int, bool, bool],
        fds: Sequence[tuple[int, int]],
        env: dict[str, str],
        cwd: str,
    ) -> int:
        """Start a check: ``fds`` are (our descriptor, its number in the check). Its pid."""
        sources = sorted({fd for fd, _ in fds})
        pairs = [(sources.index(fd), target) for fd, target in fds]
        request = marshal.dumps(("spawn", *how, pairs, env, cwd))
        with self._lock:
            socket.send_fds(self._sock, [request], sources)
            pid = marshal.loads(self._sock.recv(64))
        if pid < 0:
            raise OSError(-pid, os.strerror(-pid))
        return int(pid)

    def reap(self, pid: int) -> tuple[int, float] | None:
        """Wait for a check the zygote started: (wait status, CPU seconds), None if unknown."""
        with self._lock:
            self._sock.send(marshal.dumps(("reap", pid)))
            answer = marshal.loads(self._sock.recv(64))
        return None if answer is None else (int(answer[0]), float(answer[1]))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=1)


_zygote: Zygote | None = None
_zygote_lock = threading.Lock()
_broken = False
_suspended = False  # while the isolation probe tries a candidate without the zygote


def get(runner_code: bytes) -> Zygote | None:
    """This process's zygote (started on first use), None once it failed."""
    global _zygote, _broken
    with _zygote_lock:
        if _broken or _suspended:
            return None
        if _zygote is None or not _zygote.alive:
            try:
                _zygote = Zygote(runner_code)
                atexit.register(_zygote.close)
            except OSError as exc:
                log.warning("SANDBOX: no zygote (%s); checks start fresh interpreters", exc)
                _broken = True
                return None
        return _zygote


def is_off() -> bool:
    return _broken or _suspended


@contextlib.contextmanager
def suspended() -> Iterator[None]:
    """No zygote within (for the isolation probe; not for concurrent checks)."""
    global _suspended
    _suspended = True
    try:
        yield
    finally:
        _suspended = False


def give_up(exc: BaseException) -> None:
    """A request failed: checks start fresh interpreters from now on."""
    global _broken
    with _zygote_lock:
        if not _broken:
            log.warning("SANDBOX: zygote failed (%s); checks start fresh interpreters", exc)
        _broken = True
