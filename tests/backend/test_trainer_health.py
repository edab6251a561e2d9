"""Training that cannot learn fails loudly; SIGTERM checkpoints the step in flight."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from gsil_bench.backend.batches import tokenize_pairs
from gsil_bench.backend.health import SCALER_SKIPS_ALLOWED, STALL_STEPS, Health
from gsil_bench.backend.reference import reference_logps
from gsil_bench.backend.trainer import train
from gsil_bench.config import OptimConfig
from gsil_bench.errors import NonFiniteLossError, StalledTrainingError
from gsil_bench.registry import get_loss
from gsil_bench.stop import StopRequested, sigterm_stops
from gsil_bench.types import LossOutput

PROMPTS = [[{"role": "user", "content": f"What is {i} + {i + 1}?"}] for i in range(16)]
REALS = [f"{i} + {i + 1} = {2 * i + 1}. #### {2 * i + 1}" for i in range(16)]
FAKES = [f"{i} + {i + 1} = {2 * i}. #### {2 * i}" for i in range(16)]


def _examples(tokenizer):
    examples, _, _ = tokenize_pairs(
        tokenizer, PROMPTS, REALS, FAKES, max_prompt_tokens=64, max_length=128
    )
    return examples


def _params(model):
    return torch.cat([p.detach().reshape(-1).clone() for p in model.parameters()])


def _fresh(tokenizer):
    from gsil_bench.minisuite.tiny import build_model

    return build_model(
        tokenizer,
        hidden_size=32,
        num_layers=2,
        num_heads=2,
        intermediate_size=64,
        max_positions=128,
        seed=0,
    )


def _train(model, tokenizer, run_dir, *, loss, hparams, **optim):
    examples = _examples(tokenizer)
    ref = reference_logps(
        _fresh(tokenizer),
        examples,
        with_generated=True,
        batch_size=8,
        pad_id=tokenizer.pad_token_id,
    )
    settings = {"batch_size": 8, "epochs": 2, "warmup_ratio": 0.0, **optim}
    return train(
        model,
        examples,
        loss=loss,
        hparams=hparams,
        optim=OptimConfig(**settings),
        seed=0,
        run_dir=run_dir,
        pad_id=tokenizer.pad_token_id,
        reference=ref,
    )


class _InfiniteGradient(torch.autograd.Function):
    """The identity forward; an infinite gradient backward."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("inf")


def _finite_loss_infinite_gradient(batch, **_):
    return LossOutput(-_InfiniteGradient.apply(batch.policy_real) / batch.real_tokens, {})


def test_a_non_finite_gradient_norm_fails_the_step_it_happens(tiny_tokenizer, tmp_path):
    """Before: clipping scaled the update to zero and the run ended "ok" with its weights."""
    model = _fresh(tiny_tokenizer)
    before = _params(model)
    spec = replace(get_loss("sft"), fn=_finite_loss_infinite_gradient, needs_lengths=True)
    with pytest.raises(
        NonFiniteLossError, match=r"'sft': the gradient norm is (inf|nan) at step 1"
    ):
        _train(model, tiny_tokenizer, tmp_path, loss=spec, hparams={})
    assert torch.equal(before, _params(model))  # the failing step was never applied


def test_gsil_exponential_with_a_huge_beta_fails_loudly(tiny_tokenizer, tmp_path):
    """beta=1000: exp(z) overflows the gradient norm before the loss itself."""
    spec = get_loss("gsil-exponential")
    with pytest.raises(NonFiniteLossError, match=r"'gsil-exponential'.*(gradient norm|loss=)"):
        _train(
            _fresh(tiny_tokenizer),
            tiny_tokenizer,
            tmp_path,
            loss=spec,
            hparams={"beta": 1000.0, "shift": 0.0},
        )


def _saturated_brier(tiny_tokenizer, run_dir, **optim):
    # shift 100: s(-z_w)**2 = s(-100)**2 underflows to 0 and s(z_l)**2 = s(100)**2 = 1
    # exactly, with a zero gradient: every batch's loss is 1 and nothing moves.
    return _train(
        _fresh(tiny_tokenizer),
        tiny_tokenizer,
        run_dir,
        loss=get_loss("gsil-brier"),
        hparams={"beta": 1.0, "shift": 100.0},
        **optim,
    )


def test_a_loss_that_cannot_move_the_weights_fails_after_the_first_steps(tiny_tokenizer, tmp_path):
    with pytest.raises(StalledTrainingError) as err:
        _saturated_brier(tiny_tokenizer, tmp_path)
    message = str(err.value)
    assert f"to step {STALL_STEPS})" in message
    assert "'gsil-brier' cannot learn" in message and "loss stayed at 1 " in message
    assert "largest gradient norm 0" in message
    log = [json.loads(x) for x in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == list(range(1, STALL_STEPS))  # the failing step is not


def test_the_stall_window_survives_a_resume(tiny_tokenizer, tmp_path):
    calls = {"n": 0}
    brier = get_loss("gsil-brier")

    def crashing(batch, **hp):
        calls["n"] += 1
        if calls["n"] == STALL_STEPS:  # dies in the last step of the window
            raise KeyboardInterrupt
        return brier.fn(batch, **hp)

    with pytest.raises(KeyboardInterrupt):
        _train(
            _fresh(tiny_tokenizer),
            tiny_tokenizer,
            tmp_path,
            loss=replace(brier, fn=crashing),
            hparams={"beta": 1.0, "shift": 100.0},
            checkpoint_every=1,
        )
    with pytest.raises(StalledTrainingError, match=rf"to step {STALL_STEPS}\)"):
        _saturated_brier(tiny_tokenizer, tmp_path, checkpoint_every=1)


def test_a_learning_run_with_a_steady_first_loss_is_not_stalled(tiny_tokenizer, tmp_path):
    """gsil-logistic starts at policy == reference: its first loss is 2 ln 2 on every batch,
    but the weights move, so the run goes on."""
    result = _train(
        _fresh(tiny_tokenizer),
        tiny_tokenizer,
        tmp_path,
        loss=get_loss("gsil-logistic"),
        hparams={"beta": 1.0, "shift": 0.0},
    )
    assert result.history[0]["loss"] == pytest.approx(2 * 0.6931471805599453, rel=1e-6)
    assert result.steps == 4


def _stub_accelerator(scaler, skipped):
    return SimpleNamespace(scaler=scaler, optimizer_step_was_skipped=skipped, num_processes=1)


def test_fp16_loss_scaling_may_skip_steps_but_not_forever():
    model = torch.nn.Linear(2, 1)
    health = Health(_stub_accelerator(object(), True), "sft", model, 0, 100, {})
    for step in range(1, SCALER_SKIPS_ALLOWED + 1):
        health.check_gradient(step, float("inf"), 1.0)  # the scaler's overflow probe
        health.after_step(step, 1.0, float("inf"), model)  # skipped: not a stalled step
    health.check_gradient(11, 2.0, 1.0)  # a finite one starts the count again
    for step in range(12, 12 + SCALER_SKIPS_ALLOWED):
        health.check_gradient(step, float("nan"), 1.0)
    with pytest.raises(NonFiniteLossError, match=r"nan at step 22 \(11 steps in a row under fp16"):
        health.check_gradient(22, float("nan"), 1.0)


def test_without_a_loss_scaler_one_non_finite_gradient_fails():
    health = Health(_stub_accelerator(None, False), "sft", torch.nn.Linear(2, 1), 0, 100, {})
    with pytest.raises(NonFiniteLossError, match=r"'sft': the gradient norm is inf at step 1 "):
        health.check_gradient(1, float("inf"), 0.5)


def test_sigterm_checkpoints_the_step_in_flight_and_resumes_exactly(tiny_tokenizer, tmp_path):
    spin = get_loss("spin")
    kwargs = {"loss": spin, "hparams": {"beta": 1.0}, "checkpoint_every": 100}
    straight = _fresh(tiny_tokenizer)
    _train(straight, tiny_tokenizer, tmp_path / "straight", **kwargs)
    calls = {"n": 0}

    def terminated(batch, **hp):
        calls["n"] += 1
        if calls["n"] == 2:  # SIGTERM arrives during step 2
            os.kill(os.getpid(), signal.SIGTERM)
        return spin.fn(batch, **hp)

    with sigterm_stops(), pytest.raises(StopRequested, match="checkpoint saved at step 2"):
        _train(
            _fresh(tiny_tokenizer),
            tiny_tokenizer,
            tmp_path / "resumed",
            **{**kwargs, "loss": replace(spin, fn=terminated)},
        )
    resumed = _fresh(tiny_tokenizer)
    result = _train(resumed, tiny_tokenizer, tmp_path / "resumed", **kwargs)
    assert result.resumed_from == 2
    assert torch.equal(_params(straight), _params(resumed))
