"""Sweeps: validation at load time, a tiny grid end to end, failures, recovery, workers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import optuna
import pytest
import yaml

from gsil_bench.errors import UserError
from gsil_bench.sweep import open_study, paths_for, recover_interrupted, run_sweep
from gsil_bench.sweep_spec import load_sweep

REPO = Path(__file__).resolve().parents[1]
TINY = yaml.safe_load((Path(__file__).parent / "fixtures" / "tiny_run.yaml").read_text())


def tiny_sweep(tmp_path, methods, **extra) -> Path:
    base = {**TINY, "cache_dir": str(tmp_path / "cache")}
    spec = {"study": "tiny", "base": base, "methods": methods, "seeds": [0], **extra}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "sweeps").glob("*.yaml")))
def test_shipped_sweeps_validate(name):
    spec = load_sweep(REPO / "sweeps" / f"{name}.yaml")
    assert spec.study == name and spec.methods


def test_quickstart_compares_the_papers_losses():
    spec = load_sweep(REPO / "sweeps" / "quickstart.yaml")
    losses = {m.loss for m in spec.methods}
    assert {
        "sft",
        "spin",
        "gsil-logistic",
        "gsil-brier",
        "gsil-hinge",
        "gsil-kliep",
        "gsil-lsif",
    } <= losses
    assert len(spec.seeds) >= 2


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.update(seed=[0]), r"unknown key 'seed' \(did you mean 'seeds'\?\)"),
        (
            lambda s: s["methods"].append({"loss": "gsil-logistc"}),
            r"methods\[1\].*(?i:did you mean)",
        ),
        (
            lambda s: s["methods"].append({"loss": "spin", "params": {"loss.params.bta": 1}}),
            r"methods\[1\] \(spin\).*no hyperparameter 'bta'",
        ),
        (lambda s: s["base"]["optim"].update(lrr=1), r"unknown key 'optim\.lrr'"),
        (lambda s: s.update(sampler="tpe"), r"trial budget"),
    ],
)
def test_typos_name_the_file_and_key(tmp_path, mutate, message):
    path = tiny_sweep(tmp_path, [{"loss": "sft"}])
    spec = yaml.safe_load(path.read_text())
    mutate(spec)
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(UserError, match=r"tiny\.yaml.*" + message):
        load_sweep(path)


def _table_rows(results: Path) -> dict[str, dict[str, str]]:
    with (results / "table.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    key = next(iter(rows[0]))
    return {row[key]: row for row in rows}


def test_grid_sweep_end_to_end_with_a_failing_trial(tmp_path):
    path = tiny_sweep(
        tmp_path,
        [
            {"loss": "sft"},
            {"loss": "gsil-logistic", "params": {"loss.params.beta": 1.0}},
            # exp(z) overflows at this scale: the trial fails, the sweep goes on.
            {"loss": "gsil-exponential", "params": {"loss.params.shift": 1.0e4}},
        ],
        baseline="sft",
    )
    out = run_sweep(path, results_dir=tmp_path / "results", runs_dir=tmp_path / "runs")
    assert len(list((out / "records").glob("*.json"))) == 2
    rows = _table_rows(out)
    assert any(k.startswith("sft") for k in rows) and any(
        k.startswith("gsil-logistic") for k in rows
    )
    summary = json.loads((out / "study.json").read_text())
    assert len(summary["failures"]) == 1
    assert "non-finite" in summary["failures"][0]["reason"]
    assert "gsil-exponential" in (out / "table.md").read_text()  # listed under failures
    assert (out / "manifest.json").exists()
    # Rerunning a finished sweep runs nothing new and keeps the table.
    before = (out / "table.csv").read_text()
    run_sweep(path, results_dir=tmp_path / "results", runs_dir=tmp_path / "runs")
    assert (out / "table.csv").read_text() == before
    study = open_study(
        load_sweep(path), paths_for(load_sweep(path), tmp_path / "results", tmp_path / "runs"), None
    )
    assert len(study.trials) == 3


def test_interrupted_trial_is_requeued(tmp_path):
    path = tiny_sweep(tmp_path, [{"loss": "sft"}])
    spec = load_sweep(path)
    study = open_study(spec, paths_for(spec, tmp_path / "results", tmp_path / "runs"), None)
    study.enqueue_trial({"point": 0, "method": 0})
    trial = study.ask()  # a worker that claimed the trial, then was SIGKILLed
    trial.set_user_attr("worker", {"host": __import__("socket").gethostname(), "pid": 2**22 + 7})
    assert recover_interrupted(study) == [trial.number]
    states = [t.state for t in study.get_trials()]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]


def test_one_at_a_time_grid_varies_each_knob_alone(tmp_path):
    from gsil_bench.sweep_spec import grid_points

    path = tiny_sweep(
        tmp_path,
        [{"loss": "sft"}],
        grid={"data.quality.subsample": [1.0, 0.5, 0.25], "data.quality.duplicate": [0.0, 0.5]},
        grid_mode="one-at-a-time",
    )
    settings = [values for _, values in grid_points(load_sweep(path))]
    clean = {"data.quality.subsample": 1.0, "data.quality.duplicate": 0.0}
    # The reference setting, then 2 more subsample values and 1 more duplicate value: 4, not 6.
    assert settings == [
        clean,
        {**clean, "data.quality.subsample": 0.5},
        {**clean, "data.quality.subsample": 0.25},
        {**clean, "data.quality.duplicate": 0.5},
    ]
