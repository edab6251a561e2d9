"""The comparison table as text: what every format shares (marks, labels, number formats, the
description of the tests) and the CSV. Markdown and LaTeX are in :mod:`markdown` and
:mod:`latex`. Pure functions of the table: every number goes through one explicit format, so the
same records give the same bytes."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from gsil_bench.report.power import MAX_PLANNED_SEEDS, TARGET_MDE, Instrument, SeedPlan
from gsil_bench.report.rows import Cell, Row
from gsil_bench.report.table import Table

SIGNIFICANCE = 0.05
DAGGER = "†"
STAR = "★"
PUBLISHED_TITLE = "Published numbers (not comparable to the mini suite)"
RUN_TEST_NOTE = (
    "run-level test: two-sided paired t-test over seeds of the per-seed differences (method "
    "and baseline share each seed's base model and data), Welch's t-test over the per-seed "
    "scores when the seeds do not pair; the item-level variance of the difference is added "
    "(Welch-Satterthwaite degrees of freedom)"
)
ITEM_TEST_NOTE = (
    "item-level test (secondary, ignores run-to-run variance): two-sided paired sign-flip "
    "test over items matched by id, each item's score first averaged over seeds"
)
INSTRUMENT_NOTE = (
    "signal: standard deviation of the means of the methods that ran every seed; noise: "
    "standard deviation of a method's score across seeds, pooled over methods; SNR = "
    "signal / noise, below 1 the benchmark does not separate the methods; MDE: the smallest "
    "true difference the study's test detects with 80% power at alpha 0.05 (noncentral t); "
    f"seeds for MDE {TARGET_MDE:g}: the seeds per method at which the same test at the same "
    'spread would detect that difference (a plan for the next study; "items": the '
    "item-level variance alone keeps the MDE above it, so more test items are needed, not "
    "more seeds); a plan from this study's own spread, which each comparison measures on seeds "
    "- 1 degrees of freedom: at 4 seeds the true spread lies within 0.6x to 2.9x of it (90%), "
    "so plan with a margin"
)
INSTRUMENT_HEADERS = [
    "seeds",
    "items",
    "signal",
    "noise",
    "SNR",
    "MDE",
    f"seeds for MDE {TARGET_MDE:g}",
]
STAT_COLUMNS = ["mean", "ci95_half_width", "n"]
TEST_COLUMNS = [
    "diff_vs_baseline",
    "diff_ci95_low",
    "diff_ci95_high",
    "p_value",
    "test",
    "p_value_items",
    "items",
]
INSTRUMENT_COLUMNS = ["mde", "snr", "separates", "seeds_for_mde"]


def render_csv(table: Table) -> str:
    """One row per method; per column the mean, interval, n, (with a baseline) the run-level
    test and the item-level p-value, and the column's instrument (the same on every row);
    then the mean over seeds of each diagnostic."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["method", "loss", *table.knobs, "seeds", "baseline", "best_of_loss", "partial"]
    stats = STAT_COLUMNS + (TEST_COLUMNS if table.baseline is not None else [])
    stats += INSTRUMENT_COLUMNS
    for column in table.columns:
        header += [f"{column.key}:{stat}" for stat in stats]
    header += [f"diag:{key}" for key in table.diagnostic_keys]
    writer.writerow(header)
    for row in table.rows:
        settings = dict(row.knobs)
        values: list[Any] = [row.method, row.loss]
        values += [csv_value(settings.get(knob)) for knob in table.knobs]
        values += [" ".join(map(str, row.seeds)), int(row.is_baseline), int(row.is_best)]
        values.append(int(not row.complete))
        for column in table.columns:
            values += _csv_cell(row.cells.get(column), table.baseline is not None)
            values += _csv_instrument(table.instruments.get(column))
        values += [csv_value(row.diagnostics.get(key)) for key in table.diagnostic_keys]
        writer.writerow(values)
    return buffer.getvalue()


def format_p(p: float) -> str:
    if math.isnan(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def is_significant(cell: Cell | None) -> bool:
    """The † of a cell: the run-level test, never the item-level one."""
    comparison = cell.comparison if cell is not None else None
    return bool(comparison is not None and comparison.p_value < SIGNIFICANCE)


def row_marks(row: Row) -> str:
    """What follows a row's label (before the ★): control, baseline, partial."""
    text = " (control)" if row.is_control else ""
    text += " (baseline)" if row.is_baseline else ""
    if not row.complete:
        text += f" (partial: n={len(row.seeds)})"
    return text


def format_number(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    if math.isinf(value):
        return "∞"
    return f"{value:.{digits}f}"


def does_not_separate(table: Table) -> list[str]:
    """Headers of the columns whose SNR is below 1."""
    return [c.header for c in table.columns if table.instruments[c].separates is False]


def format_published(value: float) -> str:
    """Two decimals as the papers print them; whole numbers (a 60% win rate) stay whole."""
    return f"{value:g}" if float(value).is_integer() else f"{value:.2f}"


def csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.10g}"
    return value


def _csv_cell(cell: Cell | None, with_tests: bool) -> list[Any]:
    width = len(STAT_COLUMNS) + (len(TEST_COLUMNS) if with_tests else 0)
    if cell is None:
        return [""] * width
    summary = cell.summary
    values: list[Any] = [summary.mean, summary.half_width, summary.n]
    if with_tests:
        runs, items = cell.comparison, cell.item_comparison
        if runs is None:
            values += [None] * 5
        else:
            values += [runs.difference, runs.ci_low, runs.ci_high, runs.p_value, runs.test]
        values += [None, None] if items is None else [items.p_value, items.n_items]
    return [csv_value(v) for v in values]


def _csv_instrument(instrument: Instrument | None) -> list[Any]:
    if instrument is None:
        return ["", "", "", ""]
    separates = instrument.separates
    flag = "" if separates is None else int(separates)
    plan = instrument.plan
    seeds = "" if plan is None or plan.seeds is None else plan.seeds
    return [csv_value(instrument.mde), csv_value(instrument.snr), flag, seeds]


def instrument_cells(instrument: Instrument, empty: str = "—") -> list[str]:
    """The numbers of one row of the instrument table, as every format prints them (the
    headers are ``INSTRUMENT_HEADERS``)."""
    items = empty if instrument.items is None else str(instrument.items)
    cells = [str(instrument.seeds), items]
    cells += [format_number(instrument.signal), format_number(instrument.noise)]
    cells += [format_number(instrument.snr, 2), format_number(instrument.mde)]
    return cells + [plan_text(instrument.plan, empty)]


def plan_text(plan: SeedPlan | None, empty: str = "—") -> str:
    """``12``; ``> 64``; ``items (floor 0.061)`` when the item part alone exceeds the target."""
    if plan is None:
        return empty
    if plan.seeds is not None:
        return str(plan.seeds)
    if plan.floor > plan.target:
        return f"items (floor {format_number(plan.floor)})"
    return f"> {MAX_PLANNED_SEEDS}"
