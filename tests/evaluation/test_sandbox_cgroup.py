"""Per-check cgroups (v2): finding our cgroup, deciding whether it delegates memory, and a check
really running inside a cgroup of its own on this kernel.

The memory limit itself needs a cgroup that delegates ``memory``; where this machine has none
(cgroup v1 memory, or our cgroup is not the delegating kind) those tests skip and say so.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gsil_bench.evaluation import sandbox, sandbox_cgroup
from gsil_bench.evaluation.sandbox import run_check
from gsil_bench.evaluation.sandbox_cgroup import CgroupSupport, delegated, own_cgroup_dir

HYBRID_CGROUP = "4:memory:/some/where\n1:cpu:/\n0::/\n"
HYBRID_MOUNTS = (
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
)
V2_MOUNT = "29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


# --- finding our cgroup ---------------------------------------------------------------------------
def test_own_cgroup_on_a_v2_machine():
    cgroup = "0::/user.slice/user-1000.slice/session-3.scope\n"
    assert (
        own_cgroup_dir(cgroup, V2_MOUNT)
        == "/sys/fs/cgroup/user.slice/user-1000.slice/session-3.scope"
    )


def test_own_cgroup_on_a_hybrid_machine_is_the_unified_mount():
    assert own_cgroup_dir(HYBRID_CGROUP, HYBRID_MOUNTS) == "/sys/fs/cgroup/unified"


def test_own_cgroup_below_a_mount_of_a_subtree():
    # A container sees its cgroup's subtree mounted at /sys/fs/cgroup: root field "/docker/abc".
    mounts = "29 23 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    assert own_cgroup_dir("0::/docker/abc/inner\n", mounts) == "/sys/fs/cgroup/inner"
    assert own_cgroup_dir("0::/elsewhere\n", mounts) is None


def test_no_cgroup2_means_none():
    assert own_cgroup_dir("4:memory:/x\n1:cpu:/\n", HYBRID_MOUNTS) is None  # v1 only
    assert own_cgroup_dir("0::/\n", HYBRID_MOUNTS.splitlines()[0]) is None  # no cgroup2 mount


# --- does it delegate memory ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("subtree_control", "expected"),
    [
        ("", None),
        ("cpu pids hugetlb", None),
        ("memory", {"memory"}),
        ("cpuset cpu io memory hugetlb pids rdma misc", {"memory", "pids", "cpu"}),
    ],
)
def test_delegation_needs_memory_in_subtree_control(tmp_path, subtree_control, expected):
    (tmp_path / "cgroup.subtree_control").write_text(subtree_control + "\n")
    support = delegated(str(tmp_path))
    if expected is None:
        assert support is None
    else:
        assert support == CgroupSupport(str(tmp_path), frozenset(expected))


def test_missing_or_unwritable_cgroup_is_not_delegated(tmp_path):
    assert delegated(str(tmp_path / "absent")) is None
    (tmp_path / "cgroup.subtree_control").write_text("memory pids\n")
    if os.geteuid() != 0:  # root writes anywhere: only a plain user can see the refusal
        tmp_path.chmod(0o555)
        try:
            assert delegated(str(tmp_path)) is None
        finally:
            tmp_path.chmod(0o755)


def test_detection_never_raises_and_the_report_says_which_memory_limit():
    first = sandbox_cgroup.detect()
    assert first is None or "memory" in first.controllers
    sandbox.isolation_report()
    assert sandbox.isolation_report()["memory"].startswith(
        "cgroup v2" if sandbox._cgroups is not None else "RLIMIT_AS"
    )


# --- a check in a cgroup of its own, on this kernel -----------------------------------------------
def _writable_cgroup2() -> str:
    """Our cgroup v2 directory, if we may make children in it (controllers or not)."""
    try:
        own = Path("/proc/self/cgroup").read_text()
        mounts = Path("/proc/self/mountinfo").read_text()
    except OSError:
        pytest.skip("no /proc/self/cgroup")
    path = own_cgroup_dir(own, mounts)
    if path is None or not os.access(path, os.W_OK):
        pytest.skip("no writable cgroup v2 directory here")
    return path


def _leftovers(parent: str) -> list[str]:
    mine = f"{sandbox_cgroup.PREFIX}{os.getpid()}-"
    return [name for name in os.listdir(parent) if name.startswith(mine)]


def test_a_check_runs_in_its_own_cgroup_which_is_removed_afterwards(monkeypatch):
    parent = _writable_cgroup2()
    sandbox.isolation_report()  # detect first: the test's support must not be overwritten
    monkeypatch.setattr(sandbox, "_cgroups", CgroupSupport(parent, frozenset()))
    program = (
        "import subprocess\n"
        "line = [l for l in open('/proc/self/cgroup') if l.startswith('0::')][0]\n"
        f"assert line.rsplit('/', 1)[1].startswith({sandbox_cgroup.PREFIX!r}), line\n"
        "subprocess.Popen(['sleep', '30'])  # left running: the cgroup's removal must cope\n"
    )
    result = run_check(program, timeout_s=5)
    assert result.passed, result
    assert _leftovers(parent) == []


def test_a_check_killed_by_its_memory_cgroup_says_so(monkeypatch):
    parent = _writable_cgroup2()
    sandbox.isolation_report()
    monkeypatch.setattr(sandbox, "_cgroups", CgroupSupport(parent, frozenset()))
    monkeypatch.setattr(sandbox_cgroup.CheckCgroup, "oom_kills", lambda self: 3)
    result = run_check("import os\nos._exit(9)", memory_mb=200)
    assert result.status == "failed"
    assert result.detail == (
        "MemoryError: the check's processes together held more than 200 MB "
        "(memory limit; the cgroup killed 3 process(es))"
    )
    # A program that reported its own failure keeps its own message.
    assert "AssertionError" in run_check("assert False", memory_mb=200).detail


def test_the_memory_limit_is_set_on_the_checks_cgroup():
    if sandbox_cgroup.detect() is None:
        pytest.skip("our cgroup does not delegate the memory controller (cgroup v2) here")
    sandbox.isolation_report()
    program = (
        "line = [l for l in open('/proc/self/cgroup') if l.startswith('0::')][0].strip()\n"
        "mount = [l.split()[4] for l in open('/proc/self/mountinfo') if ' - cgroup2 ' in l][0]\n"
        "limit = open(mount + line[3:] + '/memory.max').read().strip()\n"
        "assert limit == str(300 * 1024 * 1024), limit\n"
    )
    result = run_check(program, memory_mb=300)
    assert result.passed, result
