"""SPIN: self-play fine-tuning, the pairwise counterpart of GSIL on the same data.

Chen et al., "Self-Play Fine-Tuning Converts Weak Language Models to Strong Language Models",
ICML 2024, arXiv 2401.01335. The main player's objective depends only on the gap between the
log-ratios of the demonstration and of the self-generated response, r_w - r_l, with
r = log pi(y|x) - log pi_ref(y|x) and pi_ref the previous iteration's model. The paper's
loss is the logistic one; the hinge variant swaps in another convex, decreasing l(t).
Metrics: the shared ``reward/*`` set of gsil_bench.losses.common (reward = beta * log-ratio).
"""

from __future__ import annotations

from gsil_bench.losses.common import log_ratios, reference_reward_metrics
from gsil_bench.registry import register_loss
from gsil_bench.types import LogpBatch, LossOutput

# torch is imported inside each loss, not here: listing the registry (`gsil-bench losses`,
# sweep validation) imports this module and must not pay a second for torch.


@register_loss("spin", needs_reference=True, needs_generated=True)
def spin(batch: LogpBatch, *, beta: float = 0.1) -> LossOutput:
    """SPIN, logistic loss: -log s(beta*(r_w - r_l)).

    Chen et al. 2024, arXiv 2401.01335, with l(t) = log(1 + exp(-t)); ``-logsigmoid`` is
    its exact, overflow-free form. Identical real and generated responses (r_w == r_l
    for every parameter value) give a constant log 2 and no gradient.
    """
    import torch.nn.functional as F

    r_w, r_l = log_ratios(batch)
    loss = -F.logsigmoid(beta * (r_w - r_l))
    return LossOutput(loss, reference_reward_metrics(r_w, r_l, beta))


@register_loss("spin-hinge", needs_reference=True, needs_generated=True)
def spin_hinge(batch: LogpBatch, *, beta: float = 0.1) -> LossOutput:
    """SPIN, hinge loss: relu(1 - beta*(r_w - r_l)).

    Chen et al. 2024, arXiv 2401.01335, with l(t) = max(0, 1 - t): pairs already separated
    by a scaled margin of 1 give no gradient.
    """
    import torch.nn.functional as F

    r_w, r_l = log_ratios(batch)
    loss = F.relu(1 - beta * (r_w - r_l))
    return LossOutput(loss, reference_reward_metrics(r_w, r_l, beta))
