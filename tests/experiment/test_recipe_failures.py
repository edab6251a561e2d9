"""A run that fails leaves a failed record in its folder (reason, stage) and is tried again;
``gsil-bench train`` says so in one line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gsil_bench.config import load_config
from gsil_bench.errors import NonFiniteLossError, StalledTrainingError, UserError
from gsil_bench.experiment.recipe import run_experiment
from gsil_bench.record import RunRecord

TINY = str(Path(__file__).parents[1] / "fixtures" / "tiny_run.yaml")


def _config(tmp_path, *overrides):
    return load_config(
        TINY,
        [f"output_dir={tmp_path}/run", f"cache_dir={tmp_path}/cache", "eval.suites=[]", *overrides],
    )


def test_a_run_that_fails_in_training_writes_a_failed_record(tmp_path):
    config = _config(tmp_path, "loss.name=gsil-exponential", "loss.params.shift=1e4")
    with pytest.raises(NonFiniteLossError):
        run_experiment(config)
    record = RunRecord.read(tmp_path / "run" / "result.json")
    assert (record.status, record.stage, record.loss, record.seed) == (
        "failed",
        "training",
        "gsil-exponential",
        0,
    )
    assert record.reason.startswith("NonFiniteLossError: loss 'gsil-exponential' became non-finite")
    assert record.fingerprints.config == config.fingerprint()
    assert record.hparams == {"beta": 1.0, "shift": 1e4} and record.model_path == ""
    # Not a finished run: the same config runs (and fails) again rather than returning it.
    with pytest.raises(NonFiniteLossError):
        run_experiment(config)


def test_a_run_that_cannot_learn_names_its_stage_and_fails_the_train_command(
    tmp_path, monkeypatch, capsys
):
    from gsil_bench.cli import app

    # s(100)**2 = 1 exactly with a zero gradient: the loss never moves the weights.
    args = ["loss.name=gsil-brier", "loss.params.shift=100"]
    argv = ["gsil-bench", "train", TINY]
    for item in [
        f"output_dir={tmp_path}/run",
        f"cache_dir={tmp_path}/cache",
        "eval.suites=[]",
        *args,
    ]:
        argv += ["--set", item]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_:
        app.main()
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()  # progress lines, then the error
    assert lines[-1].startswith("error: loss 'gsil-brier' cannot learn: over its first 3")
    assert lines[-1].endswith("and optim.lr")  # one line
    record = RunRecord.read(tmp_path / "run" / "result.json")
    assert (record.status, record.stage) == ("failed", "training")
    assert record.reason.startswith(StalledTrainingError.__name__)


def test_a_run_that_fails_before_training_records_its_stage(tmp_path):
    config = _config(tmp_path, f"data.source={tmp_path}/missing.jsonl")
    with pytest.raises(UserError, match="missing.jsonl"):
        run_experiment(config)
    record = RunRecord.read(tmp_path / "run" / "result.json")
    assert (record.status, record.stage) == ("failed", "data")
    assert record.reason.startswith("UserError: ") and "missing.jsonl" in record.reason
