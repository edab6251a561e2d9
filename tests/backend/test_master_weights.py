"""bf16 models train on fp32 master weights: at the papers' lr 5e-7 the weights move as in fp32.

The arithmetic behind the thresholds: Adam moves a weight by about lr = 5e-7 per step. A bf16
weight keeps 8 significant bits, so an update smaller than half its rounding step
(|w| * 2**-9) is lost: only weights below 5e-7 * 2**9 = 2.6e-4 in magnitude can move, about
1% of the tiny model's (initialised with std 0.02). Kept in fp32 (rounding step |w| * 2**-24)
every weight that gets a gradient moves.
"""

from __future__ import annotations

import pytest
import torch

from gsil_bench.backend.batches import collate, sequence_logps, tokenize_pairs
from gsil_bench.backend.model import finish_training, load_pretrained
from gsil_bench.backend.trainer import _optimizer, train
from gsil_bench.config import OptimConfig
from gsil_bench.errors import UserError
from gsil_bench.registry import get_loss

PROMPTS = [[{"role": "user", "content": f"What is {i} + {i + 1}?"}] for i in range(16)]
REALS = [f"{i} + {i + 1} = {2 * i + 1}. #### {2 * i + 1}" for i in range(16)]
STEPS, BATCH, LR = 32, 4, 5e-7
OPTIM = OptimConfig(
    lr=LR,
    batch_size=BATCH,
    epochs=STEPS * BATCH / len(PROMPTS),
    warmup_ratio=0.0,
    schedule="constant",
    checkpoint_every=1000,
)


@pytest.fixture
def bf16_folder(tiny_model, tiny_tokenizer, tmp_path):
    """The tiny model stored in bf16, as 7B checkpoints on the Hub are."""
    folder = tmp_path / "bf16-model"
    tiny_model.to(torch.bfloat16).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


def _flat(model) -> torch.Tensor:
    return torch.cat([p.detach().float().reshape(-1) for p in model.parameters()])


def _sft(folder, dtype: str, mixed_precision: str, run_dir):
    """(weights before, weights after) of STEPS SFT steps through the training loop."""
    model, tokenizer = load_pretrained(str(folder), dtype=dtype)
    examples, _, _ = tokenize_pairs(
        tokenizer, PROMPTS, REALS, None, max_prompt_tokens=64, max_length=128
    )
    before = _flat(model)
    optim = OPTIM.model_copy(update={"mixed_precision": mixed_precision})
    result = train(
        model,
        examples,
        loss=get_loss("sft"),
        hparams={},
        optim=optim,
        seed=0,
        run_dir=run_dir,
        pad_id=tokenizer.pad_token_id,
    )
    assert result.steps == STEPS
    return model, before, _flat(model)


def test_bf16_model_trains_on_fp32_masters_like_fp32(bf16_folder, tmp_path):
    model, before, after = _sft(bf16_folder, "bfloat16", "auto", tmp_path / "bf16")
    assert next(model.parameters()).dtype == torch.float32  # the masters
    moved = (after != before).float().mean().item()
    assert moved > 0.99
    # The same run in fp32 throughout: the updates agree (autocast changes the forward a little).
    _, before32, after32 = _sft(bf16_folder, "float32", "no", tmp_path / "fp32")
    assert torch.equal(before, before32)  # both start from the same stored bf16 values
    cosine = torch.nn.functional.cosine_similarity(after - before, after32 - before32, dim=0)
    assert cosine.item() > 0.99
    # Cast back to bf16 and without accelerate's autocast wrapper, as a fresh load would be.
    trained = finish_training(model, torch.bfloat16)
    assert {p.dtype for p in trained.parameters()} == {torch.bfloat16}
    assert "_original_forward" not in trained.__dict__


def test_updating_bf16_weights_directly_loses_the_updates(bf16_folder):
    """The old path (a plain optimizer on bf16 weights), same data, lr and steps: ~1% move."""
    model, tokenizer = load_pretrained(str(bf16_folder), dtype="bfloat16")
    examples, _, _ = tokenize_pairs(
        tokenizer, PROMPTS, REALS, None, max_prompt_tokens=64, max_length=128
    )
    before = _flat(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    for step in range(STEPS):
        chunk = [examples[(step * BATCH + k) % len(examples)] for k in range(BATCH)]
        batch = collate(chunk, with_generated=False, pad_id=tokenizer.pad_token_id)
        logps, counts = sequence_logps(model, batch)
        optimizer.zero_grad()
        (-(logps / counts).mean()).backward()
        optimizer.step()
    moved = (_flat(model) != before).float().mean().item()
    assert 0 < moved < 0.05


def test_the_optimizer_refuses_bf16_weights(bf16_folder):
    model, _ = load_pretrained(str(bf16_folder), dtype="bfloat16")
    with pytest.raises(UserError, match=r"update torch\.bfloat16 weights directly"):
        _optimizer(model, OPTIM)


def test_a_resumed_bf16_run_continues_from_its_fp32_masters(bf16_folder, tmp_path):
    """The checkpoint keeps the fp32 masters: resuming from the bf16 start ends exactly where
    an uninterrupted run ends (rounded bf16 masters would lose the small-lr updates)."""
    _, _, straight = _sft(bf16_folder, "bfloat16", "auto", tmp_path / "straight")
    model, tokenizer = load_pretrained(str(bf16_folder), dtype="bfloat16")
    examples, _, _ = tokenize_pairs(
        tokenizer, PROMPTS, REALS, None, max_prompt_tokens=64, max_length=128
    )
    kwargs = {
        "loss": get_loss("sft"),
        "hparams": {},
        "seed": 0,
        "run_dir": tmp_path / "resumed",
        "pad_id": tokenizer.pad_token_id,
    }
    # Interrupted during step STEPS / 2 + 1, after the checkpoint of step STEPS / 2.
    optim = OPTIM.model_copy(update={"checkpoint_every": STEPS // 2})
    with pytest.raises(StopAfter):
        train(model, examples, optim=optim, **kwargs, on_log=_stop_at(STEPS // 2))
    fresh, _ = load_pretrained(str(bf16_folder), dtype="bfloat16")
    result = train(fresh, examples, optim=optim, **kwargs)
    assert result.resumed_from == STEPS // 2
    assert torch.equal(_flat(fresh), straight)


class StopAfter(Exception):
    pass


def _stop_at(step: int):
    def on_log(row):
        if row["step"] == step + 1:  # the checkpoint of `step` is already written
            raise StopAfter

    return on_log


def test_a_loaded_model_sits_on_the_process_accelerator(bf16_folder, monkeypatch):
    # Generation, reference passes and evaluation run before train() places the model: the
    # loader puts it on accelerate's device for this process (the meta device stands in for a
    # GPU here; on this CPU-only machine the real one is the CPU).
    from gsil_bench.backend import model as model_module

    class OnMeta:
        device = torch.device("meta")

    monkeypatch.setattr(model_module, "PartialState", OnMeta)
    model, _ = load_pretrained(str(bf16_folder), dtype="bfloat16")
    assert {p.device.type for p in model.parameters()} == {"meta"}
