"""Options of suites that lm-evaluation-harness runs: the few-shot count per task (the Open LLM
Leaderboard's 25 for ARC, 10 for HellaSwag, ...) reaches the harness; mistakes are one line."""

from __future__ import annotations

import pytest

from gsil_bench.config import RunConfig
from gsil_bench.errors import UserError
from gsil_bench.evaluation import lmeval_bridge
from gsil_bench.evaluation.evaluate import run_suite


def _run(options: dict, suites=("arc_challenge", "hellaswag")) -> RunConfig:
    return RunConfig.model_validate({"eval": {"suites": list(suites), "options": options}})


def test_each_task_gets_its_own_few_shot_count(monkeypatch):
    seen = {}

    def fake_run_lmeval(model, tokenizer, task, **kwargs):
        seen[task] = kwargs
        return []

    monkeypatch.setattr(lmeval_bridge, "run_lmeval", fake_run_lmeval)
    run = _run({"arc_challenge": {"num_fewshot": 25}, "hellaswag": {"num_fewshot": 10}})
    for task in ("arc_challenge", "hellaswag"):
        assert run_suite(task, None, None, run) == []
    assert seen["arc_challenge"]["num_fewshot"] == 25
    assert seen["hellaswag"]["num_fewshot"] == 10
    assert seen["hellaswag"]["apply_chat_template"] is False
    assert seen["hellaswag"]["fewshot_as_multiturn"] is None


def test_a_task_without_options_keeps_the_harness_default(monkeypatch):
    seen = {}
    monkeypatch.setattr(lmeval_bridge, "run_lmeval", lambda m, t, task, **kw: seen.update(kw))
    run_suite("hellaswag", None, None, _run({}))
    assert seen["num_fewshot"] is None


def test_a_misspelt_option_names_the_key_and_the_right_spelling():
    with pytest.raises(
        UserError, match=r"eval\.options\.arc_challenge\.num_fewshots: .*num_fewshot"
    ):
        _run({"arc_challenge": {"num_fewshots": 25}})


def test_a_negative_count_is_refused():
    with pytest.raises(UserError, match=r"eval\.options\.hellaswag\.num_fewshot"):
        _run({"hellaswag": {"num_fewshot": -1}})


def test_options_of_a_task_that_is_not_run_are_refused():
    with pytest.raises(UserError, match=r"eval\.options\.winogrande: .*in eval\.suites"):
        _run({"winogrande": {"num_fewshot": 5}})
