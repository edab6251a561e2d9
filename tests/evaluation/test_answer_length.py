"""Benchmarks with a protocol length keep it unless the run sets eval.max_new_tokens."""

from __future__ import annotations

import pytest

from gsil_bench.config import EvalConfig, RunConfig
from gsil_bench.evaluation.benchmarks import hh_safety, mtbench


@pytest.mark.parametrize(
    ("module", "runner", "cls", "protocol"),
    [
        (mtbench, "run_mtbench", mtbench.MTBench, 1024),  # FastChat's default
        (hh_safety, "run_hh_safety", hh_safety.HHSafety, 256),
    ],
)
def test_protocol_length_unless_the_run_sets_one(monkeypatch, module, runner, cls, protocol):
    seen: list[int] = []

    def fake(*args, **kwargs):
        seen.append(kwargs["max_new_tokens"])
        return "result"

    monkeypatch.setattr(module, runner, fake)
    monkeypatch.setattr(module, "judge_for", lambda spec, name: object())
    if hasattr(module, "is_reward_judge"):
        monkeypatch.setattr(module, "is_reward_judge", lambda judge: False)
    options = cls.Options()
    for cfg in (EvalConfig(), EvalConfig(max_new_tokens=64)):
        assert cls().run(None, None, cfg, options, RunConfig()) == ["result"]
    assert seen == [protocol, 64]
