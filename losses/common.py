"""Helpers shared by every built-in loss (and open to plugins), so metrics mean one thing.

Notation as in gsil_bench.losses.gsil: r_w = policy_real - ref_real, r_l = policy_generated -
ref_generated. The registered :class:`~gsil_bench.types.LossSpec` checks that the LogpBatch
fields a loss declares are present before calling it; :func:`present` only narrows the type
(and still fails clearly when a loss function is called directly with a field missing).

Metrics, shared by every loss with a reference, each detached with shape (B,):

- ``reward/real``      beta * r_w  (the implicit reward of the demonstration; no shift)
- ``reward/generated`` beta * r_l
- ``reward/margin``    reward/real - reward/generated
- ``reward/accuracy``  1.0 where r_w > r_l, else 0.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gsil_bench.types import LogpBatch

if TYPE_CHECKING:
    from torch import Tensor


def present(batch: LogpBatch, field: str) -> Tensor:
    """``batch.<field>``, which must not be None."""
    value = getattr(batch, field)
    if value is None:
        raise ValueError(f"this loss needs LogpBatch.{field}, which is None")
    return value


def log_ratios(batch: LogpBatch) -> tuple[Tensor, Tensor]:
    """(r_w, r_l): policy minus reference summed log-probs of the real and generated responses."""
    r_w = batch.policy_real - present(batch, "ref_real")
    r_l = present(batch, "policy_generated") - present(batch, "ref_generated")
    return r_w, r_l


def reward_metrics(
    reward_real: Tensor, reward_generated: Tensor, real_wins: Tensor
) -> dict[str, Tensor]:
    """The shared ``reward/*`` metrics, detached, shape (B,).

    ``real_wins`` is where the demonstration beats the generated response; it is passed in
    rather than derived from the rewards so that it does not flip with the sign of beta.
    """
    reward_real = reward_real.detach()
    reward_generated = reward_generated.detach()
    return {
        "reward/real": reward_real,
        "reward/generated": reward_generated,
        "reward/margin": reward_real - reward_generated,
        "reward/accuracy": real_wins.detach().to(reward_real.dtype),
    }


def reference_reward_metrics(r_w: Tensor, r_l: Tensor, beta: float) -> dict[str, Tensor]:
    """``reward/*`` metrics of a loss with a reference: the reward is beta * log-ratio."""
    return reward_metrics(beta * r_w, beta * r_l, r_w > r_l)
