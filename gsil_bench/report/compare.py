"""Each row against the baseline at its data setting: the run-level test (the † column, see
:mod:`gsil_bench.report.runs`) and, as a secondary column, the item-level paired test (see
:mod:`gsil_bench.report.stats`)."""

from __future__ import annotations

from gsil_bench.errors import UserError
from gsil_bench.report.ranking import Column
from gsil_bench.report.rows import Cell, KnobSetting, Row, item_scores
from gsil_bench.report.runs import item_variance, run_level_comparison
from gsil_bench.report.stats import average_items, paired_comparison
from gsil_bench.report.study import Study


def matches_baseline(method: str, baseline: str) -> bool:
    """A baseline names a method label or its leading part: ``sft`` stands for the sweep's
    ``sft subsample=0.5`` rows as well (the data setting is matched separately)."""
    return method == baseline or method.startswith(baseline + " ")


def resolve_baseline(
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


def compare_with_baseline(
    rows: list[Row], columns: list[Column], baseline: str, notes: list[str]
) -> None:
    """Fill each cell's run-level and item-level comparison with the baseline row of the
    same data setting; the baseline row itself and the control row get none."""
    references = _references(rows, baseline, notes)
    for row in rows:
        reference = references.get(row.knobs)
        if row.is_baseline or row.is_control or reference is None:
            continue
        for column, cell in list(row.cells.items()):
            row.cells[column] = compare_cell(row, reference, column, cell)


def compare_cell(row: Row, reference: Row, column: Column, cell: Cell) -> Cell:
    """The cell with both tests of ``row`` minus ``reference`` in ``column``."""
    ours = average_items([item_scores(r, column) for r in row.records])
    theirs = average_items([item_scores(r, column) for r in reference.records])
    items = paired_comparison(ours, theirs)
    variance = item_variance(items.standard_error, items.n_items) if items is not None else None
    runs = run_level_comparison(
        row.seed_scores(column), reference.seed_scores(column), items=variance
    )
    return Cell(cell.summary, runs, items)


def _references(rows: list[Row], baseline: str, notes: list[str]) -> dict[KnobSetting, Row]:
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
    return references
