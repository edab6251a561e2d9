"""``ref_logp``: the mean per-token log-likelihood of the reference answers, checked against a
plain, unbatched forward pass written out here."""

from __future__ import annotations

import math

import pytest
import torch

from gsil_bench.evaluation.result import BenchmarkResult
from gsil_bench.minisuite.likelihood import add_ref_logp, reference_loglik, reference_turns
from gsil_bench.minisuite.task import TestItem

MATH = TestItem(
    id="m1", domain="math", turns=["What is 2 + 3?"], reference="2 + 3 = 5\n#### 5",
    check={"answer": 5}, turn_references=["2 + 3 = 5\n#### 5"],
)  # fmt: skip
DIALOGUE = TestItem(
    id="d1", domain="dialogue", turns=["List two colours.", "Now reverse them."],
    reference="Green\nRed", check={"constraints": [[], []]},
    turn_references=["Red\nGreen", "Green\nRed"],
)  # fmt: skip


def plain_logp(model, tokenizer, prompt_text: str, response: str) -> tuple[float, int]:
    """Summed log-probability of ``response`` + EOS after ``prompt_text``, and its length."""
    prompt = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    answer = [*tokenizer(response, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    ids = torch.tensor([prompt + answer])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    # Token i is predicted at position i - 1.
    total = sum(logprobs[len(prompt) + k - 1, token].item() for k, token in enumerate(answer))
    return total, len(answer)


def test_one_turn_item_is_its_reference_under_the_chat_prompt(tiny_model, tiny_tokenizer):
    (value,) = reference_loglik(
        tiny_model, tiny_tokenizer, [MATH], batch_size=4, max_prompt_tokens=64, max_length=128
    )
    # The tiny chat template, written out: one line per turn, then the assistant's header.
    total, n = plain_logp(
        tiny_model, tiny_tokenizer, "<|user|>\nWhat is 2 + 3?<eos>\n<|assistant|>\n", MATH.reference
    )
    assert value == pytest.approx(total / n, abs=1e-5)
    assert value < 0


def test_two_turn_item_counts_both_turns_teacher_forced(tiny_model, tiny_tokenizer):
    values = reference_loglik(
        tiny_model, tiny_tokenizer, [DIALOGUE, MATH], batch_size=2, max_prompt_tokens=64,
        max_length=128,
    )  # fmt: skip
    first = "<|user|>\nList two colours.<eos>\n<|assistant|>\n"
    second = (
        "<|user|>\nList two colours.<eos>\n<|assistant|>\nRed\nGreen<eos>\n"
        "<|user|>\nNow reverse them.<eos>\n<|assistant|>\n"
    )
    s1, n1 = plain_logp(tiny_model, tiny_tokenizer, first, "Red\nGreen")
    s2, n2 = plain_logp(tiny_model, tiny_tokenizer, second, "Green\nRed")
    assert values[0] == pytest.approx((s1 + s2) / (n1 + n2), abs=1e-5)
    # Batched with a padded neighbour of another length, the math item scores as alone.
    (alone,) = reference_loglik(
        tiny_model, tiny_tokenizer, [MATH], batch_size=1, max_prompt_tokens=64, max_length=128
    )
    assert values[1] == pytest.approx(alone, abs=1e-5)
    assert [len(reference_turns(item)) for item in (DIALOGUE, MATH)] == [2, 1]


def test_ref_logp_joins_each_domain_after_its_primary_metric():
    math_result = BenchmarkResult("mini/math", {"accuracy": 0.5}, [{"id": "a"}, {"id": "b"}])
    code_result = BenchmarkResult("mini/code", {"pass@1": 1.0}, [{"id": "c"}])
    items = [TestItem(i, "x", ["q"], "r", {}) for i in ("a", "b", "c")]
    add_ref_logp([math_result, code_result], items, [-1.0, -2.0, math.nan])
    assert list(math_result.metrics) == ["accuracy", "ref_logp"]
    assert math_result.primary == "accuracy"
    assert math_result.metrics["ref_logp"] == pytest.approx(-1.5)
    assert [row["ref_logp"] for row in math_result.items] == [-1.0, -2.0]
    # An item cut away entirely by the length policy is left out: no finite value, NaN mean.
    assert math.isnan(code_result.metrics["ref_logp"])
