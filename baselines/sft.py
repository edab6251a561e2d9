"""Supervised fine-tuning: maximum likelihood on the demonstrations only."""

from __future__ import annotations

from gsil_bench.losses.common import present
from gsil_bench.registry import register_loss
from gsil_bench.types import LogpBatch, LossOutput


@register_loss("sft", needs_reference=False, needs_generated=False, needs_lengths=True)
def sft(batch: LogpBatch) -> LossOutput:
    """SFT, per-token NLL of the demonstration: -policy_real / real_tokens.

    Dividing the summed log-prob by the response length gives the usual token-averaged
    cross-entropy, so long and short demonstrations weigh the same per token. No reference and
    no generated response: the backend skips both stages. Metric ``logp/real`` is the
    length-normalised log-prob of the demonstration (the negative loss), detached.
    """
    logp_real = batch.policy_real / present(batch, "real_tokens")
    return LossOutput(-logp_real, {"logp/real": logp_real.detach()})
