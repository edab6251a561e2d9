"""An example gsil-bench loss plugin: GSIL with the squared hinge loss.

The squared hinge is one more classification loss for GSIL's real-vs-generated classifier
(Xiao et al. 2024, arXiv 2410.10093): like the hinge it ignores responses classified with a
margin of 1, but its gradient shrinks smoothly to zero on the way there instead of jumping.
"""

from __future__ import annotations

import torch.nn.functional as F

from gsil_bench.losses.common import log_ratios, reference_reward_metrics
from gsil_bench.registry import register_loss
from gsil_bench.types import LogpBatch, LossOutput


@register_loss("gsil-squared-hinge", needs_reference=True, needs_generated=True)
def gsil_squared_hinge(batch: LogpBatch, *, beta: float = 0.1, shift: float = 0.0) -> LossOutput:
    """GSIL, squared hinge loss: relu(1 - z_w)**2 + relu(1 + z_l)**2.

    z = beta * (log pi - log pi_ref) + shift, labels +1 (real) and -1 (generated), as for the
    built-in ``gsil-hinge``. Reuses gsil-bench's helpers so the ``reward/*`` metrics mean the
    same as for every built-in loss.
    """
    r_w, r_l = log_ratios(batch)
    z_w, z_l = beta * r_w + shift, beta * r_l + shift
    loss = F.relu(1 - z_w) ** 2 + F.relu(1 + z_l) ** 2
    return LossOutput(loss, reference_reward_metrics(r_w, r_l, beta))
