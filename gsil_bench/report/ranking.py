"""Which row is each loss's best (★): the study's objective, over rows measured alike.

A row competes only when it ran every seed of the study. A trial pruned after one seed (or one
whose other seeds failed) is shown, marked partial, and never starred: its mean is over other
seeds than its rivals', so comparing them mixes the configuration's effect with the seeds'.
The base-model control row never competes.
"""

from __future__ import annotations

from dataclasses import dataclass

from gsil_bench.report.objective import MEAN, Objective, resolve_metric
from gsil_bench.report.stats import mean


@dataclass(frozen=True, order=True)
class Column:
    """A benchmark and a metric shown for it: its primary one (the first in ``metrics``) or
    the continuous metric the benchmark names beside it (``BenchmarkResult.continuous``)."""

    benchmark: str
    metric: str
    primary: bool = True

    @property
    def header(self) -> str:
        return f"{self.benchmark} {self.metric}"

    @property
    def key(self) -> str:
        """``benchmark/metric``: the prefix of its CSV columns."""
        return f"{self.benchmark}/{self.metric}"


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
            # "mean" is the mean of the primary metrics, as the sweep's objective computes it.
            needed = [c for c in columns if c.primary] if column is None else [column]
            if not needed or any(c not in means for c in needed):
                return None
            total += weight * mean([means[c] for c in needed])
        return total


def rank_by(objective: Objective, columns: list[Column]) -> Ranking:
    """Match the objective's metric names to columns; an objective naming none: the first."""
    if not objective.metrics:
        return Ranking(((columns[0], 1.0),) if columns else (), objective.direction)
    available: dict[str, list[str]] = {}
    for column in sorted(columns, key=lambda c: not c.primary):  # primary metrics first
        available.setdefault(column.benchmark, []).append(column.metric)
    terms: list[tuple[Column | None, float]] = []
    for name, weight in objective.metrics.items():
        if name == MEAN:
            terms.append((None, weight))
            continue
        found = resolve_metric(name, available)
        if found is None:
            return Ranking((), objective.direction, unresolved=name)
        benchmark, metric = found
        primary = available[benchmark][0] == metric
        terms.append((Column(benchmark, metric, primary), weight))
    return Ranking(tuple(terms), objective.direction)


def best_of_group(candidates: list[tuple[float | None, bool]], ranking: Ranking) -> int | None:
    """Index of the best of one loss's rows at one data setting, or None.

    ``candidates``: per row (in table order), its objective score and whether it ran every seed
    of the study. Stars need a choice (two rows or more) and go to a complete row only; of
    equal scores the first wins, and rows are sorted, so ties break stably.
    """
    sign = -1.0 if ranking.minimize else 1.0
    scored = [
        (sign * score, index)
        for index, (score, complete) in enumerate(candidates)
        if score is not None and complete
    ]
    if len(candidates) < 2 or not scored:
        return None
    best = max(scored, key=lambda pair: (pair[0], -pair[1]))
    return best[1]
