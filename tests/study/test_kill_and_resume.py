"""SIGKILL at an arbitrary moment, rerun the same command: the same final result."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CLI = [sys.executable, "-m", "gsil_bench.cli.app"]


def _run(args, cwd, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        CLI + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, **kw
    )


def _kill_when(args, cwd, ready, timeout=300):
    """Start the command, SIGKILL it as soon as ``ready()`` holds (or it exits)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        CLI + args,
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.05)
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return killed


@pytest.mark.slow
def test_train_killed_mid_training_resumes_to_the_same_model(tmp_path):
    common = [
        str(FIXTURES / "tiny_run.yaml"),
        "--set",
        "eval.suites=[]",
        "--set",
        "optim.epochs=4",
        "--set",
        f"cache_dir={tmp_path}/cache",
    ]
    straight = _run(["train", *common, "--set", f"output_dir={tmp_path}/straight"], tmp_path)
    assert straight.returncode == 0, straight.stderr
    log = tmp_path / "killed" / "round-1" / "train_log.jsonl"

    def mid_training():
        return log.exists() and len(log.read_text().splitlines()) >= 5

    killed_args = ["train", *common, "--set", f"output_dir={tmp_path}/killed"]
    assert _kill_when(killed_args, tmp_path, mid_training), "run ended before it could be killed"
    assert not (tmp_path / "killed" / "result.json").exists()
    resumed = _run(killed_args, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((tmp_path / "straight" / "result.json").read_text())
    b = json.loads((tmp_path / "killed" / "result.json").read_text())
    assert b["rounds"][0]["resumed_from"] > 0
    assert a["fingerprints"]["final_model"] == b["fingerprints"]["final_model"]


def _sweep_file(
    tmp_path: Path, name: str, *, controls: bool = True, seeds: tuple[int, ...] = (0, 1)
) -> Path:
    base = yaml.safe_load((FIXTURES / "tiny_run.yaml").read_text())
    base["cache_dir"] = str(tmp_path / "cache")
    spec = {
        "study": name,
        "base": base,
        "seeds": list(seeds),
        "baseline": "sft",
        "methods": [
            {"loss": "sft"},
            {"loss": "spin", "params": {"loss.params.beta": 1.0}},
            {"loss": "gsil-hinge", "params": {"loss.params.beta": 1.0}},
        ],
        "controls": {"base": controls},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _metrics(csv_path: Path) -> list[dict[str, str]]:
    with csv_path.open() as fh:
        return sorted(csv.DictReader(fh), key=lambda row: json.dumps(row, sort_keys=True))


@pytest.mark.slow
def test_sweep_killed_and_rerun_gives_the_same_table(tmp_path):
    straight = _run(
        ["sweep", str(_sweep_file(tmp_path, "s")), "--results-dir", "res", "--runs-dir", "runs"],
        tmp_path,
    )
    assert straight.returncode == 0, straight.stderr
    sweep = str(_sweep_file(tmp_path, "k"))
    records = tmp_path / "res" / "k" / "records"

    def some_done():
        return records.exists() and len(list(records.glob("*.json"))) >= 3

    args = ["sweep", sweep, "--results-dir", "res", "--runs-dir", "runs"]
    assert _kill_when(args, tmp_path, some_done), "sweep ended before it could be killed"
    rerun = _run(args, tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert len(list(records.glob("*.json"))) == 8  # 3 methods and the base control, 2 seeds
    assert _metrics(tmp_path / "res" / "k" / "table.csv") == _metrics(
        tmp_path / "res" / "s" / "table.csv"
    )


@pytest.mark.slow
def test_two_workers_share_a_study_without_duplicates(tmp_path):
    import optuna

    from gsil_bench.study.driver import run_sweep
    from gsil_bench.study.spec import load_sweep
    from gsil_bench.study.storage import open_study, paths_for

    # Without the base-model controls: they run first in the starting process and warm the
    # base-model cache, after which the tiny trials are over before a spawned worker has
    # even imported torch. This test is about trials shared by workers; four seeds make each
    # trial long enough that the spawned worker (a second or two to start) is there to claim
    # one before the starting process has run them all.
    path = _sweep_file(tmp_path, "w", controls=False, seeds=(0, 1, 2, 3))
    run_sweep(path, results_dir=tmp_path / "res", runs_dir=tmp_path / "runs", workers=2)
    spec = load_sweep(path)
    study = open_study(spec, paths_for(spec, tmp_path / "res", tmp_path / "runs"), None)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.params["point"] for t in complete) == [0, 1, 2]
    workers = {t.user_attrs["worker"]["pid"] for t in complete}
    assert len(workers) == 2  # both processes took trials
    assert len(list((tmp_path / "res" / "w" / "records").glob("*.json"))) == 12
