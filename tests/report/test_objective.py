"""The study objective: one parser for study.json, one metric-name rule for sweep and report."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gsil_bench.errors import UserError
from gsil_bench.report.objective import Objective, metric_value, parse_objective, resolve_metric
from gsil_bench.report.write import write_report

STRONG, WEAK = "gsil-logistic beta=1", "gsil-logistic beta=3"
RESULTS = {
    "mini/math": {"metrics": {"accuracy": 0.5, "format": 0.9}, "primary": "accuracy"},
    "mini/code": {"metrics": {"pass@1": 0.25}},  # an older record: the first key is primary
}


@pytest.mark.parametrize(
    ("objective", "best", "described"),
    [
        ({"metrics": {"mean": 1.0}, "direction": "maximize"}, STRONG, "the mean of the"),
        ({"metrics": {"mini/code/pass@1": 1.0}, "direction": "minimize"}, WEAK, "pass@1 (min"),
        ({"metrics": {"mini/math/accuracy": 0.5, "mini/code": 0.5}}, STRONG, "0.5 × mini/code"),
        ("mini/math:accuracy", STRONG, "by the sweep's objective, mini/math accuracy"),
    ],
)
def test_best_configuration_follows_the_sweep_objective(
    tmp_path: Path, kit: SimpleNamespace, objective: Any, best: str, described: str
) -> None:
    info = kit.MAIN_INFO | {"objective": objective}
    folder = kit.write(tmp_path / "s", kit.main_records(), info)
    markdown = write_report(folder, paper_dir=tmp_path)["table.md"].read_text(encoding="utf-8")
    starred = [line for line in kit.table_lines(markdown) if "★" in line]
    assert len(starred) == 1 and starred[0].startswith(f"| {best} ★")
    assert described in markdown


def test_unknown_objective_metric_is_a_note(tmp_path: Path, kit: SimpleNamespace) -> None:
    info = kit.MAIN_INFO | {"objective": {"metrics": {"mini/chat/score": 1.0}}}
    folder = kit.write(tmp_path / "s", kit.main_records(), info)
    markdown = write_report(folder, paper_dir=tmp_path)["table.md"].read_text(encoding="utf-8")
    assert "★" not in markdown
    assert "objective metric 'mini/chat/score' is not a column" in markdown


@pytest.mark.parametrize(
    ("raw", "metrics", "direction"),
    [
        (Objective().model_dump(), {"mean": 1.0}, "maximize"),  # what the sweep writes
        ("mini/math", {"mini/math": 1.0}, "maximize"),
        ({"metric": "mean", "directions": ["minimize"]}, {"mean": 1.0}, "minimize"),
        ({"metrics": ["a/x", "b/y"], "directions": ["maximize", "minimize"]}, {"a/x": 1.0}, "max"),
        ({"direction": "Minimise"}, {}, "minimize"),
        (None, {}, "maximize"),
    ],
)
def test_parse_objective_reads_every_spelling(raw: Any, metrics: dict, direction: str) -> None:
    objective = parse_objective(raw)
    assert objective.metrics == metrics
    assert objective.direction.startswith(direction)


def test_resolve_metric_spellings() -> None:
    available = {"mini/math": ["accuracy", "format"], "mini/code": ["pass@1"]}
    assert resolve_metric("mini/math", available) == ("mini/math", "accuracy")  # primary
    assert resolve_metric("mini/math/format", available) == ("mini/math", "format")
    assert resolve_metric("mini/code:pass@1", available) == ("mini/code", "pass@1")
    assert resolve_metric("mini/chat/score", available) is None
    assert resolve_metric("mini", available) is None


def test_metric_value_of_one_run() -> None:
    """mean = (0.5 + 0.25) / 2 over the primary metrics; a named metric is read as is."""
    assert metric_value(RESULTS, "mean") == pytest.approx(0.375)
    assert metric_value(RESULTS, "mini/math/format") == 0.9
    assert metric_value(RESULTS, "mini/math") == 0.5
    assert metric_value(RESULTS, "mini/code:pass@1") == 0.25
    with pytest.raises(UserError, match=r"'mini/chat/score' is not in the results \(\['mini/c"):
        metric_value(RESULTS, "mini/chat/score")
    with pytest.raises(UserError, match="'mean' needs at least one benchmark"):
        metric_value({}, "mean")
