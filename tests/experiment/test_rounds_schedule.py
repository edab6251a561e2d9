"""SPIN's schedule: per-round learning rate and beta (``rounds``), every round's model evaluated
(``eval.every_round``), and a run stopped in round 2 and resumed ends as an uninterrupted one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gsil_bench.backend.model import load_pretrained
from gsil_bench.config import load_config
from gsil_bench.evaluation.evaluate import evaluate_model
from gsil_bench.experiment import rounds
from gsil_bench.experiment.recipe import run_experiment
from gsil_bench.stop import StopRequested, request_stop, sigterm_stops

TINY = str(Path(__file__).parents[1] / "fixtures" / "tiny_run.yaml")
# A constant schedule: every logged step's learning rate is the round's own.
SCHEDULE = [
    "iterations=3",
    "generation.mix_previous_rounds=true",
    "optim.schedule=constant",
    "eval.every_round=true",
    "rounds=[{optim.lr: 1.0e-3, loss.params.beta: 1.0}, {optim.lr: 3.0e-4},"
    " {optim.lr: 1.0e-4, loss.params.beta: 4.0}]",
]


def _config(tmp_path, name):
    return load_config(
        TINY, [f"output_dir={tmp_path}/{name}", f"cache_dir={tmp_path}/cache", *SCHEDULE]
    )


def _logs(record) -> list[list[dict]]:
    """Every round's logged training rows, without the timing (which differs run to run)."""
    out = []
    for r in record.rounds:
        rows = [json.loads(x) for x in Path(r["log"]).read_text().splitlines()]
        out.append([{k: v for k, v in row.items() if k != "tokens_per_s"} for row in rows])
    return out


def _metrics(results: dict) -> dict:
    return {name: result["metrics"] for name, result in results.items()}


def test_a_schedule_trains_each_round_with_its_settings_and_resumes_exactly(tmp_path, monkeypatch):
    train = rounds.train
    seen: dict[str, tuple[float, float]] = {}

    def recording(*args, **kwargs):
        seen[kwargs["run_dir"].name] = (kwargs["optim"].lr, kwargs["hparams"]["beta"])
        return train(*args, **kwargs)

    monkeypatch.setattr(rounds, "train", recording)
    whole = run_experiment(_config(tmp_path, "whole"))
    # The fixture's base is lr 1e-3, beta 1: round 2 keeps beta 1, round 3 sets 4.
    assert seen == {"round-1": (1e-3, 1.0), "round-2": (3e-4, 1.0), "round-3": (1e-4, 4.0)}
    for log, lr in zip(_logs(whole), [1e-3, 3e-4, 1e-4], strict=True):
        assert log and all(row["lr"] == pytest.approx(lr) for row in log)

    # Iteration 0 is the base model, iteration t round t's model, the last the run's result.
    iterations = whole.iteration_results()
    assert iterations is not None and len(iterations) == 4
    assert iterations[-1] == whole.benchmarks
    config = _config(tmp_path, "whole")
    model, tokenizer = load_pretrained(str(tmp_path / "whole" / "round-1" / "model"))
    direct = evaluate_model(model, tokenizer, config)
    assert _metrics(iterations[1]) == {n: r.to_dict()["metrics"] for n, r in direct.items()}

    # A SIGTERM in round 2: the loop checkpoints after its first step and stops.
    def stop_in_round_2(*args, **kwargs):
        if kwargs["run_dir"].name == "round-2":
            request_stop()
        return train(*args, **kwargs)

    monkeypatch.setattr(rounds, "train", stop_in_round_2)
    with sigterm_stops(), pytest.raises(StopRequested, match="checkpoint saved at step 1"):
        run_experiment(_config(tmp_path, "resumed"))
    monkeypatch.setattr(rounds, "train", train)

    resumed = run_experiment(_config(tmp_path, "resumed"))
    assert resumed.rounds[0]["loaded"] and resumed.rounds[1]["resumed_from"] == 1
    assert _logs(resumed) == _logs(whole)
    assert resumed.fingerprints.final_model == whole.fingerprints.final_model
    resumed_iterations = resumed.iteration_results()
    assert resumed_iterations is not None
    assert [_metrics(r) for r in resumed_iterations] == [_metrics(r) for r in iterations]
