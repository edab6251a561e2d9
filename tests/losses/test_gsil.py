"""The six GSIL losses (Xiao et al. 2024, arXiv 2410.10093): values, dtypes and gradients.

Notation as in the losses: r_w = policy_real - ref_real, r_l = policy_generated -
ref_generated, z = beta*r + shift, s = sigmoid. Expected values below are derived by hand in
each case's comment; the random-input checks compare against plain numpy formulas.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch

from gsil_bench.registry import get_loss
from gsil_bench.types import LogpBatch

GSIL_LOSSES = [
    "gsil-logistic",
    "gsil-brier",
    "gsil-hinge",
    "gsil-kliep",
    "gsil-lsif",
    "gsil-exponential",
]

LN2, LN3 = math.log(2.0), math.log(3.0)


def batch_from_ratios(
    r_w: float, r_l: float, dtype: torch.dtype = torch.float64, requires_grad: bool = False
) -> LogpBatch:
    """A one-example batch whose log-ratios are r_w and r_l (arbitrary reference log-probs)."""
    ref_real, ref_generated = -20.0, -30.0
    policy_real = torch.tensor([ref_real + r_w], dtype=dtype, requires_grad=requires_grad)
    return LogpBatch(
        policy_real=policy_real,
        policy_generated=torch.tensor([ref_generated + r_l], dtype=dtype),
        ref_real=torch.tensor([ref_real], dtype=dtype),
        ref_generated=torch.tensor([ref_generated], dtype=dtype),
    )


# (loss, r_w, r_l, hparams, expected, derivation)
HAND_CASES = [
    # z_w = z_l = 0: -log s(0) - log s(-0) = log 2 + log 2.
    ("gsil-logistic", 0.0, 0.0, {}, 2 * LN2, "2 log 2"),
    # beta=1: z_w = ln 3 -> s = 3/4; z_l = -ln 3 -> s(-z_l) = 3/4: -2 log(3/4) = 2 log(4/3).
    ("gsil-logistic", LN3, -LN3, {"beta": 1.0}, 2 * math.log(4 / 3), "2 log(4/3)"),
    # r = 0, shift = ln 3: z_w = z_l = ln 3: -log(3/4) - log(1/4) = log(16/3).
    ("gsil-logistic", 0.0, 0.0, {"shift": LN3}, math.log(16 / 3), "log(16/3)"),
    # z = 0: (1 - 1/2)**2 + (1/2)**2 = 1/2.
    ("gsil-brier", 0.0, 0.0, {}, 0.5, "1/4 + 1/4"),
    # beta=1: s(ln 3) = 3/4, s(-ln 3) = 1/4: (1/4)**2 + (1/4)**2 = 1/8.
    ("gsil-brier", LN3, -LN3, {"beta": 1.0}, 0.125, "1/16 + 1/16"),
    # z = 0: relu(1) + relu(1) = 2.
    ("gsil-hinge", 0.0, 0.0, {}, 2.0, "1 + 1"),
    # beta=0.5: z_w = 0.5, z_l = -2: relu(0.5) + relu(-1) = 0.5.
    ("gsil-hinge", 1.0, -4.0, {"beta": 0.5}, 0.5, "0.5 + 0"),
    # shift=-3 with r = 0: z_w = z_l = -3: relu(4) + relu(-2) = 4.
    ("gsil-hinge", 0.0, 0.0, {"shift": -3.0}, 4.0, "4 + 0"),
    # z = 0: -0 + e^0 = 1.
    ("gsil-kliep", 0.0, 0.0, {}, 1.0, "0 + 1"),
    # beta=0.5: z_w = 2, z_l = ln 2: -2 + 2 = 0.
    ("gsil-kliep", 4.0, 2 * LN2, {"beta": 0.5}, 0.0, "-2 + 2"),
    # z = 0: -e^0 + e^0/2 = -1/2.
    ("gsil-lsif", 0.0, 0.0, {}, -0.5, "-1 + 1/2"),
    # beta=1: z_w = ln 3, z_l = ln 2: -3 + 4/2 = -1.
    ("gsil-lsif", LN3, LN2, {"beta": 1.0}, -1.0, "-3 + 2"),
    # z = 0: e^0 + e^0 = 2.
    ("gsil-exponential", 0.0, 0.0, {}, 2.0, "1 + 1"),
    # beta=1: z_w = ln 2 -> e^-z_w = 1/2; z_l = ln 3 -> 3: 3.5.
    ("gsil-exponential", LN2, LN3, {"beta": 1.0}, 3.5, "1/2 + 3"),
]


@pytest.mark.parametrize(
    ("name", "r_w", "r_l", "hparams", "expected"),
    [case[:5] for case in HAND_CASES],
    ids=[f"{c[0]}={c[5]}" for c in HAND_CASES],
)
def test_hand_computed_value(name, r_w, r_l, hparams, expected):
    out = get_loss(name)(batch_from_ratios(r_w, r_l), **hparams)
    assert out.loss.shape == (1,)
    assert out.loss.item() == pytest.approx(expected, abs=1e-12)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# DESIGN §2, written with plain numpy from z_w and z_l (inputs keep |z| small, so the naive
# forms are accurate in float64).
NUMPY_FORMULAS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "gsil-logistic": lambda zw, zl: -np.log(_sigmoid(zw)) - np.log(_sigmoid(-zl)),
    "gsil-brier": lambda zw, zl: (1 - _sigmoid(zw)) ** 2 + _sigmoid(zl) ** 2,
    "gsil-hinge": lambda zw, zl: np.maximum(0.0, 1 - zw) + np.maximum(0.0, 1 + zl),
    "gsil-kliep": lambda zw, zl: -zw + np.exp(zl),
    "gsil-lsif": lambda zw, zl: -np.exp(zw) + np.exp(2 * zl) / 2,
    "gsil-exponential": lambda zw, zl: np.exp(-zw) + np.exp(zl),
}


def random_logps(seed: int, size: int = 64) -> dict[str, np.ndarray]:
    """Summed log-probs of realistic magnitude, policy within a few nats of the reference."""
    rng = np.random.default_rng(seed)
    ref_real = -rng.uniform(5, 80, size)
    ref_generated = -rng.uniform(5, 80, size)
    return {
        "policy_real": ref_real + rng.normal(0, 3, size),
        "policy_generated": ref_generated + rng.normal(0, 3, size),
        "ref_real": ref_real,
        "ref_generated": ref_generated,
    }


@pytest.mark.parametrize("name", GSIL_LOSSES)
@pytest.mark.parametrize(
    ("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 2e-5)], ids=["f64", "f32"]
)
@pytest.mark.parametrize(("beta", "shift"), [(0.1, 0.0), (0.5, 0.7), (1.0, -1.3)])
def test_matches_numpy_formula(name, dtype, tol, beta, shift):
    logps = random_logps(seed=10 * GSIL_LOSSES.index(name) + int(10 * beta))
    tensors = {k: torch.tensor(v, dtype=dtype) for k, v in logps.items()}
    # The reference sees the same (possibly float32-rounded) inputs, in float64.
    exact = {k: t.double().numpy() for k, t in tensors.items()}
    z_w = beta * (exact["policy_real"] - exact["ref_real"]) + shift
    z_l = beta * (exact["policy_generated"] - exact["ref_generated"]) + shift
    expected = NUMPY_FORMULAS[name](z_w, z_l)

    out = get_loss(name)(LogpBatch(**tensors), beta=beta, shift=shift)

    assert out.loss.dtype == dtype
    assert out.loss.shape == (64,)
    np.testing.assert_allclose(out.loss.double().numpy(), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", GSIL_LOSSES)
def test_metrics_are_scaled_log_ratios(name):
    logps = random_logps(seed=1, size=8)
    batch = LogpBatch(**{k: torch.tensor(v, requires_grad=True) for k, v in logps.items()})
    out = get_loss(name)(batch, beta=0.5, shift=2.0)

    r_w = logps["policy_real"] - logps["ref_real"]
    r_l = logps["policy_generated"] - logps["ref_generated"]
    # Rewards exclude the shift: it is part of the classifier, not of the implicit reward.
    np.testing.assert_allclose(out.metrics["reward/real"].numpy(), 0.5 * r_w)
    np.testing.assert_allclose(out.metrics["reward/generated"].numpy(), 0.5 * r_l)
    np.testing.assert_allclose(out.metrics["reward/margin"].numpy(), 0.5 * (r_w - r_l))
    np.testing.assert_array_equal(out.metrics["reward/accuracy"].numpy(), (r_w > r_l) * 1.0)
    for value in out.metrics.values():
        assert not value.requires_grad
        assert value.shape == (8,)


@pytest.mark.parametrize("name", GSIL_LOSSES)
@pytest.mark.parametrize(("beta", "shift"), [(0.1, 0.0), (1.0, 0.3)])
def test_gradient_raises_real_and_lowers_generated(name, beta, shift):
    # Log-ratios within +-0.5 keep every z inside the hinge's active region (|z| < 1), so each
    # loss has a strictly non-zero slope there.
    rng = np.random.default_rng(7)
    policy_real = torch.tensor(-10 + rng.uniform(-0.5, 0.5, 16), requires_grad=True)
    policy_generated = torch.tensor(-12 + rng.uniform(-0.5, 0.5, 16), requires_grad=True)
    batch = LogpBatch(
        policy_real=policy_real,
        policy_generated=policy_generated,
        ref_real=torch.full((16,), -10.0, dtype=torch.float64),
        ref_generated=torch.full((16,), -12.0, dtype=torch.float64),
    )
    get_loss(name)(batch, beta=beta, shift=shift).loss.sum().backward()

    assert torch.isfinite(policy_real.grad).all()
    assert torch.isfinite(policy_generated.grad).all()
    # Descent on the loss raises the demonstration's log-prob and lowers the generated one.
    assert (policy_real.grad < 0).all()
    assert (policy_generated.grad > 0).all()


@pytest.mark.parametrize("name", GSIL_LOSSES)
def test_gradient_matches_finite_differences(name):
    rng = np.random.default_rng(3)
    logps = {
        "policy_real": torch.tensor(rng.normal(-10, 2, 5), requires_grad=True),
        "policy_generated": torch.tensor(rng.normal(-12, 2, 5), requires_grad=True),
    }
    ref_real = torch.tensor(rng.normal(-10, 2, 5))
    ref_generated = torch.tensor(rng.normal(-12, 2, 5))
    loss_fn = get_loss(name)

    def loss_of(policy_real, policy_generated):
        batch = LogpBatch(policy_real, policy_generated, ref_real, ref_generated)
        return loss_fn(batch, beta=0.7, shift=0.2).loss

    assert torch.autograd.gradcheck(loss_of, (logps["policy_real"], logps["policy_generated"]))


def test_missing_reference_names_the_field():
    batch = LogpBatch(policy_real=torch.zeros(2), policy_generated=torch.zeros(2))
    with pytest.raises(ValueError, match=r"'gsil-hinge' needs LogpBatch\.ref_real"):
        get_loss("gsil-hinge")(batch)


def test_defaults_and_metadata():
    for name in GSIL_LOSSES:
        spec = get_loss(name)
        assert dict(spec.hparams) == {"beta": 0.1, "shift": 0.0}
        assert spec.needs_reference and spec.needs_generated
        assert spec.family == "gsil"
        assert "2410.10093" in (spec.fn.__doc__ or "")
