"""The sweep's objective, read back from ``study.json``, to mark each loss's best configuration.

The sweep writes ``{"metrics": {name: weight, ...}, "direction": "maximize", ...}`` where a
name is ``benchmark/metric`` or ``mean`` (the mean of every benchmark's primary metric), and
optimises the weighted sum; the report ranks rows by the same sum of their seed means. Also
read: a bare string, a list of names (the first is the primary objective; later ones are
extra objectives of a multi-objective study), a ``directions`` list, and ``benchmark`` or
``benchmark:metric`` spellings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gsil_bench.report_table import Column

MEAN = "mean"


@dataclass(frozen=True)
class Objective:
    """Weighted terms; a term's column ``None`` stands for the mean over all columns.

    ``unresolved`` names a metric the table has no column for; then nothing is ranked.
    """

    terms: tuple[tuple[Column | None, float], ...]
    direction: str
    unresolved: str | None = None

    @property
    def minimize(self) -> bool:
        return self.direction.startswith("min")

    def description(self) -> str:
        names = [
            "the mean of the benchmark metrics" if col is None else col.header
            for col, _ in self.terms
        ]
        if len(self.terms) == 1 and self.terms[0][1] == 1.0:
            return names[0]
        return " + ".join(f"{w:g} × {n}" for (_, w), n in zip(self.terms, names, strict=True))

    def score(self, means: Mapping[Column, float], columns: Sequence[Column]) -> float | None:
        """The objective of one row from its seed means; None if a needed metric is missing."""
        if not self.terms:
            return None
        total = 0.0
        for column, weight in self.terms:
            needed = list(columns) if column is None else [column]
            if not needed or any(c not in means for c in needed):
                return None
            total += weight * sum(means[c] for c in needed) / len(needed)
        return total


def parse_objective(spec: Any, columns: Sequence[Column]) -> Objective:
    """Match the objective's metric names to table columns; no objective: the first column."""
    weights, direction = _weights_and_direction(spec)
    if not weights:
        first = ((columns[0], 1.0),) if columns else ()
        return Objective(first, direction)
    terms: list[tuple[Column | None, float]] = []
    for name, weight in weights:
        if name == MEAN:
            terms.append((None, weight))
            continue
        column = _find_column(name, columns)
        if column is None:
            return Objective((), direction, unresolved=name)
        terms.append((column, weight))
    return Objective(tuple(terms), direction)


def _find_column(name: str, columns: Sequence[Column]) -> Column | None:
    for column in columns:
        spellings = (
            column.benchmark,
            f"{column.benchmark}/{column.metric}",
            f"{column.benchmark}:{column.metric}",
        )
        if name in spellings:
            return column
    return None


def _weights_and_direction(spec: Any) -> tuple[list[tuple[str, float]], str]:
    if isinstance(spec, str):
        return [(spec, 1.0)], "maximize"
    if not isinstance(spec, dict):
        return [], "maximize"
    direction = spec.get("direction")
    if direction is None:
        directions = spec.get("directions") or ["maximize"]
        direction = directions[0] if isinstance(directions, list) else directions
    metrics = spec.get("metrics", spec.get("metric"))
    if isinstance(metrics, dict):
        weights = [(str(name), float(weight)) for name, weight in metrics.items()]
    elif isinstance(metrics, list):
        weights = [(str(metrics[0]), 1.0)] if metrics else []
    elif metrics is not None:
        weights = [(str(metrics), 1.0)]
    else:
        weights = []
    return weights, str(direction).lower()
