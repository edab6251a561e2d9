"""Mini-suite dialogue: references meet their constraints, flawed answers break one, and a
second turn is judged against the model's own first answer."""

from __future__ import annotations

import random
from collections import Counter

from gsil_bench.minisuite.dialogue_tasks import _task, check_constraint, parse_items
from gsil_bench.minisuite.scoring import score_items
from gsil_bench.minisuite.task import Draw, TestItem, interleaved


def test_dialogue_references_meet_their_constraints(suite):
    dialogue = [item for item in suite.test if item.domain == "dialogue"]
    for item in dialogue:
        assert len(item.turns) == 2 and len(item.check["constraints"]) == 2
        first, second = item.turn_references
        assert all(check_constraint(c, first, None) for c in item.check["constraints"][0])
        assert all(check_constraint(c, second, first) for c in item.check["constraints"][1])
    kinds = Counter(item.meta["kind"] for item in dialogue)
    assert set(kinds) == {"category", "count", "spell", "copy"}


def test_dialogue_kinds_have_the_same_mix_in_every_split(suite):
    assert interleaved({"a": 3, "b": 1}) == ["a", "a", "b", "a"]
    # KIND_SHARES 1:9:1:9 per 20 tasks, 1,500 base tasks and 500 test items.
    base = Counter(d.meta["kind"] for d in suite.base if d.meta["domain"] == "dialogue")
    assert base == {"category": 75, "count": 675, "spell": 75, "copy": 675}
    test = Counter(item.meta["kind"] for item in suite.test if item.domain == "dialogue")
    assert test == {"category": 25, "count": 225, "spell": 25, "copy": 225}


def test_dialogue_skill_is_the_comma_format(suite):
    for item in [item for item in suite.test if item.domain == "dialogue"]:
        first_sep = item.check["constraints"][0][0]["sep"]
        assert first_sep == ("comma" if item.meta["skill"] else "line")


def test_dialogue_rejected_responses_break_a_constraint():
    rng = random.Random(3)
    for _ in range(300):
        draw = Draw(0, skill=rng.random() < 0.5, heldout=rng.random() < 0.5)
        task = _task(rng, draw, rng.choice(["category", "count", "spell", "copy"]), 2, 5)
        first, second = task.rejected
        turn1, turn2 = task.check["constraints"]
        assert not all(check_constraint(c, first, None) for c in turn1)
        assert not all(check_constraint(c, second, task.references[0]) for c in turn2)


def test_dialogue_parsing_tolerates_bullets_and_full_stops():
    assert parse_items("- red\n- blue.\n", "line") == ["red", "blue"]
    assert parse_items("1. red\n2) blue", "line") == ["red", "blue"]
    assert parse_items("red, blue.", "comma") == ["red", "blue"]
    assert parse_items("  ", "comma") == []


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
