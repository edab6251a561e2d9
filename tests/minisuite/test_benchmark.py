"""The benchmark ``mini``: found in the registry, scores files of answers, runs on a model."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest

from gsil_bench.config import EvalConfig, RunConfig
from gsil_bench.errors import UserError
from gsil_bench.evaluation.benchmark import BENCHMARKS, Benchmark
from gsil_bench.minisuite.benchmark import MiniBenchmark, MiniOptions, answer_digest
from gsil_bench.minisuite.config import MiniSuiteConfig
from gsil_bench.minisuite.suite import build_suite

DOMAIN_RESULTS = ["mini/math", "mini/code", "mini/dialogue", "mini/safety"]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_registered_as_mini():
    benchmark = BENCHMARKS.get("mini")
    assert isinstance(benchmark, MiniBenchmark) and isinstance(benchmark, Benchmark)
    assert benchmark.name == "mini" and benchmark.Options is MiniOptions


def test_score_file_by_id(tmp_path):
    # Ten items of each domain of the default suite of seed 2, named by id.
    test = [item for item in build_suite(MiniSuiteConfig(seed=2)).test if item.id[-4:] < "0010"]
    rows = [{"id": item.id, "responses": item.turn_references} for item in test]
    rows[0]["responses"] = [""] * len(test[0].turns)  # the first math item answered with nothing
    path = write_jsonl(tmp_path / "answers.jsonl", rows)
    results = MiniBenchmark().score_file(path, MiniOptions(seed=2))
    assert [r.benchmark for r in results] == DOMAIN_RESULTS
    assert [r.details["n"] for r in results] == [10, 10, 10, 10]
    assert results[0].metrics == {"accuracy": 9 / 10}
    assert all(value == 1.0 for r in results[1:] for value in r.metrics.values())


def test_score_file_with_embedded_items_and_one_turn_shorthand(tmp_path):
    row = {"id": "own-1", "domain": "math", "turns": ["What is 2 + 3?"],
           "check": {"answer": 5}, "response": "2 + 3 = 5\n#### 5"}  # fmt: skip
    path = write_jsonl(tmp_path / "own.jsonl", [row])
    (result,) = MiniBenchmark().score_file(path, MiniOptions())
    assert (result.benchmark, result.metrics, result.items[0]["id"]) == (
        "mini/math", {"accuracy": 1.0}, "own-1"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"id": "mini-math-0000", "responses": ["1"]}, {"id": "nope", "responses": ["1"]}],
         r"m\.jsonl:2: unknown mini-suite item id 'nope'"),
        ([{"id": "mini-math-0000"}], r"m\.jsonl:1: field 'responses' missing"),
        ([{"id": "mini-math-0000", "responses": ["1", "2"]}],
         r"m\.jsonl:1: mini-math-0000 has 1 turns, got 2"),
        ([["not", "an", "object"]], r"m\.jsonl:1: expected a JSON object"),
    ],
)  # fmt: skip
def test_score_file_errors_name_the_line(tmp_path, rows, message):
    with pytest.raises(UserError, match=message):
        MiniBenchmark().score_file(write_jsonl(tmp_path / "m.jsonl", rows), MiniOptions())


def test_run_answers_the_runs_own_suite_per_domain_limit(tiny_model, tiny_tokenizer):
    run = RunConfig.model_validate({"data": {"mini": {"n_base": 0, "n_align": 0, "n_test": 8}}})
    cfg = EvalConfig(limit=1, max_new_tokens=4, batch_size=8)
    results = MiniBenchmark().run(tiny_model, tiny_tokenizer, cfg, MiniOptions(), run)
    assert [r.benchmark for r in results] == DOMAIN_RESULTS
    # One item per domain (the limit), the first of each in suite order.
    assert [r.items[0]["id"] for r in results] == [
        "mini-math-0000", "mini-code-0000", "mini-dialogue-0000", "mini-safety-0000",
    ]  # fmt: skip
    assert all(r.details["n"] == 1 and r.details["decoding"] == "greedy" for r in results)
    assert all(r.details["generation_s"] > 0 for r in results)
    # The continuous metric after the primary one, per item too; a hash of every answer.
    for result in results:
        assert list(result.metrics)[-1] == "ref_logp" and result.primary != "ref_logp"
        (row,) = result.items
        assert result.metrics["ref_logp"] == row["ref_logp"] < 0
        assert len(row["answer_sha"]) == 12


def test_answer_digest_is_a_short_sha256_of_the_answers_as_json():
    expected = hashlib.sha256(b'["Red\\nGreen", "Green"]').hexdigest()[:12]
    assert answer_digest(["Red\nGreen", "Green"]) == expected
    assert answer_digest(["a", "b"]) != answer_digest(["ab"]) != answer_digest(["a b"])


def test_answers_are_cut_per_domain_at_the_budget_times_the_longest_reference(
    monkeypatch, tiny_tokenizer
):
    from gsil_bench.evaluation import chat_generation
    from gsil_bench.minisuite.benchmark import _answer
    from gsil_bench.minisuite.task import TestItem

    items = [
        TestItem("m1", "math", ["q"], "1 + 2 = 3\n#### 3", {"answer": 3}, ["1 + 2 = 3\n#### 3"]),
        TestItem("m2", "math", ["q"], "#### 3", {"answer": 3}, ["#### 3"]),
        TestItem("s1", "safety", ["q"], "ok", {"harmful": False}, ["ok"]),
    ]
    asked: dict[str, int] = {}

    def fake(model, tokenizer, turns, *, max_new_tokens, **_):
        asked[turns[0][0] + str(len(turns))] = max_new_tokens
        return [["a"] for _ in turns]

    monkeypatch.setattr(chat_generation, "answer_conversations", fake)

    def tokens(text: str) -> int:
        return len(tiny_tokenizer(text, add_special_tokens=False)["input_ids"])

    longest_math = max(tokens("1 + 2 = 3\n#### 3"), tokens("#### 3"))
    cfg = EvalConfig(max_new_tokens=160)
    assert _answer(None, tiny_tokenizer, items, cfg, 1.5) == [["a"], ["a"], ["a"]]
    assert asked == {
        "q2": math.ceil(1.5 * longest_math) + 8,
        "q1": math.ceil(1.5 * tokens("ok")) + 8,
    }
    # eval.max_new_tokens stays the ceiling, and a budget of 0 leaves it alone.
    _answer(None, tiny_tokenizer, items, EvalConfig(max_new_tokens=5), 1.5)
    assert asked == {"q2": 5, "q1": 5}
    _answer(None, tiny_tokenizer, items, cfg, 0.0)
    assert asked == {"q2": 160, "q1": 160}
