"""A cgroup v2 per sandbox check, where this process may make one with the memory controller.

Used only when the cgroup this process lives in already has ``memory`` in its
``cgroup.subtree_control`` and is writable by us (the root cgroup as root, or a delegated
subtree); nothing here ever enables a controller or moves the caller. Each check then gets a child
cgroup with ``memory.max`` (the check's total, all its processes together, page cache included),
``memory.swap.max = 0`` and ``memory.oom.group = 1``; with ``pids`` delegated too, ``pids.max``;
with ``cpu``, a ``cpu.weight`` that follows the check's demotion. The runner joins the cgroup
itself, through a ``cgroup.procs`` descriptor opened here (so the write is checked against our
credentials, and the path need not be visible inside the check's mount namespace). When the check
ends, everything left in it is killed (``cgroup.kill``) and the cgroup is removed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from dataclasses import dataclass

log = logging.getLogger("gsil_bench.evaluation.sandbox")
PREFIX = "gsil-sandbox-"


@dataclass(frozen=True)
class CgroupSupport:
    parent: str  # the directory per-check cgroups are made in
    controllers: frozenset[str]  # of those we use: "memory", "pids", "cpu"


def own_cgroup_dir(proc_self_cgroup: str, mountinfo: str) -> str | None:
    """The directory of this process' cgroup v2, from /proc/self/cgroup and /proc/self/mountinfo
    (None on a v1-only machine or when no cgroup2 mount shows our cgroup)."""
    path = next(
        (line[3:] for line in proc_self_cgroup.splitlines() if line.startswith("0::")), None
    )
    if path is None or not path.startswith("/"):
        return None
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        fstype = line.split(" - ", 1)[1].split()[0]
        root, mount_point = fields[3], fields[4].replace("\\040", " ")
        if fstype != "cgroup2":
            continue
        if root == "/":
            return os.path.normpath(mount_point + path)
        if path == root or path.startswith(root.rstrip("/") + "/"):
            return os.path.normpath(mount_point + "/" + path[len(root) :])
    return None


def detect() -> CgroupSupport | None:
    """Per-check memory cgroups under our own cgroup, or None. Never raises: a v1-only machine,
    any missing file, permission or a failed trial cgroup means "not available"."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as fh:
            own = fh.read()
        with open("/proc/self/mountinfo", encoding="utf-8") as fh:
            mounts = fh.read()
        cgroup_dir = own_cgroup_dir(own, mounts)
        support = delegated(cgroup_dir) if cgroup_dir is not None else None
        if support is not None:
            CheckCgroup.create(support, memory_bytes=64 * 1024 * 1024, max_pids=8).close()
        return support
    except OSError as exc:
        log.debug("no per-check memory cgroup: %s", exc)
        return None


def delegated(cgroup_dir: str) -> CgroupSupport | None:
    """``cgroup_dir`` as a parent of per-check cgroups, if it hands ``memory`` down to children
    and we may create them; which of the controllers we use it hands down too."""
    try:
        with open(os.path.join(cgroup_dir, "cgroup.subtree_control"), encoding="utf-8") as fh:
            enabled = set(fh.read().split())
    except OSError:
        return None
    if "memory" not in enabled or not os.access(cgroup_dir, os.W_OK | os.X_OK):
        return None
    return CgroupSupport(cgroup_dir, frozenset(enabled & {"memory", "pids", "cpu"}))


class CheckCgroup:
    """One check's cgroup: limits written, a ``cgroup.procs`` descriptor for the runner."""

    def __init__(self, path: str, procs_fd: int, controllers: frozenset[str]) -> None:
        self.path = path
        self.procs_fd = procs_fd
        self.controllers = controllers

    @classmethod
    def create(cls, support: CgroupSupport, *, memory_bytes: int, max_pids: int) -> CheckCgroup:
        path = os.path.join(support.parent, f"{PREFIX}{os.getpid()}-{secrets.token_hex(6)}")
        os.mkdir(path, 0o755)
        try:
            if "memory" in support.controllers:
                _write(path, "memory.max", str(memory_bytes))
                for name, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
                    with contextlib.suppress(FileNotFoundError):  # swap accounting is optional
                        _write(path, name, value)
            if "pids" in support.controllers:
                _write(path, "pids.max", str(max_pids))
            fd = os.open(os.path.join(path, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            _remove(path)
            raise
        return cls(path, fd, support.controllers)

    def renice(self, nice: int) -> None:
        """The cgroup's CPU weight to match a nice value (the kernel's nice-to-weight curve)."""
        if "cpu" in self.controllers:
            with contextlib.suppress(OSError):
                _write(self.path, "cpu.weight", str(max(1, round(100 * 1.25 ** (-nice)))))

    def oom_kills(self) -> int:
        """How many processes the memory limit killed so far (0 without the memory controller)."""
        try:
            with open(os.path.join(self.path, "memory.events"), encoding="utf-8") as fh:
                for line in fh:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def close(self) -> None:
        """Kill whatever is left in the cgroup and remove it."""
        with contextlib.suppress(OSError):
            os.close(self.procs_fd)
        _remove(self.path)


def _write(path: str, name: str, value: str) -> None:
    with open(os.path.join(path, name), "w", encoding="utf-8") as fh:
        fh.write(value)


def _remove(path: str) -> None:
    deadline = time.monotonic() + 2.0
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:  # EBUSY: processes are still leaving
            if time.monotonic() > deadline:
                log.warning("could not remove sandbox cgroup %s: %s", path, exc)
                return
        _kill_all(path)
        time.sleep(0.005)


def _kill_all(path: str) -> None:
    try:
        _write(path, "cgroup.kill", "1")  # Linux 5.14+: the whole cgroup, atomically
        return
    except OSError:
        pass
    try:
        with open(os.path.join(path, "cgroup.procs"), encoding="utf-8") as fh:
            pids = [int(pid) for pid in fh.read().split()]
    except (OSError, ValueError):
        return
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, 9)
