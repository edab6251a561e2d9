"""One trial's pieces: the point it runs, the record fields that place it, its objective; and
the base-model controls, one run per seed with ``iterations: 0`` outside the trials. For the
controls the experiment is replaced by a fake (no model is trained), so those tests check the
scheduling only; ``test_sweep.py`` runs the real base-only experiment end to end."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from gsil_bench.config import RunConfig
from gsil_bench.errors import UserError
from gsil_bench.record import RunRecord
from gsil_bench.report.objective import Objective
from gsil_bench.study.driver import run_sweep
from gsil_bench.study.spec import Method, SweepSpec, control_config, load_sweep
from gsil_bench.study.storage import open_study, paths_for
from gsil_bench.study.trial import choose, objective_values, run_controls, study_fields

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


# --------------------------------------------------------------------------- controls

REPO = Path(__file__).resolve().parents[2]
TINY = yaml.safe_load((REPO / "tests" / "fixtures" / "tiny_run.yaml").read_text())
NOISE = "data.quality.swap_rejected"


def sweep_file(tmp_path: Path, **extra) -> Path:
    spec = {
        "study": "ctl",
        "base": {**TINY, "cache_dir": str(tmp_path / "cache")},
        "methods": [{"loss": "sft"}, {"loss": "spin", "params": {"loss.params.beta": 1.0}}],
        "seeds": [0, 1],
        "grid": {NOISE: [0.0, 0.5]},
        "knobs": [NOISE],
        **extra,
    }
    path = tmp_path / "ctl.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


class FakeExperiment:
    """Stands in for ``run_experiment``: a record whose math accuracy is 0.3 for the base
    model and 0.5 for a trained run, plus 0.01 per seed; every call is logged."""

    def __init__(self, fail_base: bool = False) -> None:
        self.calls: list[RunConfig] = []
        self.fail_base = fail_base

    def __call__(self, config: RunConfig, **labels: object) -> RunRecord:
        self.calls.append(config)
        if config.iterations == 0 and self.fail_base:
            raise RuntimeError("base model\nunavailable")
        accuracy = (0.3 if config.iterations == 0 else 0.5) + 0.01 * config.seed
        items = [{"id": f"q{i}", "score": float(i < accuracy * 10)} for i in range(10)]
        benchmarks = {"mini/math": {"metrics": {"accuracy": accuracy}, "items": items}}
        return RunRecord(
            run_id=f"{config.loss.name}-{config.seed}",
            loss=config.loss.name,
            seed=config.seed,
            config=config.model_dump(mode="json"),
            benchmarks=benchmarks,
        )


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeExperiment:
    experiment = FakeExperiment()
    monkeypatch.setattr("gsil_bench.study.trial.run_experiment", experiment)
    return experiment


def test_control_config_is_the_base_config_untrained(tmp_path: Path) -> None:
    spec = load_sweep(sweep_file(tmp_path))
    assert spec.controls.base is True  # on unless the sweep file turns it off
    config = control_config(spec, 1, "here")
    assert config.iterations == 0 and config.seed == 1
    assert config.data.quality.swap_rejected == 0.0  # knobs change the data, not the base


def test_controls_run_once_per_seed_and_resume(tmp_path: Path, fake: FakeExperiment) -> None:
    spec = load_sweep(sweep_file(tmp_path))
    paths = paths_for(spec, tmp_path / "results", tmp_path / "runs")
    assert run_controls(spec, paths, "here") == []
    assert [(c.iterations, c.seed) for c in fake.calls] == [(0, 0), (0, 1)]
    records = [RunRecord.read(p) for p in sorted(paths.records.glob("*.json"))]
    assert [(r.method, r.series, r.seed) for r in records] == [
        ("base", "base", 0),
        ("base", "base", 1),
    ]
    assert all(r.knobs == {NOISE: 0.0} and r.params == {} for r in records)
    run_controls(spec, paths, "here")
    assert len(fake.calls) == 2  # finished seeds are not run again


def test_a_failed_control_is_recorded_and_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_sweep(sweep_file(tmp_path))
    paths = paths_for(spec, tmp_path / "results", tmp_path / "runs")
    monkeypatch.setattr("gsil_bench.study.trial.run_experiment", FakeExperiment(fail_base=True))
    failures = run_controls(spec, paths, "here")
    assert [f["seed"] for f in failures] == [0, 1]
    assert failures[0]["reason"] == "RuntimeError: base model"  # first line only
    stored = [json.loads(p.read_text()) for p in sorted(paths.records.glob("*.json"))]
    assert [s["status"] for s in stored] == ["failed", "failed"]
    healthy = FakeExperiment()
    monkeypatch.setattr("gsil_bench.study.trial.run_experiment", healthy)
    assert run_controls(spec, paths, "here") == []
    assert len(healthy.calls) == 2
    assert all(RunRecord.read(p).status == "ok" for p in paths.records.glob("*.json"))


def test_a_control_another_worker_runs_is_skipped(tmp_path: Path, fake: FakeExperiment) -> None:
    spec = load_sweep(sweep_file(tmp_path))
    paths = paths_for(spec, tmp_path / "results", tmp_path / "runs")
    # Another process holds seed 0's claim: this worker runs seed 1 only.
    paths.records.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; h = open(sys.argv[1], 'a');"
            " fcntl.flock(h, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)",
            str(paths.records / ".control-0.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert run_controls(spec, paths, "here") == []
    finally:
        holder.kill()
        holder.wait()
    assert [c.seed for c in fake.calls] == [1]
    run_controls(spec, paths, "here")  # the claim is gone: seed 0 runs now, seed 1 is done
    assert [c.seed for c in fake.calls] == [1, 0]


def test_controls_can_be_turned_off(tmp_path: Path, fake: FakeExperiment) -> None:
    spec = load_sweep(sweep_file(tmp_path, controls={"base": False}))
    assert run_controls(spec, paths_for(spec, tmp_path, tmp_path), "here") == []
    assert fake.calls == []


def test_the_label_base_is_reserved(tmp_path: Path) -> None:
    path = sweep_file(tmp_path, methods=[{"loss": "sft", "label": "base"}])
    with pytest.raises(UserError, match=r"ctl\.yaml: methods: the label 'base' is reserved"):
        load_sweep(path)


def test_controls_are_not_trials_nor_budget_nor_best(tmp_path: Path, fake: FakeExperiment) -> None:
    """A TPE sweep with a budget of 3 trials: 3 trials run (the 2 controls are extra), the
    table has the base row on top, and no Optuna trial is a control."""
    path = sweep_file(
        tmp_path,
        methods=[{"loss": "spin", "space": {"loss.params.beta": {"low": 0.5, "high": 2.0}}}],
        grid={},
        knobs=[],
        sampler="tpe",
        trials=3,
    )
    out = run_sweep(path, results_dir=tmp_path / "results", runs_dir=tmp_path / "runs")
    spec = load_sweep(path)
    study = open_study(spec, paths_for(spec, tmp_path / "results", tmp_path / "runs"), None)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(study.trials) == 3 and len(complete) == 3
    assert all(t.user_attrs["label"].startswith("spin") for t in study.trials)
    assert study.best_trial.user_attrs["label"] != "base"
    assert sum(c.iterations == 0 for c in fake.calls) == 2
    with (out / "table.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["method"] == "base" and rows[0]["best_of_loss"] == "0"
    assert float(rows[0]["mini/math/accuracy:mean"]) == pytest.approx(0.305)


def test_a_typo_under_controls_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"ctl\.yaml.*unknown key 'controls\.bsae'"):
        load_sweep(sweep_file(tmp_path, controls={"bsae": True}))
