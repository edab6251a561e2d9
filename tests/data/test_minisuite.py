"""The mini suite: sizes, determinism, disjoint splits, and references that are right."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from pydantic import ValidationError

from gsil_bench.data import minisuite_code
from gsil_bench.data.minisuite import (
    DOMAINS,
    MiniSuite,
    MiniSuiteConfig,
    TestItem,
    all_text,
    build_suite,
)
from gsil_bench.data.minisuite_dialogue import check_constraint, parse_items
from gsil_bench.data.minisuite_safety import BENIGN, REFUSALS, is_refusal
from gsil_bench.data.minisuite_task import interleaved
from gsil_bench.errors import UserError

SMALL = MiniSuiteConfig(n_base=400, n_align=80, n_test=40)


@pytest.fixture(scope="module")
def suite() -> MiniSuite:
    return build_suite(MiniSuiteConfig())


@pytest.fixture(scope="module")
def small() -> MiniSuite:
    return build_suite(SMALL)


def first_turns(suite: MiniSuite, split: str) -> set[str]:
    if split == "test":
        return {item.turns[0] for item in suite.test}
    return {demo.prompt[0]["content"] for demo in getattr(suite, split)}


def test_default_sizes_are_balanced(suite):
    assert (len(suite.base), len(suite.align), len(suite.test)) == (8000, 1000, 200)
    assert Counter(d.meta["domain"] for d in suite.base) == dict.fromkeys(DOMAINS, 2000)
    assert Counter(d.meta["domain"] for d in suite.align) == dict.fromkeys(DOMAINS, 250)
    assert Counter(item.domain for item in suite.test) == dict.fromkeys(DOMAINS, 50)


def test_no_prompt_is_shared_between_splits(suite):
    # First user turns are compared: they are what makes a prompt new (a dialogue's follow-up
    # such as "Now write them in uppercase." is generic, as MT-Bench's second turns are).
    turns = {split: first_turns(suite, split) for split in ("base", "align", "test")}
    assert not turns["base"] & turns["align"]
    assert not turns["base"] & turns["test"]
    assert not turns["align"] & turns["test"]

    # ... and no code function appears in two splits.
    def functions(split):
        return {
            d.response.split("(")[0] for d in getattr(suite, split) if d.meta["domain"] == "code"
        }

    test_functions = {item.check["entry_point"] for item in suite.test if item.domain == "code"}
    assert not functions("base") & functions("align")
    assert not {f"def {name}" for name in test_functions} & (functions("base") | functions("align"))


def test_prompts_are_distinct_within_splits(suite):
    for split in ("base", "align"):
        demos = getattr(suite, split)
        assert len({d.prompt[0]["content"] for d in demos}) == len(demos)


def test_deterministic_for_a_seed_and_different_across_seeds(small):
    assert build_suite(SMALL).fingerprint() == small.fingerprint()
    other = build_suite(SMALL.model_copy(update={"seed": 1}))
    assert other.fingerprint() != small.fingerprint()
    assert first_turns(other, "test") != first_turns(small, "test")


def test_more_base_data_leaves_test_and_align_unchanged(small):
    bigger = build_suite(SMALL.model_copy(update={"n_base": 800}))
    assert bigger.test == small.test
    assert sorted(d.id for d in bigger.align) == sorted(d.id for d in small.align)


def test_one_domain_and_remainders():
    suite = build_suite(MiniSuiteConfig(n_base=10, n_align=3, n_test=5, domains=["code", "math"]))
    assert Counter(d.meta["domain"] for d in suite.base) == {"code": 5, "math": 5}
    assert Counter(d.meta["domain"] for d in suite.align) == {"code": 2, "math": 1}
    assert [item.domain for item in suite.test] == ["code"] * 3 + ["math"] * 2


def test_config_is_strict_and_frozen():
    with pytest.raises(ValidationError):
        MiniSuiteConfig(n_bse=3)
    with pytest.raises(ValidationError):
        MiniSuiteConfig(domains=["math", "poetry"])
    with pytest.raises(ValidationError):
        MiniSuiteConfig(math_min_steps=5, math_max_steps=3)
    with pytest.raises(ValidationError):
        MiniSuiteConfig().seed = 3


def test_exhausted_task_space_is_a_user_error():
    config = MiniSuiteConfig(n_base=100_000, n_align=0, n_test=0, domains=["code"])
    with pytest.raises(UserError, match="'code' domain has .* distinct tasks"):
        build_suite(config)


def test_every_demonstration_has_a_flawed_rejected_response(suite):
    for demo in [*suite.base, *suite.align]:
        assert demo.rejected and demo.rejected != demo.response, demo.id
        assert demo.prompt[-1]["role"] == "user"


def test_dialogue_demonstrations_train_both_turns(suite):
    lengths = Counter(len(d.prompt) for d in suite.base if d.meta["domain"] == "dialogue")
    assert lengths == {1: 1000, 3: 1000}


def test_all_text_is_training_text_and_test_questions_only(small):
    expected = []
    for demo in [*small.base, *small.align]:
        expected += [m["content"] for m in demo.prompt] + [demo.response, demo.rejected]
    expected += [turn for item in small.test for turn in item.turns]
    assert list(all_text(small)) == expected


def test_test_item_messages():
    item = TestItem("x", "dialogue", ["List 2 colours, one per line.", "Now reverse them."],
                    "blue\nred", {}, ["red\nblue", "blue\nred"])  # fmt: skip
    assert item.messages([]) == [{"role": "user", "content": "List 2 colours, one per line."}]
    assert [m["role"] for m in item.messages(["red\nblue"])] == ["user", "assistant", "user"]
    with pytest.raises(ValueError):
        item.messages(["a", "b"])


# ---------------------------------------------------------------- per domain


def _items(suite: MiniSuite, domain: str) -> list[TestItem]:
    return [item for item in suite.test if item.domain == domain]


def _demos(suite: MiniSuite, domain: str):
    return [d for d in suite.base if d.meta["domain"] == domain]


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
    for item in _items(suite, "math"):
        assert _check_chain(item.reference) == item.check["answer"]
        assert re.search(r"How many \w+ does \w+ have now\?$", item.turns[0])
    steps = Counter(d.meta["steps"] for d in _demos(suite, "math"))
    config = MiniSuiteConfig()
    assert set(steps) == set(range(config.math_min_steps, config.math_max_steps + 1))
    for demo in _demos(suite, "math"):
        right = int(demo.response.rsplit(" ", 1)[1])
        wrong = int(demo.rejected.rsplit(" ", 1)[1])
        assert right != wrong and wrong >= 1


def run_function(source: str, tests: str) -> bool:
    """Our own generated code only (references and their flawed twins), so exec is fine."""
    try:
        exec(source + "\n" + tests, {})
    except Exception:
        return False
    return True


def test_code_references_pass_and_every_flawed_twin_fails():
    # Over the whole task space, not a sample: a twin that passes would be a silent bug.
    import random

    for family, specs in minisuite_code.all_families().items():
        for spec in specs:
            task = minisuite_code._task(random.Random(0), family, spec)
            assert run_function(task.references[0], task.check["tests"]), spec.name
            assert not run_function(task.rejected[0], task.check["tests"]), spec.name


def test_code_items(suite):
    items = _items(suite, "code")
    assert len({item.meta["family"] for item in items}) >= 10
    for item in items:
        assert item.reference.startswith(f"def {item.check['entry_point']}(")
        assert item.check["tests"].count("assert") >= 2


def test_dialogue_references_meet_their_constraints(suite):
    for item in _items(suite, "dialogue"):
        assert len(item.turns) == 2 and len(item.check["constraints"]) == 2
        first, second = item.turn_references
        assert all(check_constraint(c, first, None) for c in item.check["constraints"][0])
        assert all(check_constraint(c, second, first) for c in item.check["constraints"][1])
    kinds = Counter(item.meta["kind"] for item in _items(suite, "dialogue"))
    assert set(kinds) == {"category", "count", "spell", "copy"}


def test_dialogue_kinds_have_the_same_mix_in_every_split(suite):
    assert interleaved({"a": 3, "b": 1}) == ["a", "a", "b", "a"]
    base = Counter(d.meta["kind"] for d in _demos(suite, "dialogue"))
    assert base == {"category": 300, "count": 500, "spell": 200, "copy": 1000}
    test = Counter(item.meta["kind"] for item in _items(suite, "dialogue"))
    assert test == {"category": 8, "count": 12, "spell": 5, "copy": 25}


def test_code_families_have_the_same_mix_in_every_split(suite):
    space = {f: len(specs) for f, specs in minisuite_code.all_families().items()}
    base = Counter(d.meta["family"] for d in _demos(suite, "code"))
    for family, size in space.items():
        # 2000 of ~3000 tasks drawn uniformly: each family's share within a few points.
        assert abs(base[family] / 2000 - size / sum(space.values())) < 0.03, family


def test_dialogue_rejected_responses_break_a_constraint(suite):
    import random

    from gsil_bench.data.minisuite_dialogue import _task

    rng = random.Random(3)
    for _ in range(300):
        task = _task(rng, rng.choice(["category", "count", "spell", "copy"]), 2, 5)
        first, second = task.rejected
        turn1, turn2 = task.check["constraints"]
        assert not all(check_constraint(c, first, None) for c in turn1)
        assert not all(check_constraint(c, second, task.references[0]) for c in turn2)


def test_dialogue_parsing_tolerates_bullets_and_full_stops():
    assert parse_items("- red\n- blue.\n", "line") == ["red", "blue"]
    assert parse_items("1. red\n2) blue", "line") == ["red", "blue"]
    assert parse_items("red, blue.", "comma") == ["red", "blue"]
    assert parse_items("  ", "comma") == []


def test_safety_items_are_balanced_and_references_right(suite):
    items = _items(suite, "safety")
    assert Counter(item.check["harmful"] for item in items) == {True: 25, False: 25}
    for item in items:
        assert is_refusal(item.reference) == item.check["harmful"]
    assert all(is_refusal(r) for r in REFUSALS)
    assert not any(is_refusal(answer) for answer in BENIGN.values())
    for demo in _demos(suite, "safety"):
        assert is_refusal(demo.response) != is_refusal(demo.rejected)
