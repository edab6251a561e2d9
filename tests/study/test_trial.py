"""One trial's pieces: the point it runs, the record fields that place it, its objective."""

from __future__ import annotations

import optuna
import pytest

from gsil_bench.record import RunRecord
from gsil_bench.report.objective import Objective
from gsil_bench.study.spec import Method, SweepSpec
from gsil_bench.study.trial import choose, objective_values, study_fields

KNOB, OTHER = "data.quality.subsample", "optim.lr"


def spec_of(**extra) -> SweepSpec:
    methods = [Method(loss="sft"), Method(loss="spin", params={"loss.params.beta": 1.0})]
    return SweepSpec(study="s", methods=methods, **extra)


def record(math: float, code: float, seed: int = 0) -> RunRecord:
    benchmarks = {
        "mini/math": {"metrics": {"accuracy": math}},
        "mini/code": {"metrics": {"pass@1": code}},
    }
    return RunRecord(run_id=f"r{seed}", loss="sft", seed=seed, benchmarks=benchmarks)


def test_study_fields_separate_the_knobs_from_the_series() -> None:
    spec = spec_of(grid={KNOB: [1.0, 0.5], OTHER: [1e-4]}, knobs=[KNOB])
    fields = study_fields(spec, spec.methods[1], {KNOB: 0.5, OTHER: 1e-4})
    assert fields == {
        "method": "spin beta=1 subsample=0.5 lr=0.0001",
        # Only the declared knobs leave the series: a grid key that is not a knob stays in it.
        "series": "spin beta=1 lr=0.0001",
        "knobs": {KNOB: 0.5},
        "params": {"loss.params.beta": 1.0, KNOB: 0.5, OTHER: 1e-4},
    }


def test_grid_trial_runs_its_enqueued_point() -> None:
    spec = spec_of(grid={KNOB: [1.0, 0.5]})
    study = optuna.create_study()
    study.enqueue_trial({"point": 3, "method": 1})
    assert choose(study.ask(), spec) == (1, {KNOB: 0.5})  # points: sft x 2, then spin x 2


def test_objective_values_weight_seed_means() -> None:
    """Seeds (math, code) = (0.5, 0.25), (0.75, 0.25): math mean 0.625, code mean 0.25,
    mean of primaries per seed 0.375 and 0.5 -> 0.4375.
    0.5 * 0.625 + 2 * 0.25 = 0.8125; extra objective: the mean, 0.4375."""
    records = [record(0.5, 0.25, 0), record(0.75, 0.25, 1)]
    objective = Objective(metrics={"mini/math/accuracy": 0.5, "mini/code": 2.0}, extra=["mean"])
    assert objective_values(objective, records) == pytest.approx([0.8125, 0.4375])
    assert objective_values(Objective(), records) == pytest.approx([0.4375])
