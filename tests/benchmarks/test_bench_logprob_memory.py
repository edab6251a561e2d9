"""benchmarks/bench_logprob_memory.py: the naive path by hand, and a small run whose report
holds together (the paths agree; added = peak - before; the ratios are project / naive)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "bench_logprob_memory.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_logprob_memory", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load()


def test_naive_logps_by_hand():
    from gsil_bench.backend.batches import TrainExample, collate

    # All-zero logits over a vocabulary of 4: every token has log-prob -log 4. Row 0 has 3
    # response tokens after a 2-token prompt, row 1 one after a 1-token prompt (then padding).
    batch = collate(
        [TrainExample([1, 2], [3, 1, 2]), TrainExample([3], [2])], with_generated=False, pad_id=0
    )

    def model(input_ids, attention_mask):
        return SimpleNamespace(logits=torch.zeros(*input_ids.shape, 4))

    sums, counts = bench.naive_logps(model, batch)
    assert counts.tolist() == [3, 1]
    assert sums.tolist() == pytest.approx([-3 * math.log(4), -math.log(4)])


def test_bad_prompt_fraction_is_one_line():
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--prompt-fraction", "1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2
    assert "--prompt-fraction (1.0) must be in [0, 1)" in out.stderr


def test_small_run_report(tmp_path):
    out_file = tmp_path / "memory.json"
    command = [sys.executable, str(SCRIPT), "--vocab", "1024", "--length", "64"]
    out = subprocess.run(
        [*command, "--json", str(out_file)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out_file.read_text())
    runs = report["runs"]
    for row in runs.values():
        # 0.6 * 64 = 38.4 -> 38 prompt tokens, 26 response tokens per row, 4 rows.
        assert row["response_tokens"] == 4 * 26
        # each of the three is rounded to 0.1 MiB on its own: they may disagree by 3 x 0.05
        assert row["added_mb"] == pytest.approx(
            row["peak_rss_mb"] - row["rss_before_mb"], abs=0.151
        )
        assert row["rss_before_mb"] > 50  # Python and torch alone are more than that
    for key, ratio in report["ratios_project_over_naive"].items():
        assert ratio == pytest.approx(runs["project"][key] / runs["naive"][key])
