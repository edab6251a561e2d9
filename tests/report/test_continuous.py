"""A benchmark's continuous metric (e.g. the reference answer's log-likelihood) is tabled beside
its primary one, tested on its own per-item values, and left out of the "mean" objective."""

from __future__ import annotations

import pytest

from gsil_bench.report.study import load_study
from gsil_bench.report.table import build_table

ITEMS = ["m0", "m1", "m2", "m3"]


def _record(method: str, seed: int, solved: int, logps: list[float]) -> dict:
    items = [
        {"id": item, "score": float(i < solved), "ref_logp": logp}
        for i, (item, logp) in enumerate(zip(ITEMS, logps, strict=True))
    ]
    result = {
        "benchmark": "mini/math",
        "metrics": {"accuracy": solved / 4, "ref_logp": sum(logps) / 4},
        "items": items,
        "continuous": "ref_logp",
    }
    return {
        "run_id": f"{method}-{seed}",
        "method": method,
        "loss": method,
        "seed": seed,
        "benchmarks": {"mini/math": result},
    }


def test_continuous_column_is_tabled_and_tested_on_its_own_items(kit, tmp_path):
    # sft: accuracy 0.5 on every seed; ref_logp -2.0, -2.1, -1.9 (mean -2.0).
    # spin: accuracy 0.25, 0.5, 0.25; ref_logp -1.0 everywhere: per-seed differences +1.0,
    # +1.1, +0.9 over sft.
    records = [
        _record("sft", 0, 2, [-2.0] * 4),
        _record("sft", 1, 2, [-2.1] * 4),
        _record("sft", 2, 2, [-1.9] * 4),
        _record("spin", 0, 1, [-1.0] * 4),
        _record("spin", 1, 2, [-1.0] * 4),
        _record("spin", 2, 1, [-1.0] * 4),
    ]
    info = {"baseline": "sft", "seeds": [0, 1, 2], "objective": {"metrics": {"mean": 1.0}}}
    table = build_table(load_study(kit.write(tmp_path / "s", records, info)))
    assert [(c.benchmark, c.metric, c.primary) for c in table.columns] == [
        ("mini/math", "accuracy", True),
        ("mini/math", "ref_logp", False),
    ]
    spin = next(row for row in table.rows if row.method == "spin")
    accuracy, logp = table.columns
    assert spin.cells[logp].summary.mean == pytest.approx(-1.0)
    assert spin.cells[accuracy].summary.mean == pytest.approx(1 / 3)
    comparison = spin.cells[logp].comparison
    assert comparison is not None and comparison.difference == pytest.approx(1.0)
    # The item-level test reads the items' ref_logp (seed-averaged: -1.0 vs -2.0 on all four
    # items), not their 0/1 scores.
    items = spin.cells[logp].item_comparison
    assert items is not None and items.difference == pytest.approx(1.0)
    # "mean" ranks on the primary metrics only: the log-likelihood column does not enter.
    assert table.ranking.score({accuracy: 0.5, logp: -2.0}, table.columns) == pytest.approx(0.5)
