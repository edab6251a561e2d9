"""`gsil-bench train` and `gsil-bench eval` through the real Typer app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from gsil_bench.cli.app import app

TINY = str(Path(__file__).resolve().parents[1] / "fixtures" / "tiny_run.yaml")


def test_train_then_eval_a_run_folder(tmp_path):
    runner = CliRunner()
    run_dir = tmp_path / "run"
    result = runner.invoke(
        app,
        ["train", TINY, "--set", f"output_dir={run_dir}", "--set", f"cache_dir={tmp_path}/cache"],
    )
    assert result.exit_code == 0, result.output
    assert "train_log.jsonl" in result.output and "mini/math" in result.output
    result = runner.invoke(app, ["eval", str(run_dir), "--suite", "mini", "--limit", "2"])
    assert result.exit_code == 0, result.output
    record = json.loads((run_dir / "eval.json").read_text())
    assert record["model_fingerprint"] and record["suite_fingerprint"]
    assert {"mini/math", "mini/code", "mini/dialogue", "mini/safety"} <= set(record["benchmarks"])
    assert all(len(b["items"]) == 2 for b in record["benchmarks"].values())  # per domain


def test_user_errors_exit_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: {lrr: 1}\n")
    for args in (
        ["train", str(bad)],
        ["train", "--set", "loss.name=gsil-logistc"],
        ["eval", str(tmp_path / "missing")],
        ["sweep", "no-such-sweep"],
        ["train", str(tmp_path / "[draft]" / "x.yaml")],
        ["train", "--set", "eval.suites=[gsm8]"],
    ):
        proc = proc_of(args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.startswith("error:") and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    # Messages are text, not Rich markup: brackets survive.
    assert "[draft]" in proc_of(["train", str(tmp_path / "[draft]" / "x.yaml")]).stderr
    typo = proc_of(["train", "--set", "eval.suites=[gsm8]"]).stderr
    assert "eval.suites=[gsm8]" in typo and "Did you mean 'gsm8k'?" in typo


def proc_of(args: list[str]) -> subprocess.CompletedProcess[str]:
    """The real entry point in a subprocess (its UserError handling is what users see)."""
    return subprocess.run(
        [sys.executable, "-m", "gsil_bench.cli.app", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "400"},
    )


def test_train_a_base_only_run_then_eval_its_folder(tmp_path):
    runner = CliRunner()
    run_dir = tmp_path / "base"
    sets = [f"output_dir={run_dir}", f"cache_dir={tmp_path}/cache", "iterations=0"]
    result = runner.invoke(app, ["train", TINY, *[a for s in sets for a in ("--set", s)]])
    assert result.exit_code == 0, result.output
    assert "no training" in result.output and "ref_logp" in result.output
    result = runner.invoke(app, ["eval", str(run_dir), "--suite", "mini", "--limit", "1"])
    assert result.exit_code == 0, result.output
    record = json.loads((run_dir / "eval.json").read_text())
    assert record["model_path"].startswith(str(tmp_path / "cache" / "base"))
