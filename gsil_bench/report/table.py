"""The comparison table as data: one row per method label (and data-quality setting), a ``base``
control row on top, one column per benchmark's primary metric, statistics in every cell, the
run-level test against the baseline, each loss's best row by the study's objective, the
controls' diagnostics and, per column, the instrument (signal, noise, SNR, MDE). Rendering is
elsewhere."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gsil_bench.evaluation.result import primary_metric
from gsil_bench.record import RunRecord
from gsil_bench.report.compare import compare_with_baseline, matches_baseline, resolve_baseline
from gsil_bench.report.objective import parse_objective
from gsil_bench.report.power import Instrument, measure_instrument
from gsil_bench.report.ranking import Column, Ranking, best_of_group, rank_by
from gsil_bench.report.rows import (
    CONTROL,
    Cell,
    KnobSetting,
    Row,
    format_value,
    item_scores,
    knob_name,
    knob_setting,
    value_key,
)
from gsil_bench.report.runs import PAIRED_T, ItemVariance, item_variance
from gsil_bench.report.stats import MeanInterval, mean, mean_interval
from gsil_bench.report.study import RecordFile, Study

# Re-exported: the table's vocabulary, for the renderers, the plots and the tests.
__all__ = [
    "CONTROL",
    "Cell",
    "Column",
    "KnobSetting",
    "Row",
    "Table",
    "build_table",
    "format_value",
    "knob_name",
    "matches_baseline",
    "value_key",
]


@dataclass
class Table:
    columns: list[Column]
    rows: list[Row]
    baseline: str | None
    ranking: Ranking
    notes: list[str] = field(default_factory=list)
    knobs: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)  # the study's seeds: a complete row has all
    instruments: dict[Column, Instrument] = field(default_factory=dict)
    diagnostic_keys: list[str] = field(default_factory=list)


def build_table(study: Study, *, baseline: str | None = None) -> Table:
    """Group the study's records into rows, summarise each cell, compare with the baseline."""
    notes: list[str] = []
    columns = _columns(study.records)
    rows = _group_rows(study.record_files, study.knobs, notes)
    seeds = study_seeds(study, rows)
    for row in rows:
        row.cells = {c: Cell(s) for c in columns if (s := _summary(row, c)) is not None}
        row.complete = row.is_control or set(seeds) <= set(row.seeds)
        row.diagnostics = _diagnostics(row.records)
    ranking = rank_by(parse_objective(study.info.get("objective")), columns)
    if ranking.unresolved:
        notes.append(f"objective metric '{ranking.unresolved}' is not a column of this table")
    _mark_best(rows, columns, ranking)
    baseline = resolve_baseline(baseline, study, rows, notes)
    if baseline is not None:
        compare_with_baseline(rows, columns, baseline, notes)
    instruments = {column: _instrument(rows, column, len(seeds)) for column in columns}
    still = [column.header for column in columns if instruments[column].noise == 0.0]
    if still:
        notes.append(
            f"no method's score moved with the seed on {', '.join(still)} (noise 0): no SNR, "
            "and the run-level tests there rest on the item-level variance alone"
        )
    keys = sorted({key for row in rows for key in row.diagnostics})
    return Table(columns, rows, baseline, ranking, notes, study.knobs, seeds, instruments, keys)


def study_seeds(study: Study, rows: list[Row]) -> list[int]:
    """The seeds every configuration of the study is meant to run: ``study.json``'s ``seeds``
    (written by the sweep), else every seed some method row ran."""
    declared = study.info.get("seeds")
    if isinstance(declared, list) and declared:
        return sorted({int(seed) for seed in declared})
    return sorted({seed for row in rows if not row.is_control for seed in row.seeds})


def _columns(records: Iterable[RunRecord]) -> list[Column]:
    """Per benchmark its primary metric, then the continuous metric it names, if any."""
    chosen: dict[str, list[Column]] = {}
    for record in records:  # records arrive sorted by file name, so the choice is stable
        for name, result in record.benchmarks.items():
            if name not in chosen and result["metrics"]:
                chosen[name] = [Column(name, primary_metric(result))]
                continuous = result.get("continuous")
                if continuous and continuous in result["metrics"]:
                    chosen[name].append(Column(name, str(continuous), primary=False))
    return [column for name in sorted(chosen) for column in chosen[name]]


def _group_rows(files: list[RecordFile], knobs: list[str], notes: list[str]) -> list[Row]:
    groups: dict[tuple[str, KnobSetting], Row] = {}
    kept: dict[tuple[str, KnobSetting, int], Path] = {}
    for path, record in files:
        control = record.method == CONTROL
        # The base model does not depend on the data-quality knobs (they change only the
        # alignment data): one control row, whatever setting its records were placed at.
        setting = () if control else knob_setting(record, knobs)
        key = (record.method, setting)
        loss = "" if control else record.loss
        row = groups.setdefault(key, Row(record.method, loss, setting, record.series, []))
        row.is_control = control
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
    return (not row.is_control, row.loss, row.method, tuple(value_key(v) for _, v in row.knobs))


def _summary(row: Row, column: Column) -> MeanInterval | None:
    values = list(row.seed_scores(column).values())
    return mean_interval(values) if values else None


def _diagnostics(records: list[RunRecord]) -> dict[str, float]:
    """Mean over seeds of each diagnostic; records written before diagnostics have none."""
    values: dict[str, list[float]] = {}
    for record in sorted(records, key=lambda r: r.seed):
        for key, value in record.diagnostics.items():
            values.setdefault(key, []).append(float(value))
    return {key: mean(values[key]) for key in sorted(values)}


def _mark_best(rows: list[Row], columns: list[Column], ranking: Ranking) -> None:
    # Hyperparameters compete within a loss at one data setting: the data setting is what a
    # data-quality sweep varies on purpose, not a configuration to pick.
    groups: dict[tuple[str, KnobSetting], list[Row]] = {}
    for row in rows:
        if not row.is_control:
            groups.setdefault((row.loss, row.knobs), []).append(row)
    for group in groups.values():
        candidates = [(ranking.score(_means(r), columns), r.complete) for r in group]
        best = best_of_group(candidates, ranking)
        if best is not None:
            group[best].is_best = True


def _means(row: Row) -> dict[Column, float]:
    return {column: cell.summary.mean for column, cell in row.cells.items()}


def _instrument(rows: list[Row], column: Column, seeds: int) -> Instrument:
    """Signal over the complete method rows (a partial row's mean is over other seeds), noise
    over every method row with 2+ seeds, the MDE from the paired differences against the
    baseline and the item-level variance the test adds (its mean over the rows compared). The
    control row is left out: it is what the methods move away from, not a method compared."""
    methods = [row for row in rows if not row.is_control and column in row.cells]
    means = [row.cells[column].summary.mean for row in methods if row.complete]
    scores = [list(row.seed_scores(column).values()) for row in methods]
    paired: list[tuple[float, int]] = []
    item_parts: list[ItemVariance] = []
    for row in methods:
        cell = row.cells[column]
        runs, items = cell.comparison, cell.item_comparison
        if runs is not None and runs.test == PAIRED_T and runs.seed_sd is not None:
            paired.append((runs.seed_sd, runs.seeds))
        part = item_variance(items.standard_error, items.n_items) if items is not None else None
        if part is not None:
            item_parts.append(part)
    counts = [len(item_scores(r, column)) for row in methods for r in row.records]
    items_per_run = max(counts, default=0) or None
    pooled_items = None
    if item_parts:
        variance = mean([part.variance for part in item_parts])
        pooled_items = ItemVariance(variance, min(part.df for part in item_parts))
    return measure_instrument(
        means, scores, paired, seeds=seeds, items=items_per_run, item_variance=pooled_items
    )
