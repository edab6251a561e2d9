"""The objective of a study: which metrics it optimises, with what weights, in which direction.

One concept for the sweep and the report. A sweep file's ``objective:`` is an :class:`Objective`;
the sweep writes it into ``study.json`` and optimises, per trial, the weighted sum of the metrics'
means over seeds (each run's value from :func:`metric_value`); the report reads it back with
:func:`parse_objective` and marks each loss's best row by the same sum of its seed means.

A metric name means the same everywhere because it is resolved in one place,
:func:`resolve_metric`:

- ``mean``: the mean of every benchmark's primary metric;
- ``benchmark/metric`` or ``benchmark:metric``: that metric of that benchmark;
- a bare ``benchmark``: its primary metric.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gsil_bench.errors import UserError
from gsil_bench.evaluation.result import primary_metric
from gsil_bench.report.stats import mean

MEAN = "mean"
Direction = Literal["maximize", "minimize"]


class Objective(BaseModel):
    """``metrics`` maps a metric name (see the module docstring) to a weight; the weighted sum
    is optimised. ``extra`` adds further objectives for multi-objective studies (each a metric
    name; pruning is off then). Read back from ``study.json``, ``metrics`` may be empty: the
    study named none, and the report ranks by its first column."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metrics: dict[str, float] = Field(default_factory=lambda: {MEAN: 1.0})
    direction: Direction = "maximize"
    extra: list[str] = Field(default_factory=list)
    extra_directions: list[Direction] = Field(default_factory=list)

    @property
    def minimize(self) -> bool:
        return self.direction == "minimize"


def parse_objective(raw: Any) -> Objective:
    """The objective as ``study.json`` stores it (``Objective.model_dump()``), or in the
    spellings older studies used: a bare metric name, a list of names (the first is the primary
    objective; later ones were extra objectives), a single ``metric``, a ``directions`` list.
    Anything else (no objective at all) gives an objective with no metrics."""
    if isinstance(raw, str):
        return Objective(metrics={raw: 1.0})
    if not isinstance(raw, dict):
        return Objective(metrics={})
    direction = raw.get("direction")
    if direction is None:
        directions = raw.get("directions") or ["maximize"]
        direction = directions[0] if isinstance(directions, list) else directions
    named = raw.get("metrics", raw.get("metric"))
    if isinstance(named, dict):
        metrics = {str(name): float(weight) for name, weight in named.items()}
    elif isinstance(named, list):
        metrics = {str(named[0]): 1.0} if named else {}
    elif named is not None:
        metrics = {str(named): 1.0}
    else:
        metrics = {}
    # "min", "Minimise", ...: anything starting with "min" minimises, as Optuna's users write it.
    minimize = str(direction).lower().startswith("min")
    return Objective(metrics=metrics, direction="minimize" if minimize else "maximize")


def resolve_metric(name: str, available: Mapping[str, Sequence[str]]) -> tuple[str, str] | None:
    """The (benchmark, metric) that ``name`` stands for, or None when nothing matches.

    ``available`` maps each benchmark to its metric names, primary first. Benchmarks are tried
    in sorted order, so the answer does not depend on the order results were recorded in.
    ``mean`` is not a single metric; callers handle it before asking.
    """
    for benchmark in sorted(available):
        metrics = list(available[benchmark])
        if name == benchmark and metrics:
            return benchmark, metrics[0]
        for metric in metrics:
            if name in (f"{benchmark}/{metric}", f"{benchmark}:{metric}"):
                return benchmark, metric
    return None


def metric_value(benchmarks: Mapping[str, Mapping[str, Any]], name: str) -> float:
    """The value of one objective metric in one run's benchmark results (``RunRecord.benchmarks``);
    a metric the run does not have is a UserError naming it."""
    if name == MEAN:
        primaries = [
            result["metrics"][primary_metric(dict(result))] for result in benchmarks.values()
        ]
        if not primaries:
            raise UserError("objective 'mean' needs at least one benchmark in eval.suites")
        return mean(primaries)
    available = {
        benchmark: [primary_metric(dict(result)), *result["metrics"]]
        for benchmark, result in benchmarks.items()
    }
    found = resolve_metric(name, available)
    if found is None:
        raise UserError(f"objective metric {name!r} is not in the results ({sorted(benchmarks)})")
    benchmark, metric = found
    return float(benchmarks[benchmark]["metrics"][metric])
