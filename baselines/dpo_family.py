"""DPO-family pairwise losses on (real, generated) pairs, for comparison with GSIL and SPIN.

Here the demonstration plays the "chosen" response and the generated one the "rejected".
Metrics follow the shared ``reward/*`` names of gsil_bench.losses.common; SimPO, which has no
reference, uses its own length-normalised reward (see :func:`simpo`).
"""

from __future__ import annotations

from gsil_bench.losses.common import log_ratios, present, reference_reward_metrics, reward_metrics
from gsil_bench.registry import register_loss
from gsil_bench.types import LogpBatch, LossOutput

# torch is imported inside each loss, not here: listing the registry (`gsil-bench losses`,
# sweep validation) imports this module and must not pay a second for torch.


@register_loss("ipo", needs_reference=True, needs_generated=True, family="dpo")
def ipo(batch: LogpBatch, *, beta: float = 0.1) -> LossOutput:
    """IPO, squared loss: (r_w - r_l - 1/(2*beta))**2.

    Azar et al. 2023, "A General Theoretical Paradigm to Understand Learning from Human
    Preferences", arXiv 2310.12036: regresses the log-ratio gap onto the fixed target
    1/(2*beta) instead of pushing it to infinity as DPO's logistic loss does; beta here is
    the paper's regularisation strength tau.
    """
    r_w, r_l = log_ratios(batch)
    loss = (r_w - r_l - 1 / (2 * beta)) ** 2
    return LossOutput(loss, reference_reward_metrics(r_w, r_l, beta))


@register_loss(
    "simpo", needs_reference=False, needs_generated=True, needs_lengths=True, family="dpo"
)
def simpo(batch: LogpBatch, *, beta: float = 2.0, gamma: float = 1.0) -> LossOutput:
    """SimPO, reference-free: -log s(beta*(logp_real - logp_generated) - gamma), per token.

    logp_real = policy_real/real_tokens and logp_generated = policy_generated/generated_tokens.

    Meng et al. 2024, "SimPO: Simple Preference Optimization with a Reference-Free Reward",
    arXiv 2405.14734: the implicit reward is the length-normalised log-prob
    beta * log pi(y|x) / |y|, and gamma is an absolute target margin (the paper's gamma/beta
    ratio of 0.5 at these defaults). Metrics: ``reward/*`` use that reward, ``logp/real`` and
    ``logp/generated`` the length-normalised log-probs themselves (as ``sft`` does).
    """
    import torch.nn.functional as F

    logp_real = batch.policy_real / present(batch, "real_tokens")
    logp_generated = present(batch, "policy_generated") / present(batch, "generated_tokens")
    loss = -F.logsigmoid(beta * (logp_real - logp_generated) - gamma)
    metrics = reward_metrics(beta * logp_real, beta * logp_generated, logp_real > logp_generated)
    metrics["logp/real"] = logp_real.detach()
    metrics["logp/generated"] = logp_generated.detach()
    return LossOutput(loss, metrics)
