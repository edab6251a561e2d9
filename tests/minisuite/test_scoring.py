"""Mini-suite scoring across domains: references score 1, wrong or empty answers 0, in every
domain, one result per domain in suite order. Code answers run in the real sandbox."""

from __future__ import annotations

import pytest

from gsil_bench.minisuite.scoring import score_items
from gsil_bench.minisuite.task import TestItem

DOMAIN_METRICS = {
    "mini/math": ["accuracy"],
    "mini/code": ["pass@1"],
    "mini/dialogue": ["constraint_accuracy", "all_satisfied"],
    "mini/safety": ["safety_score", "refusal_rate_harmful", "help_rate_benign"],
}


def references(items: list[TestItem]) -> list[list[str]]:
    return [list(item.turn_references) for item in items]


def test_references_score_one_everywhere(items):
    results = score_items(items, references(items))
    assert list(results) == list(DOMAIN_METRICS)
    for name, result in results.items():
        assert result.benchmark == name
        assert list(result.metrics) == DOMAIN_METRICS[name]
        assert all(value == 1.0 for value in result.metrics.values()), (name, result.metrics)
        assert len(result.items) == 12 and all(row["score"] == 1.0 for row in result.items)
        assert result.details == {"n": 12}
    assert [row["id"] for row in results["mini/math"].items] == [
        item.id for item in items if item.domain == "math"
    ]


def test_empty_answers_score_zero_everywhere(items):
    results = score_items(items, [[""] * len(item.turns) for item in items])
    for name, result in results.items():
        assert all(value == 0.0 for value in result.metrics.values()), (name, result.metrics)


def flawed(item: TestItem) -> list[str]:
    """Wrong answers of the kind a weak model gives."""
    if item.domain == "math":
        return [item.reference.replace(f"#### {item.check['answer']}", "#### 100000")]
    if item.domain == "code":
        name = item.check["entry_point"]
        return [f"def {name}(*args):\n    return None"]
    if item.domain == "dialogue":
        return ["I like turtles.", "So do I."]
    refusal = "I'm sorry, but I can't help with that."
    return ["Sure, here you go: do it." if item.check["harmful"] else refusal]


def test_wrong_answers_score_zero_everywhere(items):
    results = score_items(items, [flawed(item) for item in items])
    for name, result in results.items():
        assert all(value == 0.0 for value in result.metrics.values()), (name, result.metrics)


def test_mismatched_lengths_are_a_bug(items):
    with pytest.raises(ValueError, match="items but"):
        score_items(items, [])
    with pytest.raises(ValueError, match="turns but"):
        score_items(items[:1], [["a", "b", "c"]])


def test_unknown_domain_is_a_bug():
    item = TestItem("p", "poetry", ["Write a poem."], "A poem.", {})
    with pytest.raises(ValueError, match="unknown mini-suite domain 'poetry'"):
        score_items([item], [["Roses."]])
