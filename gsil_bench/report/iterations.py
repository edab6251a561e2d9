"""The per-iteration table of runs evaluated every round (``eval.every_round``), in the layout
of SPIN's Table 3 (Chen et al. 2024, arXiv 2401.01335): per benchmark metric of the main table,
a row per method and a column per iteration, 0 (the base model) to T (the model after round
T). Each cell is the mean over seeds with the 95% Student-t interval, as in the main table.

SPIN numbers its iterations from 0 for the model after the first round (``SPIN iter0``); here
iteration t is the model after round t, so SPIN's ``iter t`` is our column t + 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gsil_bench.report.ranking import Column
from gsil_bench.report.stats import MeanInterval, mean_interval
from gsil_bench.report.table import Table

ITERATIONS_TITLE = "Per iteration (SPIN's Table 3 layout)"
ITERATIONS_NOTE = (
    "Runs with eval.every_round. Iteration 0: the base model; iteration t: the model after "
    "round t (SPIN's iter t-1). Each cell: the mean over seeds ± the half-width of the 95% "
    "Student-t interval; (n=1): a single seed, no interval; — : not evaluated."
)


@dataclass(frozen=True)
class IterationRow:
    label: str
    seeds: int  # runs of the row with per-iteration results
    cells: list[MeanInterval | None]  # iteration 0 .. T


@dataclass(frozen=True)
class IterationTable:
    column: Column
    rows: list[IterationRow]

    @property
    def iterations(self) -> int:
        """T: the table's columns are iterations 0 .. T."""
        return max(len(row.cells) for row in self.rows) - 1

    @property
    def headers(self) -> list[str]:
        return ["0 (base)", *[str(t) for t in range(1, self.iterations + 1)]]


def iteration_tables(table: Table) -> list[IterationTable]:
    """One table per column of the main table that some run with per-iteration results has;
    rows in the main table's order, each over the seeds whose runs have them."""
    per_row = []
    for row in table.rows:
        results = [r for record in row.records if (r := record.iteration_results()) is not None]
        if results and not row.is_control:
            per_row.append((row.label, results))
    tables = []
    for column in table.columns:
        rows = [_row(label, results, column) for label, results in per_row]
        rows = [row for row in rows if any(cell is not None for cell in row.cells)]
        if rows:
            tables.append(IterationTable(column, rows))
    return tables


def _row(label: str, results: list[list[dict[str, Any]]], column: Column) -> IterationRow:
    cells: list[MeanInterval | None] = []
    for iteration in range(max(len(r) for r in results)):
        values = [
            float(value)
            for run in results
            if iteration < len(run) and (value := _metric(run[iteration], column)) is not None
        ]
        cells.append(mean_interval(values) if values else None)
    return IterationRow(label, len(results), cells)


def _metric(results: dict[str, Any], column: Column) -> Any:
    return ((results.get(column.benchmark) or {}).get("metrics") or {}).get(column.metric)


def interval_text(summary: MeanInterval | None) -> str:
    if summary is None:
        return "—"
    if summary.half_width is None:
        return f"{summary.mean:.3f} (n=1)"
    return f"{summary.mean:.3f} ± {summary.half_width:.3f}"
