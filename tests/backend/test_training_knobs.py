"""The release knobs: optim.warmup_steps, optim.global_batch_size and model.revision."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gsil_bench.backend import model as model_module
from gsil_bench.backend.batches import tokenize_pairs
from gsil_bench.backend.trainer import lr_factor, train
from gsil_bench.config import OptimConfig, load_config
from gsil_bench.errors import UserError
from gsil_bench.registry import get_loss


def test_warmup_steps_replace_the_ratio():
    # warmup 3 of 10 steps (the ratio would give 5): factors (s + 1) / (3 + 1), then the peak.
    optim = OptimConfig(warmup_steps=3, warmup_ratio=0.5, schedule="constant")
    assert [lr_factor(s, 10, optim) for s in range(5)] == pytest.approx([0.25, 0.5, 0.75, 1, 1])
    # Linear decay starts after the warmup steps: 1/3, 2/3, then 1 - (s - 2) / 4.
    optim = OptimConfig(warmup_steps=2, schedule="linear")
    factors = [lr_factor(s, 6, optim) for s in range(6)]
    assert factors == pytest.approx([1 / 3, 2 / 3, 1.0, 0.75, 0.5, 0.25])
    # warmup_steps 0 is no warmup, whatever the ratio.
    assert lr_factor(0, 10, OptimConfig(warmup_steps=0, schedule="constant")) == 1.0


def test_global_batch_size_gives_the_per_process_batch():
    optim = OptimConfig(global_batch_size=128, grad_accum=2)
    assert optim.for_world(8).batch_size == 8  # 128 / (8 processes x 2 micro-steps)
    assert optim.for_world(1).batch_size == 64
    with pytest.raises(UserError, match=r"global_batch_size \(128\) is not divisible by 3 proc"):
        optim.for_world(3)
    assert OptimConfig(batch_size=5).for_world(4).batch_size == 5  # unset: batch_size as is


def test_global_batch_size_config_errors():
    with pytest.raises(UserError, match=r"optim\.batch_size and optim\.global_batch_size are both"):
        load_config(None, ["optim.batch_size=8", "optim.global_batch_size=64"])
    with pytest.raises(UserError, match=r"global_batch_size \(10\) is not divisible by optim\.gr"):
        load_config(None, ["optim.global_batch_size=10", "optim.grad_accum=4"])


def test_training_with_a_global_batch_equals_the_same_per_process_batch(
    tiny_model, tiny_tokenizer, tmp_path
):
    prompts = [[{"role": "user", "content": f"What is {i} + 1?"}] for i in range(16)]
    reals = [f"{i} + 1 = {i + 1}. #### {i + 1}" for i in range(16)]
    examples, _, _ = tokenize_pairs(
        tiny_tokenizer, prompts, reals, None, max_prompt_tokens=64, max_length=128
    )
    start = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    common = {"lr": 1e-3, "grad_accum": 2, "warmup_ratio": 0.0, "checkpoint_every": 100}
    finals, steps = [], []
    for i, sizes in enumerate([{"global_batch_size": 8}, {"batch_size": 4}]):
        tiny_model.load_state_dict(start)
        result = train(
            tiny_model,
            examples,
            loss=get_loss("sft"),
            hparams={},
            optim=OptimConfig(**common, **sizes),
            seed=0,
            run_dir=tmp_path / f"run{i}",
            pad_id=tiny_tokenizer.pad_token_id,
        )
        steps.append(result.steps)
        finals.append([p.detach().clone() for p in tiny_model.parameters()])
    assert steps == [2, 2]  # 16 examples / global batch 8 (one process, 4 x 2 micro-steps)
    assert all(torch.equal(a, b) for a, b in zip(*finals, strict=True))


def test_revision_reaches_the_model_and_the_tokenizer(monkeypatch):
    seen = {}

    class Loaded:
        pad_token_id = 0

        def to(self, device):
            return self

    def record(kind):
        def from_pretrained(name, **kwargs):
            seen[kind] = (name, kwargs.get("revision"))
            return Loaded()

        return from_pretrained

    monkeypatch.setattr(model_module.AutoTokenizer, "from_pretrained", record("tokenizer"))
    monkeypatch.setattr(model_module.AutoModelForCausalLM, "from_pretrained", record("model"))
    model_module.load_pretrained("org/model", revision="abc123")
    assert seen == {"tokenizer": ("org/model", "abc123"), "model": ("org/model", "abc123")}
    model_module.load_pretrained("org/model")
    assert seen["model"] == ("org/model", None)


def test_revision_is_part_of_the_run_fingerprint():
    pinned = load_config(None, ["model.name=org/model", "model.revision=abc123"])
    assert pinned.model.revision == "abc123"
    other = load_config(None, ["model.name=org/model", "model.revision=def456"])
    unpinned = load_config(None, ["model.name=org/model"])
    assert len({pinned.fingerprint(), other.fingerprint(), unpinned.fingerprint()}) == 3


@pytest.mark.parametrize(
    ("override", "meant"),
    [
        ("warmup_steps=30", "optim.warmup_steps"),
        ("num_warmup_steps=30", "optim.warmup_steps"),
        ("global_batch_size=128", "optim.global_batch_size"),
        ("total_batch_size=128", "optim.global_batch_size"),
        ("revision=abc", "model.revision"),
        ("model_revision=abc", "model.revision"),
        ("optim.warmup_step=30", "optim.warmup_steps"),
        ("learning_rate=1e-4", "optim.lr"),  # the older entries still work
    ],
)
def test_unknown_keys_suggest_the_new_knobs(override, meant):
    key = override.partition("=")[0]
    with pytest.raises(UserError, match=rf"unknown key '{key}' \(did you mean '{meant}'\?\)$"):
        load_config(None, [override])


@pytest.mark.slow
def test_global_batch_size_under_two_processes_matches_one(tmp_path):
    """Two processes (gloo on CPU) with global batch 8 take 4 examples each per step; one
    process takes all 8: DDP's mean of the two 4-example means is the 8-example mean."""
    script = Path(__file__).with_name("ddp_global_batch.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    two, one = tmp_path / "two", tmp_path / "one"
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    launch += ["--master_port", "29533", str(script), str(two)]
    subprocess.run(launch, check=True, env=env, timeout=300)
    subprocess.run([sys.executable, str(script), str(one)], check=True, env=env, timeout=300)
    two_out, one_out = torch.load(two / "out.pt"), torch.load(one / "out.pt")
    assert two_out["steps"] == one_out["steps"] == 4  # 32 examples / global batch 8
    assert torch.allclose(two_out["params"], one_out["params"], atol=1e-5)
