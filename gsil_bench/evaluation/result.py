"""The record one benchmark run produces. Per-item outcomes are kept for paired statistics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class BenchmarkResult:
    """``metrics`` holds the headline numbers (primary first); ``items`` one dict per item with
    at least ``id`` and ``score`` (a float, 0/1 for pass/fail), in a stable order."""

    benchmark: str
    metrics: dict[str, float]
    items: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    # A continuous metric reported beside the primary one (DESIGN.md §11: far better signal to
    # noise than accuracy at small scale); its per-item values sit in items under its name.
    continuous: str | None = None

    @property
    def primary(self) -> str:
        return next(iter(self.metrics))

    def to_dict(self) -> dict[str, Any]:
        # "primary" is stored explicitly: JSON tools (and sort_keys) do not keep dict order.
        return {**asdict(self), "primary": self.primary}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchmarkResult:
        return cls(**{k: v for k, v in data.items() if k != "primary"})


def primary_metric(result: dict[str, Any]) -> str:
    """The headline metric of a serialised result (older records: the first key)."""
    return str(result.get("primary") or next(iter(result["metrics"])))


def mean_or_nan(values: Sequence[float]) -> float:
    """The mean of a metric over items; NaN (shown as "-") when no item was scored."""
    return sum(values) / len(values) if values else math.nan
