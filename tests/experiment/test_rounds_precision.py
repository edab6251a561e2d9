"""Which weights a round hands on: a bf16 model trains on fp32 masters within a round, and the
next round starts from those masters rounded to bf16, the model the round saved.

That is what both releases do between iterations: each iteration is a new process that loads
the previous iteration's saved model, and DeepSpeed (ZeRO-3, bf16, with
``stage3_gather_16bit_weights_on_model_save: true``) saves the 16-bit weights, not the fp32
masters (uclaml/SPIN ``configs/deepspeed_zero3.yaml``: ``zero3_save_16bit_model: true``;
tengxiao1/GSIL ``configs/deepspeed_config_bf16.json``).

The arithmetic: 8 AdamW steps at lr 5e-7 move a weight by at most about 8 * 5e-7 = 4e-6. A bf16
weight keeps 8 significant bits, so the rounded copy changes only where the move reaches half
its rounding step (|w| * 2**-9), i.e. for |w| below about 4e-6 * 2**9 = 2e-3: under 10% of the
tiny model's weights (std 0.02; its norm weights are 1). The fp32 masters move wherever there is
a gradient.
"""

from __future__ import annotations

import torch

from gsil_bench.backend.cache import DiskCache
from gsil_bench.backend.model import load_pretrained
from gsil_bench.config import LossConfig, ModelConfig, OptimConfig, RunConfig
from gsil_bench.data.records import Demonstration
from gsil_bench.experiment import rounds
from gsil_bench.record import RunDir
from gsil_bench.registry import get_loss

DEMOS = [
    Demonstration(
        prompt=[{"role": "user", "content": f"What is {i} + {i + 1}?"}],
        response=f"{i} + {i + 1} = {2 * i + 1}. #### {2 * i + 1}",
    )
    for i in range(16)
]


def _flat(model) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).clone() for p in model.parameters()])


def test_a_bf16_round_hands_on_its_masters_rounded_to_bf16(
    tiny_model, tiny_tokenizer, tmp_path, monkeypatch
):
    folder = tmp_path / "bf16-model"
    tiny_model.to(torch.bfloat16).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    config = RunConfig(
        model=ModelConfig(name=str(folder), dtype="bfloat16"),
        loss=LossConfig(name="sft"),
        optim=OptimConfig(
            lr=5e-7,
            batch_size=4,
            epochs=2,  # 16 demonstrations: 8 steps a round
            schedule="constant",
            warmup_ratio=0.0,
            checkpoint_every=1000,
        ),
        iterations=2,
    )
    plan = rounds.RoundPlan(
        config=config,
        loss=get_loss("sft"),
        hparams={},
        run_dir=RunDir(tmp_path / "run"),
        cache=DiskCache(tmp_path / "cache"),
        stages=rounds.Stages(),
    )
    starts: list[torch.Tensor] = []
    masters: list[torch.Tensor] = []
    train = rounds.train

    def recording(model, *args, **kwargs):
        starts.append(_flat(model))
        result = train(model, *args, **kwargs)
        assert result.steps == 8
        masters.append(_flat(model))  # upcast in place: the fp32 masters at the round's end
        return result

    monkeypatch.setattr(rounds, "train", recording)
    model, tokenizer = load_pretrained(str(folder), dtype="bfloat16")
    stored = _flat(model)
    final, _, facts = rounds.run_rounds(plan, model, tokenizer, DEMOS)
    assert len(facts) == 2 and len(starts) == 2

    # Round 1 starts from the stored bf16 weights and trains fp32 masters that all move.
    assert starts[0].dtype == torch.bfloat16 and torch.equal(starts[0], stored)
    assert masters[0].dtype == torch.float32
    assert (masters[0] != starts[0].float()).float().mean().item() > 0.99

    # Round 2 starts from round 1's masters rounded to bf16 (torch's round-to-nearest-even,
    # as DeepSpeed copies its fp32 partition into the bf16 weights), not from the masters.
    assert starts[1].dtype == torch.bfloat16
    assert torch.equal(starts[1], masters[0].to(torch.bfloat16))
    # ... so most of round 1's updates are below the rounding step and do not reach round 2.
    handed_on = (starts[1] != starts[0]).float().mean().item()
    assert 0 < handed_on < 0.1

    # The saved round-1 model, loaded as a resumed run loads it, is the same weights.
    saved, _ = load_pretrained(str(plan.run_dir.model_dir(1)), dtype="bfloat16")
    assert torch.equal(_flat(saved), starts[1])
    # The final model is round 2's masters rounded the same way, in the loaded dtype.
    assert torch.equal(_flat(final), masters[1].to(torch.bfloat16))
