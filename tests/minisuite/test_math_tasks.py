"""Mini-suite math: worked solutions that check out, flawed ones that do not, and answer
extraction for scoring."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from gsil_bench.minisuite.config import MiniSuiteConfig
from gsil_bench.minisuite.math_tasks import extract_number
from gsil_bench.minisuite.scoring import score_items


def _check_chain(solution: str) -> int:
    """Verify every equation of a worked solution; return its final answer."""
    *steps, final = solution.split("\n")
    previous = None
    for step in steps:
        a, op, b, _, c = step.split()
        value = {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b),
                 "/": int(a) // int(b)}[op]  # fmt: skip
        assert value == int(c) and (previous is None or int(a) == previous), solution
        previous = value
    assert final == f"#### {previous}"
    return previous


def test_math_solutions_are_correct_and_rejected_ones_wrong(suite):
    for item in [item for item in suite.test if item.domain == "math"]:
        assert _check_chain(item.reference) == item.check["answer"]
        ending = "end up with" if item.meta["heldout"] else "have now"
        assert re.search(rf"How many \w+ does \w+ {ending}\?$", item.turns[0])
        # Skill problems have exactly one product or quotient step, the others none.
        products = len(re.findall(r" [*/] ", item.reference))
        assert products == (1 if item.meta["skill"] else 0), item.reference
    demos = [d for d in suite.base if d.meta["domain"] == "math"]
    steps = Counter(d.meta["steps"] for d in demos)
    config = MiniSuiteConfig()
    assert set(steps) == set(range(config.math_min_steps, config.math_max_steps + 1))
    for demo in demos:
        right = int(demo.response.rsplit(" ", 1)[1])
        wrong = int(demo.rejected.rsplit(" ", 1)[1])
        assert right != wrong and wrong >= 1


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


def test_accuracy_counts_final_numbers(items):
    math = [item for item in items if item.domain == "math"]
    answers = [[f"#### {item.check['answer']}"] for item in math[:3]]
    answers += [[f"#### {item.check['answer'] + 1}"] for item in math[3:]]
    result = score_items(math, answers)["mini/math"]
    assert result.metrics == {"accuracy": 3 / 12}
    assert [row["predicted"] for row in result.items[:2]] == [
        float(item.check["answer"]) for item in math[:2]
    ]
