"""Iterations that resume: a 3-round run with SPIN's mixing (round t trains on round t's and
round t-1's negatives), stopped in round 2 and run again, ends as an uninterrupted run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gsil_bench.config import load_config
from gsil_bench.experiment import rounds
from gsil_bench.experiment.recipe import run_experiment
from gsil_bench.stop import StopRequested, request_stop, sigterm_stops

TINY = str(Path(__file__).parents[1] / "fixtures" / "tiny_run.yaml")
MIXING = ["iterations=3", "generation.mix_previous_rounds=true", "eval.suites=[]"]


def _config(tmp_path, name):
    return load_config(
        TINY, [f"output_dir={tmp_path}/{name}", f"cache_dir={tmp_path}/cache", *MIXING]
    )


def _logs(record) -> list[list[dict]]:
    """Every round's logged training rows, without the timing (which differs run to run)."""
    out = []
    for r in record.rounds:
        rows = [json.loads(x) for x in Path(r["log"]).read_text().splitlines()]
        out.append([{k: v for k, v in row.items() if k != "tokens_per_s"} for row in rows])
    return out


def test_a_resumed_mixing_run_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    whole = run_experiment(_config(tmp_path, "whole"))
    demonstrations = whole.data["demonstrations"]
    # Round 1 has no previous negatives; rounds 2 and 3 pair every demonstration twice.
    assert [r["pairs"] for r in whole.rounds] == [demonstrations] + [2 * demonstrations] * 2

    # A SIGTERM during round 2: the loop checkpoints after its first step and stops.
    train = rounds.train

    def stop_in_round_2(*args, **kwargs):
        if kwargs["run_dir"].name == "round-2":
            request_stop()
        return train(*args, **kwargs)

    monkeypatch.setattr(rounds, "train", stop_in_round_2)
    with sigterm_stops(), pytest.raises(StopRequested, match="checkpoint saved at step 1"):
        run_experiment(_config(tmp_path, "resumed"))
    monkeypatch.setattr(rounds, "train", train)

    resumed = run_experiment(_config(tmp_path, "resumed"))
    assert resumed.rounds[0]["loaded"] and "loaded" not in resumed.rounds[1]
    assert resumed.rounds[1]["resumed_from"] == 1
    assert [r["pairs"] for r in resumed.rounds] == [r["pairs"] for r in whole.rounds]
    assert _logs(resumed) == _logs(whole)
    assert resumed.fingerprints.final_model == whole.fingerprints.final_model
