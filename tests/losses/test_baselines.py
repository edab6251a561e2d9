"""Baselines: SFT, SPIN (Chen et al. 2024), IPO (Azar et al. 2023), SimPO (Meng et al. 2024).

Notation: r_w = policy_real - ref_real, r_l = policy_generated - ref_generated,
s = sigmoid, -log s(t) = log(1 + exp(-t)). Expected values are derived by hand in each case's
comment; the random-input checks compare against plain numpy formulas.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from gsil_bench.registry import get_loss
from gsil_bench.types import LogpBatch

LN2, LN3 = math.log(2.0), math.log(3.0)
REF_REAL, REF_GENERATED = -20.0, -30.0


def pair_batch(r_w: float, r_l: float) -> LogpBatch:
    """A one-example float64 batch with log-ratios r_w and r_l."""
    return LogpBatch(
        policy_real=torch.tensor([REF_REAL + r_w], dtype=torch.float64),
        policy_generated=torch.tensor([REF_GENERATED + r_l], dtype=torch.float64),
        ref_real=torch.tensor([REF_REAL], dtype=torch.float64),
        ref_generated=torch.tensor([REF_GENERATED], dtype=torch.float64),
    )


def length_batch(policy_real: float, real_tokens: int, policy_generated: float = -1.0,
                 generated_tokens: int = 1) -> LogpBatch:  # fmt: skip
    """A one-example float64 batch with token counts and no reference."""
    return LogpBatch(
        policy_real=torch.tensor([policy_real], dtype=torch.float64),
        policy_generated=torch.tensor([policy_generated], dtype=torch.float64),
        real_tokens=torch.tensor([real_tokens]),
        generated_tokens=torch.tensor([generated_tokens]),
    )


# (loss, batch, hparams, expected, derivation)
HAND_CASES: list[tuple[str, LogpBatch, dict[str, Any], float, str]] = [
    # -(-6)/3 = 2.
    ("sft", length_batch(-6.0, 3), {}, 2.0, "6/3"),
    # -(-1.5)/6 = 0.25.
    ("sft", length_batch(-1.5, 6), {}, 0.25, "1.5/6"),
    # r_w = r_l: -log s(0) = log 2, whatever beta is.
    ("spin", pair_batch(1.0, 1.0), {"beta": 3.0}, LN2, "log 2"),
    # beta=0.5, r_w - r_l = 2 ln 3: t = ln 3, s(ln 3) = 3/4: -log(3/4) = log(4/3).
    ("spin", pair_batch(2 * LN3, 0.0), {"beta": 0.5}, math.log(4 / 3), "log(4/3)"),
    # beta=0.5, r_w - r_l = -2 ln 3: s(-ln 3) = 1/4: -log(1/4) = log 4.
    ("spin", pair_batch(0.0, 2 * LN3), {"beta": 0.5}, math.log(4.0), "log 4"),
    # r_w = r_l: relu(1 - 0) = 1.
    ("spin-hinge", pair_batch(2.0, 2.0), {}, 1.0, "1 - 0"),
    # beta=0.1, r_w - r_l = 4: relu(1 - 0.4) = 0.6.
    ("spin-hinge", pair_batch(3.0, -1.0), {"beta": 0.1}, 0.6, "1 - 0.4"),
    # beta=0.1, r_w - r_l = 20: relu(1 - 2) = 0.
    ("spin-hinge", pair_batch(20.0, 0.0), {"beta": 0.1}, 0.0, "relu(-1)"),
    # beta=0.1: target 1/(2*0.1) = 5; gap 0: (0 - 5)**2 = 25.
    ("ipo", pair_batch(0.0, 0.0), {}, 25.0, "(0-5)^2"),
    # gap 5 hits the target: 0.
    ("ipo", pair_batch(3.0, -2.0), {"beta": 0.1}, 0.0, "(5-5)^2"),
    # gap 7: (7 - 5)**2 = 4.
    ("ipo", pair_batch(7.0, 0.0), {"beta": 0.1}, 4.0, "(7-5)^2"),
    # beta=0.25: target 2; gap -1: (-1 - 2)**2 = 9.
    ("ipo", pair_batch(0.0, 1.0), {"beta": 0.25}, 9.0, "(-1-2)^2"),
    # Defaults beta=2, gamma=1: -3/3 = -1, -6/4 = -1.5: 2*0.5 - 1 = 0 -> log 2.
    ("simpo", length_batch(-3.0, 3, -6.0, 4), {}, LN2, "log 2"),
    # -2/2 = -1, -8/4 = -2: 2*1 - 1 = 1 -> -log s(1) = log(1 + e^-1).
    ("simpo", length_batch(-2.0, 2, -8.0, 4), {}, math.log1p(math.exp(-1)), "log(1+1/e)"),
    # beta=1, gamma=ln 3, equal per-token log-probs: -log s(-ln 3) = -log(1/4) = log 4.
    ("simpo", length_batch(-4.0, 2, -6.0, 3), {"beta": 1.0, "gamma": LN3}, math.log(4), "log 4"),
]


@pytest.mark.parametrize(
    ("name", "batch", "hparams", "expected"),
    [case[:4] for case in HAND_CASES],
    ids=[f"{c[0]}={c[4]}" for c in HAND_CASES],
)
def test_hand_computed_value(name, batch, hparams, expected):
    out = get_loss(name)(batch, **hparams)
    assert out.loss.shape == (1,)
    assert out.loss.item() == pytest.approx(expected, abs=1e-12)


def _neg_logsigmoid(t: np.ndarray) -> np.ndarray:
    return np.log1p(np.exp(-t))


# DESIGN §2 in plain numpy; d holds float64 arrays of every LogpBatch field.
NUMPY_FORMULAS: dict[str, Callable[..., np.ndarray]] = {
    "sft": lambda d: -d["policy_real"] / d["real_tokens"],
    "spin": lambda d, beta: _neg_logsigmoid(beta * (d["r_w"] - d["r_l"])),
    "spin-hinge": lambda d, beta: np.maximum(0.0, 1 - beta * (d["r_w"] - d["r_l"])),
    "ipo": lambda d, beta: (d["r_w"] - d["r_l"] - 1 / (2 * beta)) ** 2,
    "simpo": lambda d, beta, gamma: _neg_logsigmoid(
        beta * (d["policy_real"] / d["real_tokens"] - d["policy_generated"] / d["generated_tokens"])
        - gamma
    ),
}

RANDOM_CASES = [
    ("sft", {}),
    ("spin", {"beta": 0.1}),
    ("spin", {"beta": 1.0}),
    ("spin-hinge", {"beta": 0.1}),
    ("spin-hinge", {"beta": 0.5}),
    ("ipo", {"beta": 0.1}),
    ("ipo", {"beta": 0.7}),
    ("simpo", {"beta": 2.0, "gamma": 1.0}),
    ("simpo", {"beta": 2.5, "gamma": 0.3}),
]


def random_tensors(seed: int, dtype: torch.dtype, size: int = 64) -> dict[str, torch.Tensor]:
    """Summed log-probs of realistic magnitude and integer token counts."""
    rng = np.random.default_rng(seed)
    ref_real = -rng.uniform(5, 80, size)
    ref_generated = -rng.uniform(5, 80, size)
    arrays = {
        "policy_real": ref_real + rng.normal(0, 3, size),
        "policy_generated": ref_generated + rng.normal(0, 3, size),
        "ref_real": ref_real,
        "ref_generated": ref_generated,
    }
    tensors = {k: torch.tensor(v, dtype=dtype) for k, v in arrays.items()}
    tensors["real_tokens"] = torch.tensor(rng.integers(1, 200, size))
    tensors["generated_tokens"] = torch.tensor(rng.integers(1, 200, size))
    return tensors


@pytest.mark.parametrize(
    ("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 2e-5)], ids=["f64", "f32"]
)
@pytest.mark.parametrize(("name", "hparams"), RANDOM_CASES)
def test_matches_numpy_formula(name, hparams, dtype, tol):
    tensors = random_tensors(seed=RANDOM_CASES.index((name, hparams)), dtype=dtype)
    # The reference sees the same (possibly float32-rounded) inputs, in float64.
    d = {k: t.double().numpy() for k, t in tensors.items()}
    d["r_w"] = d["policy_real"] - d["ref_real"]
    d["r_l"] = d["policy_generated"] - d["ref_generated"]
    expected = NUMPY_FORMULAS[name](d, **hparams)

    out = get_loss(name)(LogpBatch(**tensors), **hparams)

    assert out.loss.dtype == dtype
    assert out.loss.shape == (64,)
    np.testing.assert_allclose(out.loss.double().numpy(), expected, rtol=tol, atol=tol)


def active_batch(size: int = 16) -> tuple[LogpBatch, torch.Tensor, torch.Tensor]:
    """Log-ratios within +-0.25, so |r_w - r_l| < 0.5: every loss has a slope of the right sign.

    (IPO pulls a gap above its target 1/(2*beta) back down, which is by design; with beta <= 0.7
    the target is at least 0.71, above every gap here.)
    """
    rng = np.random.default_rng(11)
    policy_real = torch.tensor(-10 + rng.uniform(-0.25, 0.25, size), requires_grad=True)
    policy_generated = torch.tensor(-12 + rng.uniform(-0.25, 0.25, size), requires_grad=True)
    batch = LogpBatch(
        policy_real=policy_real,
        policy_generated=policy_generated,
        ref_real=torch.full((size,), -10.0, dtype=torch.float64),
        ref_generated=torch.full((size,), -12.0, dtype=torch.float64),
        real_tokens=torch.tensor(rng.integers(1, 20, size)),
        generated_tokens=torch.tensor(rng.integers(1, 20, size)),
    )
    return batch, policy_real, policy_generated


@pytest.mark.parametrize(("name", "hparams"), RANDOM_CASES)
def test_gradient_raises_real(name, hparams):
    batch, policy_real, policy_generated = active_batch()
    get_loss(name)(batch, **hparams).loss.sum().backward()

    assert torch.isfinite(policy_real.grad).all()
    # Descent on the loss raises the demonstration's log-prob ...
    assert (policy_real.grad < 0).all()
    # ... and, for the pairwise losses, lowers the generated one.
    if get_loss(name).needs_generated:
        assert (policy_generated.grad > 0).all()
    else:
        assert policy_generated.grad is None


@pytest.mark.parametrize(("name", "hparams"), RANDOM_CASES)
def test_gradient_matches_finite_differences(name, hparams):
    batch, policy_real, policy_generated = active_batch(size=5)
    loss_fn = get_loss(name)

    def loss_of(real, generated):
        fields = {**vars(batch), "policy_real": real, "policy_generated": generated}
        return loss_fn(LogpBatch(**fields), **hparams).loss

    assert torch.autograd.gradcheck(loss_of, (policy_real, policy_generated))


def test_sft_metrics_and_no_extra_inputs():
    batch = LogpBatch(policy_real=torch.tensor([-6.0, -2.0]), real_tokens=torch.tensor([3, 4]))
    out = get_loss("sft")(batch)
    # -6/3 = -2, -2/4 = -0.5: the length-normalised log-prob, nothing else.
    assert set(out.metrics) == {"logp/real"}
    assert out.metrics["logp/real"].tolist() == [-2.0, -0.5]


@pytest.mark.parametrize("name", ["spin", "spin-hinge", "ipo"])
def test_reference_metrics_are_scaled_log_ratios(name):
    out = get_loss(name)(pair_batch(2.0, -1.0), beta=0.5)
    # reward = beta * r: 0.5 * 2 = 1, 0.5 * -1 = -0.5, margin 1.5, real wins.
    assert out.metrics["reward/real"].item() == pytest.approx(1.0)
    assert out.metrics["reward/generated"].item() == pytest.approx(-0.5)
    assert out.metrics["reward/margin"].item() == pytest.approx(1.5)
    assert out.metrics["reward/accuracy"].item() == 1.0


def test_simpo_metrics_are_length_normalised():
    out = get_loss("simpo")(length_batch(-8.0, 4, -3.0, 1))
    # logp: -8/4 = -2 and -3/1 = -3; rewards (beta=2): -4 and -6; real wins.
    assert out.metrics["logp/real"].item() == pytest.approx(-2.0)
    assert out.metrics["logp/generated"].item() == pytest.approx(-3.0)
    assert out.metrics["reward/real"].item() == pytest.approx(-4.0)
    assert out.metrics["reward/generated"].item() == pytest.approx(-6.0)
    assert out.metrics["reward/accuracy"].item() == 1.0


def test_metadata_matches_design():
    expected = {
        "sft": (False, False, {}),
        "spin": (True, True, {"beta": 0.1}),
        "spin-hinge": (True, True, {"beta": 0.1}),
        "ipo": (True, True, {"beta": 0.1}),
        "simpo": (False, True, {"beta": 2.0, "gamma": 1.0}),
    }
    for name, (needs_reference, needs_generated, hparams) in expected.items():
        spec = get_loss(name)
        assert (spec.needs_reference, spec.needs_generated) == (needs_reference, needs_generated)
        assert dict(spec.hparams) == hparams
