"""GSM8K as GSIL ran it (lm-evaluation-harness v0.3.1, b281b09) and as SPIN ran it (v0.4.0,
46c7966): hand-made completions scored as those harness versions score them (the task code
quoted in the comments), their stop sequences, and their per-question few-shot draws."""

from __future__ import annotations

import json
import random

import pytest

from gsil_bench.errors import UserError
from gsil_bench.evaluation.benchmarks.gsm8k import cut_at_stop, run_gsm8k
from gsil_bench.evaluation.benchmarks.gsm8k_protocols import (
    PROTOCOLS,
    protocol_prompts,
    score_gsm8k_protocol,
)


def _score(protocol: str, answer: str, completion: str) -> float:
    result = score_gsm8k_protocol([{"answer": answer, "completion": completion}], protocol)
    return result.items[0]["score"]


# (gold, completion, v0.3.1 acc, v0.4.0 strict exact_match, current lm-eval strict), by hand:
# v0.3.1 _extract_answer: ANS_RE.search, group(1).strip().replace(",", ""), string equality.
# v0.4.0: first "#### (-?[0-9.,]+)"; exact_match drops ",", "$", "(?s).*#### ", ignores case.
# current: as v0.4.0 plus the trailing "." rule.
CASES = [
    ("Some work.\n#### 7", "3 + 4 = 7\n#### 7", 1.0, 1.0, 1.0),
    ("#### 1000", "#### 1,000", 1.0, 1.0, 1.0),
    ("#### 7", "#### 7.", 0.0, 0.0, 1.0),  # the trailing dot: only the current task drops it
    ("#### 7", "The answer is 7.", 0.0, 0.0, 0.0),  # no "####": both old versions say invalid
    ("#### 5", "#### $5", 0.0, 0.0, 0.0),  # "$" is not in the answer pattern
    ("#### 12", "#### 12 and #### 13", 1.0, 1.0, 1.0),  # the first "####"
    ("#### 12", "#### 13 then #### 12", 0.0, 0.0, 0.0),
]


@pytest.mark.parametrize(("gold", "completion", "v03", "v040", "current"), CASES)
def test_each_protocol_scores_as_its_harness(gold, completion, v03, v040, current):
    assert _score("gsil", gold, completion) == v03
    assert _score("spin", gold, completion) == v040
    assert _score("lm-eval", gold, completion) == current


def test_protocol_metric_names_and_record():
    records = [{"answer": "#### 3", "completion": "#### 3"}, {"answer": "#### 4", "completion": ""}]
    gsil = score_gsm8k_protocol(records, "gsil")
    assert list(gsil.metrics) == ["acc", "n"] and gsil.metrics["acc"] == 0.5  # v0.3's "acc"
    assert gsil.details["protocol"] == "gsil" and "b281b09" in gsil.details["protocol_source"]
    spin = score_gsm8k_protocol(records, "spin")
    assert (
        list(spin.metrics) == ["exact_match", "n"] and "46c7966" in spin.details["protocol_source"]
    )
    assert score_gsm8k_protocol(records, "lm-eval").details["protocol"] == "lm-eval"
    with pytest.raises(UserError, match="no '#### n' in its answer"):  # v0.3 asserts a gold
        score_gsm8k_protocol([{"answer": "7", "completion": "#### 7"}], "gsil")
    with pytest.raises(UserError, match="protocol 'gsm8k-v2' unknown"):
        score_gsm8k_protocol(records, "gsm8k-v2")


def test_stop_sequences_of_each_harness():
    text = "It takes 2 hours: so 2 more.\n\nQuestion: next"
    # v0.3 gsm8k.py: greedy_until(ctx, {"until": [":", "Question:", "Question"]}) (+ EOS)
    assert cut_at_stop(text, PROTOCOLS["gsil"].stops) == "It takes 2 hours"
    # v0.4.0 gsm8k.yaml: until ["\n\n", "Question:"]
    assert cut_at_stop(text, PROTOCOLS["spin"].stops) == "It takes 2 hours: so 2 more."


def _v03_contexts(test, train, k, limit):
    """lm-eval v0.3.1's evaluator and Task.fewshot_context, transcribed: one Random seeded 42
    shuffles the test docs, then each doc's context samples k training docs from it."""
    docs = list(test)
    rnd = random.Random()
    rnd.seed(42)
    rnd.shuffle(docs)
    out = []
    for doc in docs[:limit]:
        fewshotex = rnd.sample(list(train), k)
        labeled = (
            "\n\n".join(
                "Question: " + d["question"] + "\nAnswer:" + " " + d["answer"] for d in fewshotex
            )
            + "\n\n"
        )
        out.append(labeled + "Question: " + doc["question"] + "\nAnswer:")
    return out


def _v040_contexts(test, train, k, limit):
    """lm-eval v0.4.0's ContextSampler: random.Random(1234), docs in order, k per doc, joined
    by fewshot_delimiter "\\n\\n" with target_delimiter " "."""
    rnd = random.Random(1234)
    out = []
    for doc in test[:limit]:
        shots = rnd.sample(list(train), k)
        labeled = "\n\n".join(f"Question: {d['question']}\nAnswer: {d['answer']}" for d in shots)
        out.append(labeled + "\n\nQuestion: " + doc["question"] + "\nAnswer:")
    return out


def test_fewshot_draws_follow_each_harness():
    test = [{"question": f"q{i}", "answer": f"#### {i}"} for i in range(12)]
    train = [{"question": f"t{i}", "answer": f"a{i}\n#### {i}"} for i in range(30)]
    gsil = protocol_prompts(test, train, PROTOCOLS["gsil"], 5, limit=7)
    assert [p for _, p in gsil] == _v03_contexts(test, train, 5, 7)
    assert [test[i]["question"] for i, _ in gsil] != [f"q{i}" for i in range(7)]  # shuffled
    spin = protocol_prompts(test, train, PROTOCOLS["spin"], 5, limit=7)
    assert [p for _, p in spin] == _v040_contexts(test, train, 5, 7)
    assert [i for i, _ in spin] == list(range(7))


def test_run_gsm8k_under_the_gsil_protocol_records_it(tmp_path, tiny_model, tiny_tokenizer):
    rows = [{"question": f"What is {i} + 1?", "answer": f"#### {i + 1}"} for i in range(8)]
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run_gsm8k(
        tiny_model,
        tiny_tokenizer,
        source=tmp_path,
        limit=3,
        max_new_tokens=4,
        progress=False,
        protocol="gsil",
    )
    order = list(range(8))
    random.Random(42).shuffle(order)
    assert [item["id"] for item in result.items] == order[:3]
    assert result.details["protocol"] == "gsil" and list(result.metrics) == ["acc", "n"]
    assert result.details["stops"] == [":", "Question:", "Question", "</s>"]
    with pytest.raises(UserError, match="no chat"):
        run_gsm8k(tiny_model, tiny_tokenizer, source=tmp_path, chat=True, protocol="spin")


def test_every_protocol_is_selectable_by_name():
    from typing import get_args

    from gsil_bench.evaluation.benchmark import BENCHMARKS, parse_options
    from gsil_bench.evaluation.benchmarks.gsm8k import ProtocolName

    assert set(get_args(ProtocolName)) == set(PROTOCOLS)
    gsm8k = BENCHMARKS.get("gsm8k")
    assert parse_options(gsm8k, {"protocol": "gsil"}, "w").protocol == "gsil"
    with pytest.raises(UserError, match="protocol"):
        parse_options(gsm8k, {"protocol": "v0.3"}, "eval.options.gsm8k")
