"""The example plugin package installs with pip and registers through its entry point."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "plugin-example"

CHECK = textwrap.dedent(
    """
    import torch
    import gsil_plugin_example
    from gsil_bench.registry import available, get_loss
    from gsil_bench.types import LogpBatch

    assert "gsil-squared-hinge" in available(), available()
    spec = get_loss("gsil-squared-hinge")
    assert spec.target == "gsil_plugin_example:gsil_squared_hinge", spec.target
    assert gsil_plugin_example.__file__.startswith({target!r}), gsil_plugin_example.__file__
    # Log-ratios 0, so z_w = z_l = 0: relu(1)**2 + relu(1)**2 = 2.
    batch = LogpBatch(
        torch.tensor([-5.0]), torch.tensor([-7.0]), torch.tensor([-5.0]), torch.tensor([-7.0])
    )
    assert abs(spec(batch).loss.item() - 2.0) < 1e-6
    print("plugin ok")
    """
)


def pip_install(source: Path, target: Path) -> subprocess.CompletedProcess[str]:
    """``pip install --target``; without setuptools here, let pip fetch it in an isolated build."""
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet"]
    command += ["--disable-pip-version-check", "--target", str(target)]
    if importlib.util.find_spec("setuptools") is not None:
        command.append("--no-build-isolation")
    command.append(str(source))
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_example_plugin_installs_and_registers(tmp_path):
    # pip builds in the source tree (build/, *.egg-info): build a copy, keep the repo clean.
    source = tmp_path / "plugin-example"
    shutil.copytree(EXAMPLE, source)
    target = tmp_path / "site"

    installed = pip_install(source, target)
    if installed.returncode != 0 and importlib.util.find_spec("setuptools") is None:
        pytest.skip(f"no setuptools and an isolated build failed: {installed.stderr[-500:]}")
    assert installed.returncode == 0, installed.stderr

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(target), env.get("PYTHONPATH")) if p)
    checked = subprocess.run(
        [sys.executable, "-c", CHECK.format(target=str(target))],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stderr
    assert "plugin ok" in checked.stdout

    # The registry's contract tests pick the installed plugin up with no test of its own.
    contract = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "squared-hinge"]
        + [str(Path(__file__).with_name("test_registry.py"))],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert contract.returncode == 0, contract.stdout[-2000:]
    assert " passed" in contract.stdout and "deselected" in contract.stdout
