"""Before any training, a run checks that its evaluation can run (evaluation/preflight.py):
a missing file fails in one line naming the config key and the path, and nothing is written."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from gsil_bench.config import load_config
from gsil_bench.errors import UserError
from gsil_bench.evaluation.preflight import preflight
from gsil_bench.experiment.recipe import run_experiment

# The judge server helper sits in tests/evaluation; pytest runs in importlib mode.
sys.path.insert(0, str(Path(__file__).parent))
from judge_server import JudgeServer  # noqa: E402

TINY = str(Path(__file__).parents[1] / "fixtures" / "tiny_run.yaml")
# Port 9 (discard) has no server: a judge there is unreachable. The checks that fail before
# the judge is contacted never get that far.
JUDGE = "openai:gpt-4@http://127.0.0.1:9/v1"


def _config(tmp_path, *overrides):
    return load_config(
        TINY, [f"output_dir={tmp_path}/run", f"cache_dir={tmp_path}/cache", *overrides]
    )


def _one_line(err: pytest.ExceptionInfo[UserError]) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def test_a_missing_judge_prompt_file_fails_the_run_before_any_work(tmp_path):
    missing = tmp_path / "nowhere" / "judge_prompts.jsonl"
    config = _config(
        tmp_path,
        "eval.suites=[mt-bench]",
        f"eval.judge={JUDGE}",
        f"eval.options.mt-bench.judge_prompts={missing}",
    )
    with pytest.raises(UserError) as err:
        run_experiment(config)
    text = _one_line(err)
    assert text.startswith("eval.options.mt-bench.judge_prompts: ") and str(missing) in text
    # Before the run folder is claimed and before the base model or the data: nothing written.
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()


def test_a_missing_benchmark_file_names_its_key_and_path(tmp_path):
    missing = tmp_path / "gsm8k_test.jsonl"
    with pytest.raises(UserError) as err:
        preflight(_config(tmp_path, "eval.suites=[gsm8k]", f"eval.options.gsm8k.source={missing}"))
    assert _one_line(err) == f"eval.options.gsm8k.source: {missing}: no such file or folder"
    missing_problems = tmp_path / "HumanEval.jsonl.gz"
    config = _config(
        tmp_path, "eval.suites=[humaneval]", f"eval.options.humaneval.problems={missing_problems}"
    )
    with pytest.raises(UserError, match=r"^eval\.options\.humaneval\.problems: .*HumanEval"):
        preflight(config)


def test_the_paper_suite_without_judge_prompts_fails_on_the_first_judged_benchmark(tmp_path):
    # The paper suite's MT-Bench reads its questions from the Hub, where no templates are.
    config = _config(tmp_path, "eval.suites=[paper]", f"eval.judge={JUDGE}")
    with pytest.raises(UserError) as err:
        preflight(config)
    assert _one_line(err).startswith("eval.options.mt-bench.judge_prompts: not set")


def test_judged_benchmarks_need_a_judge_and_llm_judges_need_templates(tmp_path):
    with pytest.raises(UserError, match=r"^eval\.judge: not set; suite 'hh-safety'"):
        preflight(_config(tmp_path, "eval.suites=[hh-safety]"))
    with pytest.raises(UserError, match=r"^eval\.options\.hh-safety\.judge_prompts: not set"):
        preflight(_config(tmp_path, "eval.suites=[hh-safety]", f"eval.judge={JUDGE}"))
    # A reward-model judge scores replies without templates: nothing to check.
    preflight(_config(tmp_path, "eval.suites=[hh-safety]", "eval.judge=reward:some/rm"))


def test_local_mtbench_questions_with_templates_beside_them_pass(tmp_path):
    data = tmp_path / "mt_bench"
    data.mkdir()
    question = {"question_id": 1, "category": "writing", "turns": ["a", "b"]}
    (data / "question.jsonl").write_text(json.dumps(question) + "\n")
    overrides = ["eval.suites=[mt-bench]", f"eval.judge={JUDGE}"]
    with pytest.raises(UserError, match="no judge_prompts.jsonl next to"):
        preflight(_config(tmp_path, *overrides, f"eval.options.mt-bench.questions={data}"))
    (data / "judge_prompts.jsonl").write_text("{}\n")
    questions = f"eval.options.mt-bench.questions={data}"
    preflight(_config(tmp_path, *overrides, questions), contact_judge=False)
    preflight(_config(tmp_path, *overrides, f"{questions}/question.jsonl"), contact_judge=False)


def test_an_http_judge_is_asked_one_tiny_request_and_must_answer(tmp_path):
    data = tmp_path / "mt_bench"
    data.mkdir()
    (data / "question.jsonl").write_text('{"question_id": 1, "category": "x", "turns": ["a"]}\n')
    (data / "judge_prompts.jsonl").write_text("{}\n")
    overrides = ["eval.suites=[mt-bench]", f"eval.options.mt-bench.questions={data}"]
    with JudgeServer() as server:
        preflight(_config(tmp_path, *overrides, f"eval.judge=openai:judge-model@{server.base_url}"))
        assert len(server.requests) == 1
        body = server.requests[0]["body"]
        assert body["model"] == "judge-model" and body["max_tokens"] == 1
    with pytest.raises(UserError) as err:
        preflight(_config(tmp_path, *overrides, f"eval.judge={JUDGE}"))
    assert _one_line(err).startswith(f"eval.judge: {JUDGE}: did not answer a one-token request")
    with JudgeServer(fail_first=10, fail_status=401) as server:  # a bad key: answered, refused
        spec = f"openai:gpt-4@{server.base_url}"
        with pytest.raises(UserError, match=r"^eval\.judge: .*did not answer"):
            preflight(_config(tmp_path, *overrides, f"eval.judge={spec}"))


def test_the_fixture_config_passes(tmp_path):
    preflight(_config(tmp_path))  # the mini suite: nothing outside the package to check


@pytest.mark.skipif(importlib.util.find_spec("lm_eval") is None, reason="lm-eval not installed")
def test_an_lmeval_task_that_does_not_resolve_fails_before_training(tmp_path):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    config = _config(
        tmp_path, "eval.suites=[no_such_task_xyz]", f"eval.lmeval_include_path={tasks}"
    )
    with pytest.raises(UserError) as err:
        run_experiment(config)
    assert _one_line(err).startswith("eval.suites: lm-eval task(s) no_such_task_xyz not found")
    assert not (tmp_path / "run").exists()
