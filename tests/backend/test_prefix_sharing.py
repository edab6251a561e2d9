"""Prefix sharing: one row per pair (the prompt once, then both responses under a block mask)
gives the log-probs, losses and gradients of the unshared two-row path."""

from __future__ import annotations

import warnings

import pytest
import torch

from gsil_bench.backend import blocks
from gsil_bench.backend.batches import TrainExample, collate, sequence_logps
from gsil_bench.backend.blocks import block_logps, collate_shared, use_prefix_sharing
from gsil_bench.backend.reference import reference_logps
from gsil_bench.backend.trainer import train
from gsil_bench.config import OptimConfig
from gsil_bench.registry import available, get_loss
from gsil_bench.types import LogpBatch

PAIR_LOSSES = [n for n in available() if get_loss(n).needs_generated]


def _random_examples(n: int, seed: int, vocab: int = 300) -> list[TrainExample]:
    g = torch.Generator().manual_seed(seed)

    def ids(lo: int, hi: int) -> list[int]:
        length = int(torch.randint(lo, hi, (1,), generator=g))
        return torch.randint(3, vocab, (length,), generator=g).tolist()

    return [TrainExample(ids(1, 12), ids(1, 10), ids(1, 10)) for _ in range(n)]


def _grads(model) -> torch.Tensor:
    return torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])


def test_block_mask_and_positions_by_hand():
    # prompt [5, 6], real [7, 8, 9], generated [10]; second pair shorter (padding at the end)
    batch = collate_shared(
        [TrainExample([5, 6], [7, 8, 9], [10]), TrainExample([5], [7], [8])], pad_id=0
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9, 10], [5, 7, 8, 0, 0, 0]]
    assert batch["position_ids"][0].tolist() == [0, 1, 2, 3, 4, 2]
    assert batch["position_ids"][1, :3].tolist() == [0, 1, 1]
    # Row 0: the generated token (col 5) sees the prompt (0, 1) and itself, not the real one.
    assert batch["block_mask"][0, 0, 5].tolist() == [True, True, False, False, False, True]
    assert batch["block_mask"][0, 0, 4].tolist() == [True, True, True, True, True, False]
    # Padding sees only itself; no real token sees padding.
    assert batch["block_mask"][1, 0, 4].tolist() == [False, False, False, False, True, False]
    assert not batch["block_mask"][1, 0, :3, 3:].any()
    # Predictions: real 7 from pos 1, 8 from 2, 9 from 3; generated 10 from pos 1 (the prompt's
    # end); pair 1: real 7 from 0, generated 8 from 0 (flat index 6 = row 1, col 0).
    assert batch["src"].tolist() == [1, 2, 3, 1, 6, 6]
    assert batch["dst"].tolist() == [0, 0, 0, 2, 1, 3]
    assert batch["target"].tolist() == [7, 8, 9, 10, 7, 8]
    assert batch["tokens"].tolist() == [2 * 2 + 3 + 1, 2 * 1 + 1 + 1]


def test_block_logps_equal_unshared_including_an_empty_prompt(tiny_model):
    examples = _random_examples(6, seed=1) + [TrainExample([], [11, 12, 13], [14, 15])]
    want, want_counts = sequence_logps(tiny_model, collate(examples, with_generated=True, pad_id=0))
    got, counts = block_logps(tiny_model, collate_shared(examples, pad_id=0), 2 * len(examples))
    assert counts.tolist() == want_counts.tolist()
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_generated_logps_do_not_see_the_real_response(tiny_model):
    a = TrainExample([5, 6, 7], [20, 21, 22, 23], [30, 31])
    b = TrainExample([5, 6, 7], [40, 41], [30, 31])  # same prompt and generated, other real
    with torch.no_grad():
        got, _ = block_logps(tiny_model, collate_shared([a, b], pad_id=0), 2 * len([a, b]))
    torch.testing.assert_close(got[2], got[3], atol=1e-6, rtol=0)
    assert abs(float(got[0] - got[1])) > 1e-3  # the real responses do differ


@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_every_pair_loss_has_the_same_value_and_gradients(tiny_model, name):
    spec = get_loss(name)
    examples = _random_examples(5, seed=2)
    b = len(examples)
    ref = None
    if spec.needs_reference:  # any fixed reference: the test compares the two paths
        ref = {"real": -torch.arange(1.0, b + 1) * 3, "generated": -torch.arange(1.0, b + 1) * 4}

    def run(shared: bool):
        tiny_model.zero_grad(set_to_none=True)
        if shared:
            policy, counts = block_logps(
                tiny_model, collate_shared(examples, pad_id=0), 2 * len(examples)
            )
        else:
            batch = collate(examples, with_generated=True, pad_id=0)
            policy, counts = sequence_logps(tiny_model, batch)
        fields = {
            "policy_real": policy[:b],
            "policy_generated": policy[b:],
            "real_tokens": counts[:b].float(),
            "generated_tokens": counts[b:].float(),
        }
        if ref is not None:
            fields.update(ref_real=ref["real"], ref_generated=ref["generated"])
        loss = spec.fn(LogpBatch(**fields), **spec.hparams).loss.mean()
        loss.backward()
        return policy.detach(), loss.detach(), _grads(tiny_model).clone()

    plain, shared = run(False), run(True)
    for want, got in zip(plain, shared, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_reference_pass_shared_equals_unshared(tiny_model):
    examples = _random_examples(9, seed=3)
    kwargs = {"with_generated": True, "batch_size": 4, "pad_id": 0}
    want = reference_logps(tiny_model, examples, **kwargs)
    got = reference_logps(tiny_model, examples, prefix_sharing=True, **kwargs)
    for key in ("real", "generated"):
        torch.testing.assert_close(got[key], want[key], atol=1e-5, rtol=0)
        # run under inference_mode, but handed back as ordinary tensors without history
        assert not got[key].is_inference() and not got[key].requires_grad
        got[key].add_(0.0)  # in place: refused on an inference tensor


def test_unsupported_attention_falls_back_and_says_so_once(tiny_model, monkeypatch):
    monkeypatch.setattr(blocks, "_WARNED", set())
    tiny_model.config._attn_implementation = "flash_attention_2"
    with pytest.warns(UserWarning, match="'flash_attention_2'.*run unshared"):
        assert use_prefix_sharing(tiny_model, True) is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert use_prefix_sharing(tiny_model, True) is False  # said once only
        assert use_prefix_sharing(tiny_model, False) is False
    with pytest.warns(UserWarning, match="model type 'Linear'"):
        assert use_prefix_sharing(torch.nn.Linear(2, 2), True) is False


def test_training_with_prefix_sharing_matches_unshared(tiny_tokenizer, same_training):
    examples = _random_examples(8, seed=4, vocab=len(tiny_tokenizer))
    optims = [
        OptimConfig(lr=1e-3, batch_size=2, grad_accum=2, epochs=2, prefix_sharing=sharing)
        for sharing in (False, True)
    ]
    same_training("spin", examples, optims, steps=4)


def test_lora_model_shares_with_the_same_logps(tiny_model):
    pytest.importorskip("peft")
    from gsil_bench.backend import lora
    from gsil_bench.config import PeftConfig

    wrapped = lora.add_adapters(tiny_model, PeftConfig(r=4), weights_from="tiny")
    with torch.no_grad():  # non-zero LoRA B, else the adapters change nothing
        for name, p in wrapped.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn_like(p) * 0.5)
    assert use_prefix_sharing(wrapped, True)
    examples = _random_examples(4, seed=5)
    want, _ = sequence_logps(wrapped, collate(examples, with_generated=True, pad_id=0))
    got, _ = block_logps(wrapped, collate_shared(examples, pad_id=0), 2 * len(examples))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_eager_attention_shares_with_the_same_logps(tiny_model):
    tiny_model.config._attn_implementation = "eager"  # an additive float mask, not a boolean
    examples = _random_examples(5, seed=6)
    want, _ = sequence_logps(tiny_model, collate(examples, with_generated=True, pad_id=0))
    assert use_prefix_sharing(tiny_model, True)
    got, _ = block_logps(tiny_model, collate_shared(examples, pad_id=0), 2 * len(examples))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def _small(config_cls, model_cls, **extra):
    config = config_cls(
        vocab_size=300,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        **extra,
    )
    torch.manual_seed(0)
    return model_cls(config).eval()


def test_sliding_window_model_shares_with_its_window_applied():
    from transformers import MistralConfig, MistralForCausalLM

    # A window of 3 positions, far shorter than the rows: the unshared path applies it, so the
    # shared one must too (a custom mask replaces the model's own).
    model = _small(MistralConfig, MistralForCausalLM, sliding_window=3)
    examples = _random_examples(5, seed=7)
    want, _ = sequence_logps(model, collate(examples, with_generated=True, pad_id=0))
    wide = _small(MistralConfig, MistralForCausalLM, sliding_window=None)
    full, _ = sequence_logps(wide, collate(examples, with_generated=True, pad_id=0))
    assert (want - full).abs().max() > 1e-3  # the window does change the log-probs
    assert use_prefix_sharing(model, True)
    got, _ = block_logps(model, collate_shared(examples, pad_id=0), 2 * len(examples))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_mixed_sliding_and_full_layers_fall_back(monkeypatch):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    monkeypatch.setattr(blocks, "_WARNED", set())
    model = _small(
        Qwen2Config,
        Qwen2ForCausalLM,
        use_sliding_window=True,
        sliding_window=3,
        max_window_layers=1,
    )
    assert set(model.config.layer_types) == {"full_attention", "sliding_attention"}
    with pytest.warns(UserWarning, match="mix of sliding-window and full-attention layers"):
        assert use_prefix_sharing(model, True) is False


def test_a_non_finite_second_micro_batch_is_named_at_the_one_sync(tiny_model, tmp_path):
    import dataclasses

    from gsil_bench.errors import NonFiniteLossError
    from gsil_bench.types import LossOutput

    seen: list[float] = []

    def flaky(batch: LogpBatch) -> LossOutput:
        seen.append(float(batch.policy_real.detach().mean()))
        loss = -batch.policy_real / batch.real_tokens
        if len(seen) == 2:  # the second micro-batch of step 1
            loss = loss + float("inf")
        return LossOutput(loss, {"shown": loss.detach()})

    spec = dataclasses.replace(get_loss("sft"), name="flaky", fn=flaky, hparams={})
    optim = OptimConfig(lr=1e-3, batch_size=2, grad_accum=2, max_steps=2)
    with pytest.raises(NonFiniteLossError, match="'flaky' became non-finite at step 1") as err:
        train(
            tiny_model,
            _random_examples(8, seed=8),
            loss=spec,
            hparams={},
            optim=optim,
            seed=0,
            run_dir=tmp_path,
            pad_id=0,
        )
    assert len(seen) == 2
    assert f"policy_real mean={seen[1]:.4g}" in str(err.value)  # the bad one, not the first
