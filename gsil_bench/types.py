"""The only types a loss function sees.

A loss is a pure function ``(LogpBatch, **hparams) -> LossOutput``. It never reduces over the
batch (the backend does), never holds state and never moves tensors between devices.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: the registry and CLI import this module without torch
    from torch import Tensor


@dataclass
class LogpBatch:
    """Per-example summed response log-probabilities and response lengths, each of shape (B,).

    ``policy_*`` come from the model being trained, ``ref_*`` from the frozen reference.
    "real" is the demonstration, "generated" the negative (a self-generated response, or the
    rejected side of preference data). Fields a loss does not need may be ``None``.
    """

    policy_real: Tensor
    policy_generated: Tensor | None = None
    ref_real: Tensor | None = None
    ref_generated: Tensor | None = None
    real_tokens: Tensor | None = None
    generated_tokens: Tensor | None = None


@dataclass
class LossOutput:
    """``loss`` is per example, shape (B,), unreduced; ``metrics`` holds detached tensors."""

    loss: Tensor
    metrics: dict[str, Tensor] = field(default_factory=dict)


LossFn = Callable[..., LossOutput]


@dataclass(frozen=True)
class LossSpec:
    """A registered loss: its function and the metadata the backend and sweeps read."""

    name: str
    fn: LossFn
    needs_reference: bool
    needs_generated: bool
    hparams: Mapping[str, Any]
    family: str
    target: str  # "module:function" where it lives
    summary: str = ""
    needs_lengths: bool = False  # reads real_tokens (and generated_tokens)

    @property
    def fields(self) -> tuple[str, ...]:
        """The LogpBatch fields this loss reads, from its metadata."""
        names = ["policy_real"]
        if self.needs_generated:
            names.append("policy_generated")
        if self.needs_reference:
            names += ["ref_real", "ref_generated"] if self.needs_generated else ["ref_real"]
        if self.needs_lengths:
            names += (
                ["real_tokens", "generated_tokens"] if self.needs_generated else ["real_tokens"]
            )
        return tuple(names)

    def __call__(self, batch: LogpBatch, **hparams: Any) -> LossOutput:
        # The backend fills fields from this metadata; a None here is a caller bug, and
        # "NoneType has no attribute" would hide which loss asked for what.
        for name in self.fields:
            if getattr(batch, name) is None:
                raise ValueError(f"loss {self.name!r} needs LogpBatch.{name}, which is None")
        return self.fn(batch, **hparams)
