"""Experiment trackers: what a run writes to train_log.jsonl and its record, read back from
TensorBoard's event files (with TensorBoard's own reader) and from Trackio's local store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gsil_bench.backend import tracking
from gsil_bench.config import config_to_yaml, load_config
from gsil_bench.errors import UserError
from gsil_bench.experiment.recipe import run_experiment

TINY = str(Path(__file__).resolve().parents[1] / "fixtures" / "tiny_run.yaml")


def _config(tmp_path: Path, *overrides: str):
    return load_config(
        TINY, [f"output_dir={tmp_path}/run", f"cache_dir={tmp_path}/cache", *overrides]
    )


def _scalars(folder: Path) -> dict[str, dict[int, float]]:
    """Every scalar in the event files of ``folder``: {tag: {step: value}}."""
    from tensorboard.backend.event_processing.event_accumulator import (
        SCALARS,
        EventAccumulator,
    )

    events = EventAccumulator(str(folder), size_guidance={SCALARS: 0})  # 0: keep them all
    events.Reload()
    return {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}


def _numeric_metrics(benchmarks: dict) -> dict[str, float]:
    return {
        f"eval/{bench}/{metric}": float(value)
        for bench, result in benchmarks.items()
        for metric, value in result["metrics"].items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def test_tensorboard_events_equal_train_log_and_results(tmp_path):
    pytest.importorskip("tensorboard")
    record = run_experiment(_config(tmp_path, "report_to=tensorboard"))
    run_dir = Path(record.output_dir)
    rows = [
        json.loads(x) for x in (run_dir / "round-1" / "train_log.jsonl").read_text().splitlines()
    ]
    assert rows, "the tiny run logged no training step"
    scalars = _scalars(run_dir / "tensorboard")

    for key in ("loss", "reward/real", "reward/generated", "grad_norm", "lr", "tokens_per_s"):
        logged = scalars[f"train/{key}"]
        assert sorted(logged) == [row["step"] for row in rows]
        for row in rows:  # TensorBoard stores float32: equal to 7 significant digits
            assert logged[row["step"]] == pytest.approx(row[key], rel=1e-6, abs=1e-12), key
    train_keys = {f"train/{k}" for row in rows for k in row if k != "step"}
    assert {t for t in scalars if t.startswith("train/")} == train_keys

    final_step = rows[-1]["step"]
    expected = _numeric_metrics(record.benchmarks)
    assert expected and {t for t in scalars if t.startswith("eval/")} == set(expected)
    for tag, value in expected.items():
        assert scalars[tag] == {final_step: pytest.approx(value, rel=1e-6, abs=1e-12)}
    for key, value in record.diagnostics.items():
        assert scalars[f"diagnostics/{key}"][final_step] == pytest.approx(value, rel=1e-6)


def test_sweep_runs_are_grouped_by_study_and_method(tmp_path):
    """A sweep run (here a base-only control: evaluation, no training) lands in the study's
    TensorBoard folder under its method and seed, with the sweep's --report-to."""
    pytest.importorskip("tensorboard")
    from gsil_bench.study.storage import SweepPaths
    from gsil_bench.study.trial import run_or_reuse

    config = _config(tmp_path, "iterations=0", "seed=3")
    paths = SweepPaths(tmp_path / "results" / "mystudy", tmp_path / "runs" / "mystudy")
    fields = {"method": "gsil-logistic beta=1", "series": "x", "knobs": {}, "params": {}}
    with tracking.sweep_report_to(["tensorboard"]):
        record = run_or_reuse(config, fields, paths)
    assert tracking.SWEEP_REPORT_TO_ENV not in os.environ  # restored after the sweep
    folder = tmp_path / "runs" / "mystudy" / "tensorboard" / "gsil-logistic_beta=1" / "seed3"
    scalars = _scalars(folder)
    expected = _numeric_metrics(record.benchmarks)
    assert expected and {t for t in scalars if t.startswith("eval/")} == set(expected)
    assert all(set(scalars[tag]) == {0} for tag in expected)  # no training: step 0


def test_report_to_is_validated_and_not_part_of_the_run_identity(tmp_path):
    plain = _config(tmp_path)
    reported = _config(tmp_path, "report_to=tensorboard,mlflow")
    assert reported.report_to == ["tensorboard", "mlflow"]
    assert _config(tmp_path, "report_to=[wandb]").report_to == ["wandb"]
    # Where a run is reported does not change its result, its folder or a sweep's records.
    assert reported.fingerprint() == plain.fingerprint()
    assert config_to_yaml(reported) == config_to_yaml(plain)
    with pytest.raises(UserError, match="report_to"):
        _config(tmp_path, "report_to=tensorbord")


def test_missing_tracker_is_one_line_naming_the_extra_before_any_work(tmp_path, monkeypatch):
    real_find_spec = tracking.importlib.util.find_spec
    monkeypatch.setattr(
        tracking.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "wandb" else real_find_spec(name, *a),
    )
    with pytest.raises(UserError) as error:
        tracking.parse_report_to(["tensorboard,wandb"])
    assert str(error.value) == (
        '--report-to: wandb is not installed; install it with pip install "gsil-bench[wandb]"'
    )
    with pytest.raises(UserError, match="unknown tracker 'comet'"):
        tracking.parse_report_to(["comet"])
    with pytest.raises(UserError, match=r"gsil-bench\[wandb\]"):
        run_experiment(_config(tmp_path, "report_to=wandb"))
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()


def test_cli_report_to_is_checked_before_anything_runs(tmp_path):
    from typer.testing import CliRunner

    from gsil_bench.cli.app import app

    out = f"output_dir={tmp_path}/run"
    for args in (
        ["train", TINY, "--set", out, "--report-to", "tensorbord"],
        ["sweep", "quickstart", "--results-dir", str(tmp_path), "--report-to", "tensorboard,x"],
    ):
        result = CliRunner().invoke(app, args)
        assert isinstance(result.exception, UserError), result.output
        assert str(result.exception).startswith("--report-to: unknown tracker")
    assert list(tmp_path.iterdir()) == []


_READ_TRACKIO = """
import json, sys
from trackio.sqlite_storage import SQLiteStorage
print(json.dumps(SQLiteStorage.get_logs(sys.argv[1], sys.argv[2])))
"""


def test_trackio_local_mode_holds_the_train_log(tmp_path):
    """`gsil-bench train --report-to trackio` offline: Trackio's local SQLite store (read back
    with Trackio's own storage class) holds every train_log row at its step."""
    pytest.importorskip("trackio")
    env = {**os.environ, "TRACKIO_DIR": str(tmp_path / "trackio"), "HF_HUB_OFFLINE": "1"}
    env.update(OMP_NUM_THREADS="1")
    run_dir = tmp_path / "trackio-run"
    train = [
        sys.executable,
        "-m",
        "gsil_bench.cli.app",
        "train",
        TINY,
        "--report-to",
        "trackio",
        "--set",
        f"output_dir={run_dir}",
        "--set",
        f"cache_dir={tmp_path}/cache",
    ]
    done = subprocess.run(train, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    read = [sys.executable, "-c", _READ_TRACKIO, "gsil-bench", run_dir.name]
    out = subprocess.run(read, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    logs = json.loads(out.stdout)
    rows = [
        json.loads(x) for x in (run_dir / "round-1" / "train_log.jsonl").read_text().splitlines()
    ]
    assert rows, "the tiny run logged no training step"
    by_step = {entry["step"]: entry for entry in logs if "train/loss" in entry}
    assert sorted(by_step) == [row["step"] for row in rows]
    for row in rows:
        for key in ("loss", "reward/real", "reward/generated", "grad_norm", "lr"):
            assert by_step[row["step"]][f"train/{key}"] == pytest.approx(row[key], rel=1e-12)
    record = json.loads((run_dir / "result.json").read_text())
    final = [entry for entry in logs if any(k.startswith("eval/") for k in entry)]
    assert len(final) == 1 and final[0]["step"] == rows[-1]["step"]
    for tag, value in _numeric_metrics(record["benchmarks"]).items():
        assert final[0][tag] == pytest.approx(value, rel=1e-12)


class _Recorder:
    """A tracker that keeps what it is given (start/log/finish as accelerate's trackers)."""

    def __init__(self) -> None:
        self.logged: list[tuple[int, dict]] = []
        self.params: dict = {}
        self.finished = False

    def start(self) -> None: ...

    def store_init_configuration(self, values: dict) -> None:
        self.params = values

    def log(self, values: dict, step: int) -> None:
        self.logged.append((step, values))

    def finish(self) -> None:
        self.finished = True


def test_rounds_are_logged_apart_and_only_numbers_are_results(tmp_path, monkeypatch):
    recorder = _Recorder()
    monkeypatch.setattr(tracking, "_make_tracker", lambda name, labels: recorder)
    labels = tracking.RunLabels.for_run(tmp_path, loss="spin", seed=0)
    config = {"loss": {"name": "spin", "params": {"beta": 1.0}}, "eval": {"suites": ["mini"]}}
    run = tracking.Tracking.open(["tensorboard"], labels, config=config, rounds=2)
    flat = {"loss.name": "spin", "loss.params.beta": 1.0, "eval.suites": "['mini']"}
    assert recorder.params == flat  # dotted keys; a list as text (trackers take scalars)
    for index in (1, 2):
        log_row = run.train_logger(index)
        assert log_row is not None
        log_row({"step": 1, "loss": 0.5 * index, "lr": 1e-4})
    benchmarks = {"mini/math": {"metrics": {"accuracy": 0.25, "exact": True, "name": "x"}}}
    run.log_results(benchmarks, {"moved": 0.5}, step=7)
    run.close()
    assert recorder.logged == [
        (1, {"train/round1/loss": 0.5, "train/round1/lr": 1e-4}),
        (1, {"train/round2/loss": 1.0, "train/round2/lr": 1e-4}),
        (7, {"eval/mini/math/accuracy": 0.25, "diagnostics/moved": 0.5}),
    ]
    assert recorder.finished and run.trackers == []
    # No report_to: no trackers, and the trainer gets no callback.
    assert tracking.Tracking.open([], labels, config=config).train_logger(1) is None


def test_sweep_report_to_reaches_every_run_of_the_study(tmp_path):
    """`gsil-bench sweep --report-to tensorboard`: the control and each trial write TensorBoard
    files under the study, one folder per method and seed; the sweep spec is untouched."""
    pytest.importorskip("tensorboard")
    import yaml
    from typer.testing import CliRunner

    from gsil_bench.cli.app import app

    base = {**yaml.safe_load(Path(TINY).read_text()), "cache_dir": str(tmp_path / "cache")}
    spec = {"study": "tracked", "base": base, "methods": [{"loss": "sft"}], "seeds": [0]}
    path = tmp_path / "tracked.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    args = ["sweep", str(path), "--results-dir", str(tmp_path / "results")]
    args += ["--runs-dir", str(tmp_path / "runs"), "--report-to", "tensorboard"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert tracking.SWEEP_REPORT_TO_ENV not in os.environ
    folders = tmp_path / "runs" / "tracked" / "tensorboard"
    assert sorted(p.name for p in folders.iterdir()) == ["base", "sft"]
    records = {
        r["method"]: r
        for r in map(json.loads, map(Path.read_text, (tmp_path / "results").rglob("*-seed0.json")))
    }
    trained = _scalars(folders / "sft" / "seed0")
    steps = [row["step"] for row in records["sft"]["trajectory"]]
    assert steps and sorted(trained["train/loss"]) == steps
    for row in records["sft"]["trajectory"]:
        assert trained["train/loss"][row["step"]] == pytest.approx(row["loss"], rel=1e-6)
    control = _scalars(folders / "base" / "seed0")
    expected = _numeric_metrics(records["base"]["benchmarks"])
    assert expected and {t for t in control if t.startswith("eval/")} == set(expected)
    assert not any(t.startswith("train/") for t in control)  # the control trains nothing
