"""Sweeps end to end: a tiny grid with a failing trial, rerun, and recovery of a killed trial."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import optuna
import yaml

from gsil_bench.record import RunRecord
from gsil_bench.study.driver import run_sweep
from gsil_bench.study.spec import load_sweep
from gsil_bench.study.storage import open_study, paths_for, recover_interrupted


def _table_rows(results: Path) -> dict[str, dict[str, str]]:
    with (results / "table.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    key = next(iter(rows[0]))
    return {row[key]: row for row in rows}


def test_grid_sweep_end_to_end_with_a_failing_trial(tiny_sweep, tmp_path):
    path = tiny_sweep(
        [
            {"loss": "sft"},
            {"loss": "gsil-logistic", "params": {"loss.params.beta": 1.0}},
            # exp(z) overflows at this scale: the trial fails, the sweep goes on.
            {"loss": "gsil-exponential", "params": {"loss.params.shift": 1.0e4}},
        ],
        baseline="sft",
    )
    out = run_sweep(path, results_dir=tmp_path / "results", runs_dir=tmp_path / "runs")
    # Two trials' records and the base-model control's (controls: {base: true} by default).
    assert len(list((out / "records").glob("*.json"))) == 3
    rows = _table_rows(out)
    assert next(iter(rows)) == "base"  # the control row on top
    assert any(k.startswith("sft") for k in rows) and any(
        k.startswith("gsil-logistic") for k in rows
    )
    summary = json.loads((out / "study.json").read_text())
    assert len(summary["failures"]) == 1
    assert "non-finite" in summary["failures"][0]["reason"]
    assert "gsil-exponential" in (out / "table.md").read_text()  # listed under failures
    assert (out / "manifest.json").exists()
    # Records are RunRecords placed in the study by their fields, named by config and seed.
    records = {p.name: RunRecord.read(p) for p in (out / "records").glob("*.json")}
    assert sorted(r.method for r in records.values()) == ["base", "gsil-logistic beta=1", "sft"]
    for name, record in records.items():
        assert name == f"{record.config_id}-seed0.json"
        assert record.series == record.method and record.knobs == {}
    base = next(r for r in records.values() if r.method == "base")
    assert base.config["iterations"] == 0 and base.rounds == []
    # Rerunning the sweep tries the failed configuration again (it fails the same way) and
    # nothing else; the table is unchanged and the failure listed once.
    before = (out / "table.csv").read_text()
    run_sweep(path, results_dir=tmp_path / "results", runs_dir=tmp_path / "runs")
    assert (out / "table.csv").read_text() == before
    study = open_study(
        load_sweep(path), paths_for(load_sweep(path), tmp_path / "results", tmp_path / "runs"), None
    )
    states = [(t.params["point"], t.state.name) for t in study.trials]
    # 3 trials and the retry of point 2; the control is not a trial.
    assert states == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "FAIL"), (2, "FAIL")]
    assert len(json.loads((out / "study.json").read_text())["failures"]) == 1


def test_interrupted_trial_is_requeued(tiny_sweep, tmp_path):
    path = tiny_sweep([{"loss": "sft"}])
    spec = load_sweep(path)
    study = open_study(spec, paths_for(spec, tmp_path / "results", tmp_path / "runs"), None)
    study.enqueue_trial({"point": 0, "method": 0})
    trial = study.ask()  # a worker that claimed the trial, then was SIGKILLed
    trial.set_user_attr("worker", {"host": __import__("socket").gethostname(), "pid": 2**22 + 7})
    assert recover_interrupted(study) == [trial.number]
    states = [t.state for t in study.get_trials()]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]


def test_a_sweep_whose_trials_all_fail_leaves_the_study_as_it_was(tiny_sweep, tmp_path):
    import pytest

    from gsil_bench.errors import UserError

    results = tmp_path / "results"
    earlier = results / "tiny"
    earlier.mkdir(parents=True)
    # What an earlier, finished sweep of the same study left behind.
    files = {"table.csv": "method,seeds\nsft,0\n", "study.json": "{}", "manifest.json": "{}"}
    for name, text in files.items():
        (earlier / name).write_text(text)
    path = tiny_sweep(
        # exp(z) overflows at this shift: every trial fails.
        [{"loss": "gsil-exponential", "params": {"loss.params.shift": 1.0e4}}],
        controls={"base": False},
    )
    with pytest.raises(UserError, match=r"no trial finished \(1 failed; the first: .*non-finite"):
        run_sweep(path, results_dir=results, runs_dir=tmp_path / "runs")
    for name, text in files.items():
        assert (earlier / name).read_text() == text


def test_a_study_name_is_a_name_not_a_path(tiny_sweep, tmp_path):
    import pytest

    from gsil_bench.errors import UserError

    for bad in ("../../etc", "a/b", "..", "quick start"):
        path = tiny_sweep([{"loss": "sft"}])
        spec = yaml.safe_load(path.read_text())
        path.write_text(yaml.safe_dump({**spec, "study": bad}))
        with pytest.raises(UserError, match=r"tiny\.yaml: key 'study': .*not a study name"):
            load_sweep(path)
