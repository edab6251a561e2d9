"""benchmarks/gpu_check.py: its arithmetic by hand, its quickstart copy, and (slow) the whole
check on this CPU at the tiny size."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_check = _load()


def test_training_flops_by_hand():
    # One row: 10 tokens forwarded, 4 predicted, 50 attending pairs; 100 body parameters,
    # hidden 8, vocabulary 50, 2 layers.
    # 6 * 100 * 10 = 6,000; 6 * 8 * 50 * 4 = 9,600; 12 * 2 * 8 * 50 = 9,600; sum 25,200.
    flops = gpu_check.training_flops([(10, 4, 50)], body_params=100, hidden=8, vocab=50, layers=2)
    assert flops == 25_200
    # Two rows add up.
    two = gpu_check.training_flops(
        [(10, 4, 50), (10, 4, 50)], body_params=100, hidden=8, vocab=50, layers=2
    )
    assert two == 50_400


def test_attending_pairs_causal_row():
    # A causal row of 5 tokens: 1 + 2 + 3 + 4 + 5 = 15 pairs (each query sees itself).
    assert gpu_check.attending_pairs(3, (2,)) == 15


def test_attending_pairs_match_the_prefix_sharing_mask():
    from gsil_bench.backend.batches import TrainExample
    from gsil_bench.backend.blocks import collate_shared

    example = TrainExample(prompt_ids=[5, 6, 7, 8], real_ids=[9, 10], generated_ids=[11, 12, 13])
    mask = collate_shared([example], pad_id=0)["block_mask"]
    # By hand: prompt 4 -> 10 causal pairs; real 2 -> 2 * 4 + 3 = 11; generated 3 ->
    # 3 * 4 + 6 = 18; 39 in all.
    assert int(mask.sum()) == 39
    assert gpu_check.attending_pairs(4, (2, 3)) == 39


@pytest.mark.parametrize(
    ("name", "peak"),
    [
        ("NVIDIA H200", 989.0),
        ("NVIDIA H100 80GB HBM3", 989.0),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA L4", 121.0),
        ("Tesla T4", None),
    ],
)
def test_peak_by_device_name(name, peak):
    assert gpu_check.peak_tflops(name, None) == peak


def test_given_peak_wins():
    assert gpu_check.peak_tflops("NVIDIA H200", 500.0) == 500.0


def test_moved_fraction_counts_changed_elements():
    layer = torch.nn.Linear(3, 2, bias=False)  # 6 weights
    before = {name: p.detach().clone() for name, p in layer.named_parameters()}
    with torch.no_grad():
        layer.weight[0, 0] += 1.0
        layer.weight[1, 2] -= 1.0
    assert gpu_check.moved_fraction(before, layer) == pytest.approx(2 / 6)


def test_quickstart_copy_is_a_valid_sweep_with_one_seed_and_two_methods(tmp_path):
    from gsil_bench.study.spec import load_sweep

    target = tmp_path / "quickstart.yaml"
    gpu_check.quickstart_file(REPO / "sweeps" / "quickstart.yaml", target, tiny=True)
    spec = load_sweep(target)
    assert spec.seeds == [0]
    assert spec.workers == 1
    assert [m.loss for m in spec.methods] == ["sft", "gsil-logistic"]
    # The tiny sizes are merged into the quickstart's base, which keeps its own settings.
    assert spec.base["model"]["tiny"]["base_steps"] == 12
    assert spec.base["eval"]["suites"] == ["mini"]
    assert spec.base["optim"]["lr"] == 3.0e-4
    full = tmp_path / "full.yaml"
    gpu_check.quickstart_file(REPO / "sweeps" / "quickstart.yaml", full, tiny=False)
    assert "model" not in yaml.safe_load(full.read_text())["base"]


def test_steps_below_two_are_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.parse_args(["--steps", "1"])
    assert exit_info.value.code == 2
    assert "--steps" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu_is_one_line():
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cuda", "--no-quickstart"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "gpu_check: --device cuda but torch sees no GPU (use --device cpu)"
    )


@pytest.mark.slow
def test_tiny_check_on_the_cpu(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--device",
            "cpu",
            "--size",
            "tiny",
            "--peak-tflops",
            "1",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    for key in (
        "device_name",
        "torch",
        "transformers",
        "generation_tokens_per_s",
        "training_tokens_per_s",
        "mfu",
        "peak_tflops",
        "peak_memory_gib",
        "weights_moved_fraction",
        "weights_moved_fraction_bf16",
        "quickstart",
    ):
        assert key in report, key
    assert report["torch"] == torch.__version__
    assert report["model"]["dtype"] == "torch.bfloat16"
    assert report["training"]["master_dtype"] == "torch.float32"
    assert report["training"]["steps"] == 20
    # 16 prompts, at most 16 new tokens each.
    assert 0 < report["generation"]["tokens"] <= 16 * 16
    assert report["weights_moved_fraction"] > 0.5
    assert 0 < report["mfu"] < 1
    assert report["quickstart"]["status"] == "ok"
    assert report["experiment_load"] == {"device": "cpu", "dtype": "torch.float32"}
    assert (tmp_path / "out" / "quickstart_table.md").read_text().startswith("# gsil-bench")
