"""The comparison table as data: one row per method label (and data-quality setting), one
column per benchmark's primary metric, statistics in every cell, each loss's best row by the
study's objective. Rendering is elsewhere."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gsil_bench.errors import UserError
from gsil_bench.evaluation.result import primary_metric
from gsil_bench.record import RunRecord
from gsil_bench.report.objective import MEAN, Objective, parse_objective, resolve_metric
from gsil_bench.report.stats import (
    MeanInterval,
    PairedComparison,
    average_items,
    mean,
    mean_interval,
    paired_comparison,
)
from gsil_bench.report.study import RecordFile, Study

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
    series: str  # the label without the knob settings: one curve of a data-quality plot
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
    def seeds(self) -> list[int]:
        return sorted(r.seed for r in self.records)


@dataclass(frozen=True)
class Ranking:
    """The study's objective matched to the table's columns: how rows compete for "best".

    A term's column ``None`` stands for ``mean``, the mean over all columns; ``unresolved``
    names a metric the table has no column for, and then nothing is ranked.
    """

    terms: tuple[tuple[Column | None, float], ...]
    direction: str
    unresolved: str | None = None

    @property
    def minimize(self) -> bool:
        return self.direction == "minimize"

    def description(self) -> str:
        names = [
            "the mean of the benchmark metrics" if col is None else col.header
            for col, _ in self.terms
        ]
        if len(self.terms) == 1 and self.terms[0][1] == 1.0:
            return names[0]
        return " + ".join(f"{w:g} × {n}" for (_, w), n in zip(self.terms, names, strict=True))

    def score(self, means: dict[Column, float], columns: list[Column]) -> float | None:
        """The objective of one row from its seed means; None if a needed metric is missing."""
        if not self.terms:
            return None
        total = 0.0
        for column, weight in self.terms:
            needed = list(columns) if column is None else [column]
            if not needed or any(c not in means for c in needed):
                return None
            total += weight * mean([means[c] for c in needed])
        return total


def rank_by(objective: Objective, columns: list[Column]) -> Ranking:
    """Match the objective's metric names to columns; an objective naming none: the first."""
    if not objective.metrics:
        return Ranking(((columns[0], 1.0),) if columns else (), objective.direction)
    available = {column.benchmark: [column.metric] for column in columns}
    terms: list[tuple[Column | None, float]] = []
    for name, weight in objective.metrics.items():
        if name == MEAN:
            terms.append((None, weight))
            continue
        found = resolve_metric(name, available)
        if found is None:
            return Ranking((), objective.direction, unresolved=name)
        terms.append((Column(*found), weight))
    return Ranking(tuple(terms), objective.direction)


@dataclass
class Table:
    columns: list[Column]
    rows: list[Row]
    baseline: str | None
    ranking: Ranking
    notes: list[str] = field(default_factory=list)


def build_table(study: Study, *, baseline: str | None = None) -> Table:
    """Group the study's records into rows, summarise each cell, compare with the baseline."""
    notes: list[str] = []
    columns = _columns(study.records)
    rows = _group_rows(study.record_files, study.knobs, notes)
    for row in rows:
        row.cells = {c: Cell(s) for c in columns if (s := _summary(row, c)) is not None}
    ranking = rank_by(parse_objective(study.info.get("objective")), columns)
    if ranking.unresolved:
        notes.append(f"objective metric '{ranking.unresolved}' is not a column of this table")
    _mark_best(rows, columns, ranking)
    baseline = _resolve_baseline(baseline, study, rows, notes)
    if baseline is not None:
        _compare_with_baseline(rows, columns, baseline, notes)
    return Table(columns, rows, baseline, ranking, notes)


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


def knob_setting(record: RunRecord, knobs: list[str]) -> KnobSetting:
    """The record's value of each of the study's knobs, in the study's order.

    The sweep stores them in ``knobs``; records written before it did hold them only among
    the swept ``params``, which is where a knob missing from ``knobs`` is looked up.
    """
    return tuple(
        (k, _hashable(record.knobs[k] if k in record.knobs else record.params.get(k)))
        for k in knobs
    )


def _group_rows(files: list[RecordFile], knobs: list[str], notes: list[str]) -> list[Row]:
    groups: dict[tuple[str, KnobSetting], Row] = {}
    kept: dict[tuple[str, KnobSetting, int], Path] = {}
    for path, record in files:
        setting = knob_setting(record, knobs)
        key = (record.method, setting)
        row = groups.setdefault(key, Row(record.method, record.loss, setting, record.series, []))
        first = kept.setdefault((*key, record.seed), path)
        if first != path:
            # A resumed sweep can leave two records of one seed; counting both would shrink
            # the interval with data that is not independent.
            notes.append(
                f"duplicate record for seed {record.seed} of {row.label}: kept "
                f"{first.name}, ignored {path.name}"
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


def _mark_best(rows: list[Row], columns: list[Column], ranking: Ranking) -> None:
    # Hyperparameters compete within a loss at one data setting: the data setting is what a
    # data-quality sweep varies on purpose, not a configuration to pick.
    groups: dict[tuple[str, KnobSetting], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.loss, row.knobs), []).append(row)
    sign = -1.0 if ranking.minimize else 1.0
    for group in groups.values():
        scores = [(ranking.score(_means(r), columns), r) for r in group]
        scored = [(sign * score, r) for score, r in scores if score is not None]
        if len(group) < 2 or not scored:
            continue
        # max() keeps the first of equal scores, and rows are sorted: ties break stably.
        max(scored, key=lambda pair: pair[0])[1].is_best = True


def _means(row: Row) -> dict[Column, float]:
    return {column: cell.summary.mean for column, cell in row.cells.items()}
