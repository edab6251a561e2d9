"""The one training loop: it learns, logs, checkpoints and resumes exactly."""

from __future__ import annotations

import json

import pytest
import torch

from gsil_bench.backend.batches import collate, sequence_logps, tokenize_pairs
from gsil_bench.backend.reference import reference_logps
from gsil_bench.backend.trainer import batch_indices, lr_factor, plan_steps, train
from gsil_bench.config import OptimConfig
from gsil_bench.registry import get_loss

PROMPTS = [[{"role": "user", "content": f"What is {i} + {i + 1}?"}] for i in range(16)]
REALS = [f"{i} + {i + 1} = {2 * i + 1}. #### {2 * i + 1}" for i in range(16)]
FAKES = [f"{i} + {i + 1} = {2 * i}. #### {2 * i}" for i in range(16)]


def _examples(tokenizer, with_negatives=True):
    examples, _, report = tokenize_pairs(
        tokenizer,
        PROMPTS,
        REALS,
        FAKES if with_negatives else None,
        max_prompt_tokens=64,
        max_length=128,
    )
    assert report.kept == 16 and report.dropped == 0
    return examples


def _params(model):
    return torch.cat([p.detach().reshape(-1).clone() for p in model.parameters()])


def test_sequence_logps_sums_only_response_tokens(tiny_model, tiny_tokenizer):
    examples = _examples(tiny_tokenizer)[:2]
    batch = collate(examples, with_generated=True, pad_id=tiny_tokenizer.pad_token_id)
    summed, counts = sequence_logps(tiny_model, batch)
    # Independent computation: full log-softmax, then pick each response token by hand.
    logits = tiny_model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
    ).logits.log_softmax(-1)
    for row, (prompt, response) in enumerate(
        [(e.prompt_ids, e.real_ids) for e in examples]
        + [(e.prompt_ids, e.generated_ids) for e in examples]
    ):
        expected = sum(
            logits[row, len(prompt) + k - 1, token].item() for k, token in enumerate(response)
        )
        assert summed[row].item() == pytest.approx(expected, rel=1e-5)
        assert counts[row].item() == len(response)


def test_length_policy_truncates_and_drops(tiny_tokenizer):
    long_prompt = [{"role": "user", "content": "word " * 200}]
    examples, kept, report = tokenize_pairs(
        tiny_tokenizer,
        [long_prompt, PROMPTS[0]],
        ["short answer", REALS[0]],
        None,
        max_prompt_tokens=20,
        max_length=24,
    )
    assert report.prompts_truncated == 1
    assert all(
        len(e.prompt_ids) <= 20 and len(e.prompt_ids) + len(e.real_ids) <= 24 for e in examples
    )
    assert report.kept + report.dropped == 2 and kept == list(range(report.kept))


def test_schedule_warmup_stable_decay():
    optim = OptimConfig(warmup_ratio=0.0, decay_steps=4, schedule="linear")
    factors = [lr_factor(s, 10, optim) for s in range(10)]
    # Steps 0-5 hold the peak; the last 4 decay linearly: 1, 3/4, 2/4, 1/4.
    assert factors == pytest.approx([1, 1, 1, 1, 1, 1, 1.0, 0.75, 0.5, 0.25])


def test_batch_order_is_a_function_of_seed_and_step():
    a = batch_indices(16, 3, 4, seed=1)
    assert torch.equal(a, batch_indices(16, 3, 4, seed=1))
    epoch = torch.cat([batch_indices(16, s, 4, seed=1) for s in range(4)])
    assert sorted(epoch.tolist()) == list(range(16))  # one epoch sees every example once
    assert plan_steps(16, 4, OptimConfig(epochs=2)) == 8


def test_length_grouped_batches_hold_one_length_and_still_cover_the_epoch():
    # 64 examples, 4 per length value; batch 4: a window (16 batches) is the whole epoch, so
    # each batch must be exactly the 4 examples of one length.
    lengths = [i // 4 for i in range(64)]
    epoch = [batch_indices(64, s, 4, seed=2, lengths=lengths).tolist() for s in range(16)]
    assert all(len({lengths[i] for i in batch}) == 1 for batch in epoch)
    assert sorted(i for batch in epoch for i in batch) == list(range(64))
    assert epoch == [batch_indices(64, s, 4, seed=2, lengths=lengths).tolist() for s in range(16)]
    by_length = [lengths[batch[0]] for batch in epoch]
    assert by_length != sorted(by_length) and by_length != sorted(by_length, reverse=True)
    # The next epoch draws another permutation.
    assert [
        batch_indices(64, s, 4, seed=2, lengths=lengths).tolist() for s in range(16, 32)
    ] != epoch


def test_training_lowers_loss_and_separates_rewards(tiny_model, tiny_tokenizer, tmp_path):
    examples = _examples(tiny_tokenizer)
    spec = get_loss("gsil-logistic")
    ref = reference_logps(
        tiny_model, examples, with_generated=True, batch_size=8, pad_id=tiny_tokenizer.pad_token_id
    )
    before = _params(tiny_model)
    optim = OptimConfig(lr=3e-3, batch_size=8, epochs=8, warmup_ratio=0.0, schedule="constant")
    result = train(
        tiny_model,
        examples,
        loss=spec,
        hparams={"beta": 1.0, "shift": 0.0},
        optim=optim,
        seed=0,
        run_dir=tmp_path,
        pad_id=tiny_tokenizer.pad_token_id,
        reference=ref,
    )
    assert not torch.equal(before, _params(tiny_model))
    log = [json.loads(x) for x in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == result.steps == 16
    first, last = log[:2], log[-2:]
    assert sum(r["loss"] for r in last) < sum(r["loss"] for r in first)
    assert last[-1]["reward/real"] > last[-1]["reward/generated"]
    assert {"grad_norm", "lr", "tokens_per_s", "reward/accuracy"} <= set(last[-1])


def test_resume_matches_uninterrupted_run(tiny_tokenizer, fresh_tiny, tmp_path):
    fresh = fresh_tiny

    examples = _examples(tiny_tokenizer)
    spec = get_loss("spin")
    ref = reference_logps(
        fresh(), examples, with_generated=True, batch_size=8, pad_id=tiny_tokenizer.pad_token_id
    )
    optim = OptimConfig(lr=1e-3, batch_size=4, epochs=2, checkpoint_every=3)
    kwargs = dict(
        loss=spec,
        hparams={"beta": 1.0},
        optim=optim,
        seed=3,
        pad_id=tiny_tokenizer.pad_token_id,
        reference=ref,
    )

    straight = fresh()
    train(straight, examples, run_dir=tmp_path / "straight", **kwargs)

    calls = {"n": 0}

    def crashing(batch, **hp):
        calls["n"] += 1
        if calls["n"] == 5:  # dies during step 5, after the step-3 checkpoint
            raise KeyboardInterrupt
        return spec.fn(batch, **hp)

    from dataclasses import replace

    interrupted = fresh()
    with pytest.raises(KeyboardInterrupt):
        train(
            interrupted,
            examples,
            run_dir=tmp_path / "resumed",
            **{**kwargs, "loss": replace(spec, fn=crashing)},
        )
    resumed = fresh()
    result = train(resumed, examples, run_dir=tmp_path / "resumed", **kwargs)
    assert result.resumed_from == 3
    assert torch.equal(_params(straight), _params(resumed))
    steps = [
        json.loads(x)["step"]
        for x in (tmp_path / "resumed" / "train_log.jsonl").read_text().splitlines()
    ]
    assert steps == list(range(1, result.steps + 1))


def test_non_finite_loss_names_loss_and_step(tiny_model, tiny_tokenizer, tmp_path):
    from gsil_bench.errors import NonFiniteLossError

    examples = _examples(tiny_tokenizer)
    spec = get_loss("gsil-exponential")
    ref = {"real": torch.zeros(16), "generated": torch.full((16,), -1e4)}
    with pytest.raises(NonFiniteLossError, match=r"gsil-exponential.*step 1"):
        train(
            tiny_model,
            examples,
            loss=spec,
            hparams={"beta": 1.0, "shift": 0.0},
            optim=OptimConfig(batch_size=8),
            seed=0,
            run_dir=tmp_path,
            pad_id=tiny_tokenizer.pad_token_id,
            reference=ref,
        )
