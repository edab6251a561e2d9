"""The comparison table as data: one row per method label (and data-quality setting), one
column per benchmark's primary metric, statistics in every cell. Rendering is elsewhere."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gsil_bench.errors import UserError
from gsil_bench.evaluation.result import primary_metric
from gsil_bench.report_objective import Objective, parse_objective
from gsil_bench.stats import (
    MeanInterval,
    PairedComparison,
    average_items,
    mean_interval,
    paired_comparison,
)

if TYPE_CHECKING:
    from gsil_bench.report import RunRecord, Study

KnobSetting = tuple[tuple[str, Any], ...]


@dataclass(frozen=True, order=True)
class Column:
    """A benchmark and the metric shown for it (its primary one, the first in ``metrics``)."""

    benchmark: str
    metric: str

    @property
    def header(self) -> str:
        return f"{self.benchmark} {self.metric}"


@dataclass(frozen=True)
class Cell:
    summary: MeanInterval
    comparison: PairedComparison | None = None


@dataclass
class Row:
    """Every seed of one method label at one data-quality setting."""

    method: str
    loss: str
    knobs: KnobSetting
    records: list[RunRecord]
    cells: dict[Column, Cell] = field(default_factory=dict)
    is_baseline: bool = False
    is_best: bool = False

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
    def series(self) -> str:
        """The label without the knob settings: one curve of a data-quality plot."""
        names = tuple(f"{knob_name(k)}=" for k, _ in self.knobs)
        kept = [t for t in self.method.split(" ") if not t.startswith(names)]
        return " ".join(kept) or self.method

    @property
    def seeds(self) -> list[int]:
        return sorted(r.seed for r in self.records)


@dataclass
class Table:
    columns: list[Column]
    rows: list[Row]
    baseline: str | None
    objective: Objective
    notes: list[str] = field(default_factory=list)


def build_table(study: Study, *, baseline: str | None = None) -> Table:
    """Group the study's records into rows, summarise each cell, compare with the baseline."""
    notes: list[str] = []
    columns = _columns(study.records)
    rows = _group_rows(study.records, study.knobs, notes)
    for row in rows:
        row.cells = {c: Cell(s) for c in columns if (s := _summary(row, c)) is not None}
    objective = parse_objective(study.info.get("objective"), columns)
    if objective.unresolved:
        notes.append(f"objective metric '{objective.unresolved}' is not a column of this table")
    _mark_best(rows, columns, objective)
    baseline = _resolve_baseline(baseline, study, rows, notes)
    if baseline is not None:
        _compare_with_baseline(rows, columns, baseline, notes)
    return Table(columns, rows, baseline, objective, notes)


def matches_baseline(method: str, baseline: str) -> bool:
    """A baseline names a method label or its leading part: ``sft`` stands for the sweep's
    ``sft subsample=0.5`` rows as well (the data setting is matched separately)."""
    return method == baseline or method.startswith(baseline + " ")


def _resolve_baseline(
    requested: str | None, study: Study, rows: list[Row], notes: list[str]
) -> str | None:
    """A baseline nobody ran is an error; one whose runs all failed is a note, so that a sweep
    still gets its table (without significance marks)."""
    baseline = requested if requested is not None else study.baseline
    if baseline is None or any(matches_baseline(r.method, baseline) for r in rows):
        return baseline
    failed = [str(f.get("method", "")) for f in study.failures]
    if requested is not None and not any(matches_baseline(m, baseline) for m in failed):
        known = ", ".join(sorted({r.method for r in rows})) or "none finished"
        raise UserError(f"baseline '{baseline}' is not a method of {study.path}: {known}")
    notes.append(f"baseline '{baseline}' has no finished run; no paired tests")
    return None


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


def item_scores(record: RunRecord, benchmark: str) -> dict[str, float]:
    """Per-item outcomes of one run on one benchmark, keyed by item id."""
    result = record.benchmarks.get(benchmark) or {}
    return {
        str(item["id"]): float(item["score"])
        for item in result.get("items") or []
        if isinstance(item, dict) and "id" in item and item.get("score") is not None
    }


def _columns(records: Iterable[RunRecord]) -> list[Column]:
    primary: dict[str, str] = {}
    for record in records:  # records arrive sorted by file name, so the choice is stable
        for name, result in record.benchmarks.items():
            if name not in primary and result["metrics"]:
                primary[name] = primary_metric(result)
    return [Column(name, primary[name]) for name in sorted(primary)]


def _group_rows(records: list[RunRecord], knobs: list[str], notes: list[str]) -> list[Row]:
    groups: dict[tuple[str, KnobSetting], Row] = {}
    for record in records:
        setting = tuple((k, _hashable(record.params.get(k))) for k in knobs)
        row = groups.setdefault(
            (record.method, setting), Row(record.method, record.loss, setting, [])
        )
        kept = next((r for r in row.records if r.seed == record.seed), None)
        if kept is not None:
            # A resumed sweep can leave two records of one seed; counting both would shrink
            # the interval with data that is not independent.
            notes.append(
                f"duplicate record for seed {record.seed} of {row.label}: kept "
                f"{kept.path.name}, ignored {record.path.name}"
            )
            continue
        row.records.append(record)
    return sorted(groups.values(), key=_row_key)


def _row_key(row: Row) -> tuple[Any, ...]:
    return (row.loss, row.method, tuple(value_key(v) for _, v in row.knobs))


def _hashable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, list | dict) else value


def _summary(row: Row, column: Column) -> MeanInterval | None:
    values = []
    for record in sorted(row.records, key=lambda r: r.seed):
        metrics = (record.benchmarks.get(column.benchmark) or {}).get("metrics") or {}
        if metrics.get(column.metric) is not None:
            values.append(float(metrics[column.metric]))
    return mean_interval(values) if values else None


def _compare_with_baseline(
    rows: list[Row], columns: list[Column], baseline: str, notes: list[str]
) -> None:
    # Each row is compared with the baseline at the same data-quality setting: comparing
    # across settings would mix the method's effect with the data's.
    references: dict[KnobSetting, Row] = {}
    for row in rows:  # rows are sorted, so the choice below is stable
        if row.knobs in references or not matches_baseline(row.method, baseline):
            continue
        candidates = [
            r for r in rows if r.knobs == row.knobs and matches_baseline(r.method, baseline)
        ]
        exact = [r for r in candidates if r.method == baseline]
        chosen = (exact or [r for r in candidates if r.is_best] or candidates)[0]
        if len(candidates) > 1 and not exact:
            notes.append(
                f"baseline '{baseline}' matches several rows; compared with {chosen.label}"
            )
        chosen.is_baseline = True
        references[row.knobs] = chosen
    for row in rows:
        reference = references.get(row.knobs)
        if row.is_baseline or reference is None:
            continue
        for column, cell in list(row.cells.items()):
            ours = average_items([item_scores(r, column.benchmark) for r in row.records])
            theirs = average_items([item_scores(r, column.benchmark) for r in reference.records])
            row.cells[column] = Cell(cell.summary, paired_comparison(ours, theirs))


def _mark_best(rows: list[Row], columns: list[Column], objective: Objective) -> None:
    # Hyperparameters compete within a loss at one data setting: the data setting is what a
    # data-quality sweep varies on purpose, not a configuration to pick.
    groups: dict[tuple[str, KnobSetting], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.loss, row.knobs), []).append(row)
    sign = -1.0 if objective.minimize else 1.0
    for group in groups.values():
        scores = [(objective.score(_means(r), columns), r) for r in group]
        scored = [(sign * score, r) for score, r in scores if score is not None]
        if len(group) < 2 or not scored:
            continue
        # max() keeps the first of equal scores, and rows are sorted: ties break stably.
        max(scored, key=lambda pair: pair[0])[1].is_best = True


def _means(row: Row) -> dict[Column, float]:
    return {column: cell.summary.mean for column, cell in row.cells.items()}
