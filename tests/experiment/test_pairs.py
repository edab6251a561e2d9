"""Pair rules, one at a time and together, on hand-made demonstrations (no model needed)."""

from __future__ import annotations

from gsil_bench.data.records import Demonstration
from gsil_bench.experiment.pairs import build_pairs

DEMOS = [
    Demonstration(id="a", prompt=[{"role": "user", "content": "p1"}], response="r1"),
    Demonstration(id="b", prompt=[{"role": "user", "content": "p2"}], response="r2"),
    Demonstration(id="c", prompt=[{"role": "user", "content": "p3"}], response="r3"),
]


def test_without_negatives_pairs_are_the_demonstrations():
    pairs = build_pairs(DEMOS, None, drop_identical=True)
    assert [p[0]["content"] for p in pairs.prompts] == ["p1", "p2", "p3"] and pairs.reals == [
        "r1",
        "r2",
        "r3",
    ]
    assert pairs.negatives is None and pairs.facts == {}


def test_identical_negatives_are_counted_and_kept_by_default():
    pairs = build_pairs(DEMOS, ["r1", "x2", "r3"])
    assert pairs.negatives == ["r1", "x2", "r3"]
    assert pairs.facts == {"pairs": 3, "identical_negatives": 2}


def test_drop_identical_keeps_only_pairs_that_differ():
    pairs = build_pairs(DEMOS, ["r1", "x2", "r3"], drop_identical=True)
    assert (pairs.prompts, pairs.reals, pairs.negatives) == ([DEMOS[1].prompt], ["r2"], ["x2"])
    assert pairs.facts == {"pairs": 3, "identical_negatives": 2}  # before dropping


def test_mixing_previous_rounds_pairs_each_demonstration_with_both_negatives():
    pairs = build_pairs(
        DEMOS, ["n1", "n2", "r3"], previous_negatives=["o1", "r2", "o3"], mix_previous_rounds=True
    )
    assert [p[0]["content"] for p in pairs.prompts] == ["p1", "p2", "p3", "p1", "p2", "p3"]
    assert pairs.negatives == ["n1", "n2", "r3", "o1", "r2", "o3"]
    # r3 (this round) and r2 (previous round) equal their demonstrations.
    assert pairs.facts == {"pairs": 6, "identical_negatives": 2}
    dropped = build_pairs(
        DEMOS,
        ["n1", "n2", "r3"],
        previous_negatives=["o1", "r2", "o3"],
        mix_previous_rounds=True,
        drop_identical=True,
    )
    assert dropped.negatives == ["n1", "n2", "o1", "o3"]
    assert [p[0]["content"] for p in dropped.prompts] == ["p1", "p2", "p1", "p3"]


def test_previous_negatives_are_ignored_unless_mixing_is_on():
    pairs = build_pairs(DEMOS, ["n1", "n2", "n3"], previous_negatives=["o1", "o2", "o3"])
    assert pairs.negatives == ["n1", "n2", "n3"]
