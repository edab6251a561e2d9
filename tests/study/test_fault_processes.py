"""Faults that need processes of their own: a trial over its memory limit, SIGTERM in the
middle of a sweep, two sweeps of one study started at once."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest
import yaml

from gsil_bench.record import RunRecord
from gsil_bench.study.spec import load_sweep
from gsil_bench.study.storage import open_study, paths_for

CLI = [sys.executable, "-m", "gsil_bench.cli.app"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _sweep_args(path: Path, results: str = "res", runs: str = "runs") -> list[str]:
    return ["sweep", str(path), "--results-dir", results, "--runs-dir", runs]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + args, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)


def _table(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return sorted(csv.DictReader(fh), key=lambda row: json.dumps(row, sort_keys=True))


def _study(path: Path, results: Path, runs: Path) -> optuna.Study:
    spec = load_sweep(path)
    return open_study(spec, paths_for(spec, results, runs), None)


# --------------------------------------------------------------------------- memory


CHILD = """
import resource, sys
import torch
from gsil_bench.registry import register_loss
from gsil_bench.study.driver import run_sweep
from gsil_bench.types import LossOutput


@register_loss("test-hog", needs_reference=False, needs_generated=False)
def hog(batch):
    "Allocates 64 GiB: over any memory limit this test sets."
    block = torch.ones(1 << 36, dtype=torch.uint8)
    return LossOutput(-batch.policy_real + block[0], {})


size = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
limit = size + (3 << 30)  # what the process holds now, plus 3 GiB
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
run_sweep(sys.argv[1], results_dir="res", runs_dir="runs")
"""


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc and RLIMIT_AS")
def test_a_trial_over_its_memory_limit_fails_and_the_sweep_goes_on(tiny_sweep, tmp_path):
    path = tiny_sweep([{"loss": "test-hog"}, {"loss": "sft"}], controls={"base": False})
    (tmp_path / "child.py").write_text(textwrap.dedent(CHILD))
    child = subprocess.run(
        [sys.executable, "child.py", str(path)],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    out = tmp_path / "res" / "tiny"
    failures = json.loads((out / "study.json").read_text())["failures"]
    assert [f["method"] for f in failures] == ["test-hog"]
    assert "alloc" in failures[0]["reason"] and "memory" in failures[0]["reason"]
    assert [row["method"] for row in _table(out / "table.csv")] == ["sft"]
    records = [RunRecord.read(p) for p in (tmp_path / "runs").rglob("result.json")]
    failed = [r for r in records if r.status == "failed"]
    assert [(r.loss, r.stage) for r in failed] == [("test-hog", "training")]


# --------------------------------------------------------------------------- SIGTERM


def _spec_file(tiny_sweep, **extra) -> Path:
    path = tiny_sweep(
        [{"loss": "sft"}, {"loss": "spin", "params": {"loss.params.beta": 1.0}}],
        seeds=[0, 1],
        **extra,
    )
    spec = yaml.safe_load(path.read_text())
    spec["base"]["optim"]["epochs"] = 4  # 12 steps per run: time to land in the middle
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.slow
def test_sigterm_checkpoints_the_trial_in_flight_and_a_rerun_finishes_it(tiny_sweep, tmp_path):
    path = _spec_file(tiny_sweep)
    straight = _run(_sweep_args(path, "straight", "straight-runs"), tmp_path)
    assert straight.returncode == 0, straight.stderr[-2000:]

    proc = subprocess.Popen(
        CLI + _sweep_args(path),
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    runs = tmp_path / "runs" / "tiny"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        logs = [p for p in runs.rglob("train_log.jsonl") if p.read_text().count("\n") >= 2]
        if logs:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr[-2000:]
    assert "Traceback" not in stderr
    line = "stopped on SIGTERM; checkpoint saved at step"
    assert line in stderr and "run the same command to resume" in stderr
    study = _study(path, tmp_path / "res", tmp_path / "runs")
    states = [t.state.name for t in study.trials]
    assert "RUNNING" not in states and "WAITING" in states  # the trial in flight is queued
    assert not (tmp_path / "res" / "tiny" / "table.csv").exists()

    rerun = _run(_sweep_args(path), tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    records = [RunRecord.read(p) for p in (tmp_path / "res" / "tiny" / "records").glob("*.json")]
    assert any(r.rounds and r.rounds[0]["resumed_from"] > 0 for r in records)
    assert _table(tmp_path / "res" / "tiny" / "table.csv") == _table(
        tmp_path / "straight" / "tiny" / "table.csv"
    )


# --------------------------------------------------------------------------- two at once


@pytest.mark.slow
def test_two_sweeps_of_one_study_started_at_once_run_each_point_once(tiny_sweep, tmp_path):
    path = tiny_sweep(
        [
            {"loss": "sft"},
            {"loss": "spin", "params": {"loss.params.beta": 1.0}},
            {"loss": "gsil-hinge", "params": {"loss.params.beta": 1.0}},
        ],
        seeds=[0, 1],
    )
    procs = [
        subprocess.Popen(
            CLI + _sweep_args(path),
            cwd=tmp_path,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (_, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, stderr[-2000:]
    study = _study(path, tmp_path / "res", tmp_path / "runs")
    claimed = [t for t in study.trials if "point" in t.params]
    assert sorted(t.params["point"] for t in claimed) == [0, 1, 2]  # each point once
    assert all(t.state.name == "COMPLETE" for t in claimed)
    out = tmp_path / "res" / "tiny"
    assert len(list((out / "records").glob("*.json"))) == 8  # 3 methods and the control, 2 seeds
    rows = _table(out / "table.csv")
    assert sorted(row["method"] for row in rows) == [
        "base",
        "gsil-hinge beta=1",
        "sft",
        "spin beta=1",
    ]
    alone = _run(_sweep_args(path, "alone", "alone-runs"), tmp_path)
    assert alone.returncode == 0, alone.stderr[-2000:]
    assert rows == _table(tmp_path / "alone" / "tiny" / "table.csv")
