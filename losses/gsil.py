"""GSIL: imitation learning as pointwise density-ratio estimation.

Xiao et al. 2024 (GSIL), EMNLP 2024, arXiv 2410.10093. Each demonstration ("real") is class
+1 and each response the model generated itself ("generated") is class -1. The classifier's
logit is the policy's own log-ratio to the reference,

    z = beta * (log pi(y|x) - log pi_ref(y|x)) + shift,

so fitting the classifier moves the policy. Each choice of classification loss (one Bregman
divergence each) gives one member of the family; the six below are gsil-bench's built-ins.
Notation: r_w = policy_real - ref_real, r_l = policy_generated - ref_generated,
z_w = beta*r_w + shift, z_l = beta*r_l + shift, s = sigmoid.

Names in the GSIL release (github.com/tengxiao1/GSIL, ``gsil/alignment/trainer.py``,
``gsil_loss``): the release writes the logit as ``alpha * r + beta``, so its ``--alpha`` is our
``beta`` (the scale) and its ``--beta`` is our ``shift``. Its ``scripts/finetune.sh``
(``--alpha 0.01 --beta 2``) is ``loss.params.beta=0.01 loss.params.shift=2`` here; copying
``--beta 2`` as ``loss.params.beta=2`` would set the scale to 2 and leave the shift at 0. Its
``loss_type`` names: ``Bernoulli`` = gsil-logistic, ``Brier`` = gsil-brier (the release
averages the squared error over the batch), ``Hinge`` = gsil-hinge, ``KLIEP`` = gsil-kliep,
``LSIF`` = gsil-lsif. ``gsil-exponential`` is not in the release: it is gsil-bench's extension
of the family (the AdaBoost loss), not a loss the paper evaluated.

Metrics: the shared ``reward/*`` set of gsil_bench.losses.common (reward = beta * log-ratio).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gsil_bench.losses.common import log_ratios, reference_reward_metrics
from gsil_bench.registry import register_loss
from gsil_bench.types import LogpBatch, LossOutput

if TYPE_CHECKING:
    from torch import Tensor

# torch is imported inside each loss, not here: listing the registry (`gsil-bench losses`,
# sweep validation) imports this module and must not pay a second for torch.


def _classifier_logits(
    batch: LogpBatch, beta: float, shift: float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(r_w, r_l, z_w, z_l): log-ratios and the GSIL classifier logits z = beta*r + shift."""
    r_w, r_l = log_ratios(batch)
    return r_w, r_l, beta * r_w + shift, beta * r_l + shift


@register_loss("gsil-logistic", needs_reference=True, needs_generated=True)
def gsil_logistic(batch: LogpBatch, *, beta: float = 0.1, shift: float = 0.0) -> LossOutput:
    """GSIL logistic: -log s(z_w) - log s(-z_l) (release: Bernoulli, alpha/beta = our beta/shift).

    Xiao et al. 2024, arXiv 2410.10093: the Bernoulli log-loss of the real-vs-generated
    classifier with logit z = beta * log(pi/pi_ref) + shift. ``-logsigmoid`` is the exact,
    overflow-free form of -log s(.).
    """
    import torch.nn.functional as F

    r_w, r_l, z_w, z_l = _classifier_logits(batch, beta, shift)
    loss = -F.logsigmoid(z_w) - F.logsigmoid(-z_l)
    return LossOutput(loss, reference_reward_metrics(r_w, r_l, beta))


@register_loss("gsil-brier", needs_reference=True, needs_generated=True)
def gsil_brier(batch: LogpBatch, *, beta: float = 0.1, shift: float = 0.0) -> LossOutput:
    """GSIL, Brier (squared) loss: (1 - s(z_w))**2 + s(z_l)**2 (release: Brier).

    Xiao et al. 2024, arXiv 2410.10093: squared error of the classifier probability s(z)
    against the labels 1 (real) and 0 (generated). 1 - s(z_w) is computed as s(-z_w), the
    same value without cancellation when s(z_w) is close to 1.
    """
    import torch

    r_w, r_l, z_w, z_l = _classifier_logits(batch, beta, shift)
    loss = torch.sigmoid(-z_w) ** 2 + torch.sigmoid(z_l) ** 2
    return LossOutput(loss, reference_reward_metrics(r_w, r_l, beta))


@register_loss("gsil-hinge", needs_reference=True, needs_generated=True)
def gsil_hinge(batch: LogpBatch, *, beta: float = 0.1, shift: float = 0.0) -> LossOutput:
    """GSIL, hinge loss: relu(1 - z_w) + relu(1 + z_l) (release: Hinge).

    Xiao et al. 2024, arXiv 2410.10093: the SVM margin loss with labels +1 (real) and -1
    (generated); responses classified with margin 1 give no gradient.
    """
    import torch.nn.functional as F

    r_w, r_l, z_w, z_l = _classifier_logits(batch, beta, shift)
    loss = F.relu(1 - z_w) + F.relu(1 + z_l)
    return LossOutput(loss, reference_reward_metrics(r_w, r_l, beta))


@register_loss("gsil-kliep", needs_reference=True, needs_generated=True)
def gsil_kliep(batch: LogpBatch, *, beta: float = 0.1, shift: float = 0.0) -> LossOutput:
    """GSIL, KLIEP loss: -z_w + exp(z_l) (release: KLIEP).

    Xiao et al. 2024, arXiv 2410.10093: KL importance estimation with density ratio
    exp(z): -log ratio on real responses plus ratio on generated ones. exp(z_l) is kept as
    written; the training loop fails a run whose loss overflows.
    """
    import torch

    r_w, r_l, z_w, z_l = _classifier_logits(batch, beta, shift)
    loss = -z_w + torch.exp(z_l)
    return LossOutput(loss, reference_reward_metrics(r_w, r_l, beta))


@register_loss("gsil-lsif", needs_reference=True, needs_generated=True)
def gsil_lsif(batch: LogpBatch, *, beta: float = 0.1, shift: float = 0.0) -> LossOutput:
    """GSIL, LSIF loss: -exp(z_w) + exp(2*z_l)/2 (release: LSIF).

    Xiao et al. 2024, arXiv 2410.10093: least-squares importance fitting with density ratio
    exp(z): -ratio on real responses plus ratio**2 / 2 on generated ones. Unbounded below in
    z_w, and the exps are kept as written (the training loop guards overflow).
    """
    import torch

    r_w, r_l, z_w, z_l = _classifier_logits(batch, beta, shift)
    loss = -torch.exp(z_w) + torch.exp(2 * z_l) / 2
    return LossOutput(loss, reference_reward_metrics(r_w, r_l, beta))


@register_loss("gsil-exponential", needs_reference=True, needs_generated=True)
def gsil_exponential(batch: LogpBatch, *, beta: float = 0.1, shift: float = 0.0) -> LossOutput:
    """GSIL extension, not in the GSIL release: exponential loss exp(-z_w) + exp(z_l).

    gsil-bench's own member of the family of Xiao et al. 2024 (arXiv 2410.10093), which does
    not define or evaluate it: the AdaBoost loss exp(-label * z) with labels +1 (real) and -1
    (generated); the exps are kept as written (the training loop guards overflow).
    """
    import torch

    r_w, r_l, z_w, z_l = _classifier_logits(batch, beta, shift)
    loss = torch.exp(-z_w) + torch.exp(z_l)
    return LossOutput(loss, reference_reward_metrics(r_w, r_l, beta))
