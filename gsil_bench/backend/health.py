"""Whether a training run can learn, and whether it should stop: the checks the training loop
makes after each step (:class:`Health`, :func:`stop_now`)."""

from __future__ import annotations

import math
from typing import Any

import torch
from accelerate import Accelerator

from gsil_bench.errors import NonFiniteLossError, StalledTrainingError
from gsil_bench.stop import stop_requested

# A run must show it can learn within its first STALL_STEPS optimizer steps (or all of them, if
# fewer): a loss that did not change while the weights did not move fails the run.
STALL_STEPS = 3
# Under fp16 loss scaling a non-finite gradient is how the scaler finds its scale: it skips the
# step and halves the scale. This many skipped steps in a row (the scale 2**10 lower) is not that.
SCALER_SKIPS_ALLOWED = 10


def _weights_summary(model) -> list[float]:
    """Per trainable parameter, its sum and norm in float64: an update changes them."""
    out: list[float] = []
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                out += [float(p.sum(dtype=torch.float64)), float(p.norm(dtype=torch.float64))]
    return out


class Health:
    """Fails a run that cannot learn, with the loss, the step and the quantity named.

    - A non-finite gradient norm: with max_grad_norm set, clipping would scale the update to
      zero (or NaN) and the run would end "ok" with the weights it started from. Without a
      loss scaler (CPU, fp32, bf16) the first one fails the run; under fp16 loss scaling the
      scaler skips such a step and lowers its scale, so only SCALER_SKIPS_ALLOWED skipped
      steps in a row fail it.
    - A stall: over the first STALL_STEPS applied optimizer steps the loss stayed the same
      (relative 1e-6; each step sees another batch) and the weights did not move (their
      float64 sums and norms unchanged, or every gradient norm was 0, so that weight decay
      alone does not count as learning). The window survives a resume through the
      checkpoint; a checkpoint past the window is not checked again.
    """

    def __init__(
        self,
        accelerator: Accelerator,
        loss: str,
        model,
        start: int,
        total: int,
        saved: dict[str, Any],
    ) -> None:
        self.accelerator, self.loss = accelerator, loss
        self.window = min(STALL_STEPS, total)
        self.skipped = 0
        self.state: dict[str, Any] | None = saved.get("health")
        if start == 0:
            self.state = {"weights": _weights_summary(model), "losses": [], "grad_norms": []}

    def check_gradient(self, step: int, grad_norm: float, loss: float) -> None:
        """Before the optimizer step: a non-finite gradient norm fails the run (see above)."""
        if math.isfinite(grad_norm):
            self.skipped = 0
            return
        scaled = self.accelerator.scaler is not None
        if scaled and self.skipped < SCALER_SKIPS_ALLOWED:
            self.skipped += 1
            return
        times = f" ({self.skipped + 1} steps in a row under fp16 loss scaling)" if scaled else ""
        harm = "zeroed" if math.isinf(grad_norm) else "NaN, and so would the weights"
        raise NonFiniteLossError(
            f"loss {self.loss!r}: the gradient norm is {grad_norm} at step {step}{times} "
            f"(loss {loss:.4g}); the update would be {harm}: the run cannot learn; "
            "lower beta or the learning rate"
        )

    def after_step(self, step: int, loss: float, grad_norm: float, model) -> None:
        """After an optimizer step: the stall check, once the window is complete."""
        if self.state is None or self.accelerator.optimizer_step_was_skipped:
            return
        self.state["losses"].append(loss)
        self.state["grad_norms"].append(grad_norm)
        losses, norms = self.state["losses"], self.state["grad_norms"]
        if len(losses) < self.window:
            return
        weights, self.state = self.state["weights"], None
        same_loss = all(math.isclose(x, losses[0], rel_tol=1e-6, abs_tol=1e-12) for x in losses)
        still = not any(g > 0 for g in norms) or _weights_summary(model) == weights
        stalled = float(same_loss and still)
        if self.accelerator.num_processes > 1:  # every process takes the same decision
            flags = torch.tensor([stalled], device=self.accelerator.device)
            stalled = float(self.accelerator.reduce(flags, reduction="sum").item())
            stalled = float(stalled == self.accelerator.num_processes)
        if stalled:
            raise StalledTrainingError(
                f"loss {self.loss!r} cannot learn: over its first {len(losses)} optimizer "
                f"steps (to step {step}) the loss stayed at {losses[0]:.6g} and the weights did "
                f"not move (largest gradient norm {max(norms):.3g}); check the loss's settings "
                "(beta, shift) and optim.lr"
            )

    def saved(self) -> dict[str, Any]:
        """What a checkpoint keeps of the check (an open window)."""
        return {"health": self.state} if self.state is not None else {}


def stop_now(accelerator: Accelerator) -> bool:
    """Whether a stop was requested (SIGTERM), agreed by every process."""
    requested = float(stop_requested())
    if accelerator.num_processes > 1:
        flags = torch.tensor([requested], device=accelerator.device)
        requested = float(accelerator.reduce(flags, reduction="sum").item())
    return requested > 0
