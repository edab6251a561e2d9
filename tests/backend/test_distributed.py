"""The same training code under two processes (gloo on CPU) as under one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).with_name("ddp_script.py")


@pytest.mark.slow
def test_two_processes_match_one_process_with_twice_the_batch(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    two = tmp_path / "two"
    one = tmp_path / "one"
    two.mkdir()
    one.mkdir()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "29517",
            str(SCRIPT),
            str(two),
            "4",
        ],
        check=True,
        env=env,
        timeout=300,
    )
    subprocess.run([sys.executable, str(SCRIPT), str(one), "8"], check=True, env=env, timeout=300)
    # DDP averages the two ranks' gradients of 4-example means: the mean over 8 examples.
    assert torch.allclose(torch.load(two / "params.pt"), torch.load(one / "params.pt"), atol=1e-5)
