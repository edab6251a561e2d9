"""Mini-suite scoring: references score 1, wrong or empty answers 0, in every domain.

Code answers run in the real sandbox (a child process each), nothing is mocked.
"""

from __future__ import annotations

import random

import pytest

from gsil_bench.data import minisuite_code
from gsil_bench.data.minisuite import MiniSuiteConfig, TestItem, build_suite
from gsil_bench.evaluation.mini import code_of, extract_number, score_items

DOMAIN_METRICS = {
    "mini/math": ["accuracy"],
    "mini/code": ["pass@1"],
    "mini/dialogue": ["constraint_accuracy", "all_satisfied"],
    "mini/safety": ["safety_score", "refusal_rate_harmful", "help_rate_benign"],
}


@pytest.fixture(scope="module")
def items() -> list[TestItem]:
    return build_suite(MiniSuiteConfig(n_base=0, n_align=0, n_test=48)).test


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


def test_turn_two_is_judged_against_the_models_own_first_answer():
    item = TestItem(
        id="d", domain="dialogue",
        turns=["List 3 colours, one per line.", "Now write them in reverse order."],
        reference="green\nblue\nred", turn_references=["red\nblue\ngreen", "green\nblue\nred"],
        check={"constraints": [
            [{"type": "item_count", "n": 3, "sep": "line"},
             {"type": "items_from", "vocab": ["red", "blue", "green", "pink"], "sep": "line"}],
            [{"type": "transform", "op": "reverse", "sep": "line", "prev_sep": "line"}],
        ]},
    )  # fmt: skip
    own = score_items([item], [["pink\nred", "red\npink"]])["mini/dialogue"]
    assert own.items[0]["met"] == [False, True, True]
    assert own.metrics == {"constraint_accuracy": 2 / 3, "all_satisfied": 0.0}
    copied = score_items([item], [["pink\nred", item.reference]])["mini/dialogue"]
    assert copied.items[0]["met"] == [False, True, False]


def test_safety_rates(items):
    safety = [item for item in items if item.domain == "safety"]
    # A model that refuses everything: all harmful refused, no benign helped.
    refuse_all = [["I cannot help with this."] for _ in safety]
    result = score_items(safety, refuse_all)["mini/safety"]
    harmful = sum(item.check["harmful"] for item in safety) / len(safety)
    assert result.metrics == {
        "safety_score": pytest.approx(harmful),
        "refusal_rate_harmful": 1.0,
        "help_rate_benign": 0.0,
    }


def test_code_in_a_fence_and_flawed_twins(items):
    code = [item for item in items if item.domain == "code"]
    fenced = [[f"Here it is:\n```python\n{item.reference}\n```\nDone."] for item in code]
    assert score_items(code, fenced)["mini/code"].metrics["pass@1"] == 1.0
    # The suite's flawed functions (the demonstrations' ``rejected``) fail the hidden tests.
    tasks = minisuite_code.generate(random.Random(0), 12)
    twins = [TestItem(f"c{i}", "code", list(t.turns), t.references[0], t.check)
             for i, t in enumerate(tasks)]  # fmt: skip
    result = score_items(twins, [[t.rejected[0]] for t in tasks], workers=2)["mini/code"]
    assert result.metrics["pass@1"] == 0.0
    assert {row["status"] for row in result.items} == {"failed"}


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("3 + 4 = 7\n#### 7", 7.0),
        ("#### 1,234", 1234.0),
        ("so 5 then 9.", 9.0),
        ("#### 12 and later 13", 12.0),
        ("first #### 1 then #### 2", 2.0),
        ("-4", -4.0),
        ("18.0", 18.0),
        ("no digits", None),
        ("", None),
    ],
)
def test_extract_number(text, number):
    assert extract_number(text) == number


def test_code_of():
    assert code_of("```python\ndef f():\n    pass\n```") == "def f():\n    pass\n"
    assert code_of("def f():\n    pass") == "def f():\n    pass"
    assert code_of("```\nx = 1\n").strip() == "x = 1"  # an unclosed fence still counts


def test_mismatched_lengths_are_a_bug(items):
    with pytest.raises(ValueError, match="items but"):
        score_items(items, [])
    with pytest.raises(ValueError, match="turns but"):
        score_items(items[:1], [["a", "b", "c"]])
