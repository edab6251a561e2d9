"""A row of the comparison table and the values that place it: method label, knob setting,
its runs, and one cell per benchmark column."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from gsil_bench.record import RunRecord
from gsil_bench.report.ranking import Column
from gsil_bench.report.runs import RunComparison
from gsil_bench.report.stats import MeanInterval, PairedComparison

KnobSetting = tuple[tuple[str, Any], ...]
CONTROL = "base"  # the method label of the untrained base model's runs (iterations: 0)


@dataclass(frozen=True)
class Cell:
    """A row's statistics in one column: the mean over seeds with its interval, the run-level
    comparison with the baseline (the † test) and the item-level one (a secondary column)."""

    summary: MeanInterval
    comparison: RunComparison | None = None
    item_comparison: PairedComparison | None = None


@dataclass
class Row:
    """Every seed of one method label at one data-quality setting.

    ``is_control``: the base-model row (never starred, never compared); ``complete``: it ran
    every seed of the study, so it may compete for best; ``diagnostics``: the mean over seeds
    of each ``RunRecord.diagnostics`` key its runs recorded.
    """

    method: str
    loss: str
    knobs: KnobSetting
    series: str  # the label without the knob settings: one curve of a data-quality plot
    records: list[RunRecord]
    cells: dict[Column, Cell] = field(default_factory=dict)
    is_baseline: bool = False
    is_best: bool = False
    is_control: bool = False
    complete: bool = True
    diagnostics: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The method label, plus the knob settings it does not already name (sweep labels
        of grid points do: ``sft subsample=0.5``)."""
        missing = [(k, v) for k, v in self.knobs if f"{knob_name(k)}=" not in self.method]
        if not missing:
            return self.method
        settings = ", ".join(f"{knob_name(k)}={format_value(v)}" for k, v in missing)
        return f"{self.method} · {settings}"

    @property
    def seeds(self) -> list[int]:
        return sorted(r.seed for r in self.records)

    def seed_scores(self, column: Column) -> dict[int, float]:
        """Seed -> that run's value of the column's metric, for the runs that have it."""
        scores = {}
        for record in self.records:
            metrics = (record.benchmarks.get(column.benchmark) or {}).get("metrics") or {}
            if metrics.get(column.metric) is not None:
                scores[record.seed] = float(metrics[column.metric])
        return dict(sorted(scores.items()))


def knob_name(knob: str) -> str:
    """``data.quality.subsample`` -> ``subsample``: the full path is in the CSV header."""
    return knob.rsplit(".", 1)[-1]


def format_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def value_key(value: Any) -> tuple[int, float, str]:
    """Sort key for knob values of mixed types: unset, then numbers, then the rest."""
    if value is None:
        return (0, 0.0, "")
    if isinstance(value, bool):
        return (1, float(value), "")
    if isinstance(value, int | float):
        return (2, float(value), "")
    return (3, 0.0, str(value))


def knob_setting(record: RunRecord, knobs: list[str]) -> KnobSetting:
    """The record's value of each of the study's knobs, in the study's order.

    The sweep stores them in ``knobs``; records written before it did hold them only among
    the swept ``params``, which is where a knob missing from ``knobs`` is looked up.
    """
    return tuple(
        (k, _hashable(record.knobs[k] if k in record.knobs else record.params.get(k)))
        for k in knobs
    )


def item_scores(record: RunRecord, column: Column) -> dict[str, float]:
    """Per-item values of one run for one column, keyed by item id: ``score`` for a primary
    metric, the item's value under the metric's own name for a continuous one."""
    result = record.benchmarks.get(column.benchmark) or {}
    field = "score" if column.primary else column.metric
    return {
        str(item["id"]): float(item[field])
        for item in result.get("items") or []
        if isinstance(item, dict) and "id" in item and item.get(field) is not None
    }


def _hashable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, list | dict) else value
