"""The mini suite: sizes, determinism, disjoint splits, and a fingerprint that stays put."""

from __future__ import annotations

from collections import Counter

import pytest

from gsil_bench.data.records import Demonstration
from gsil_bench.errors import UserError
from gsil_bench.minisuite.config import DOMAINS, MiniSuiteConfig
from gsil_bench.minisuite.suite import (
    MiniSuite,
    all_text,
    build_suite,
    records_digest,
    shared_suite,
)

SMALL = MiniSuiteConfig(n_base=400, n_align=80, n_test=40)


@pytest.fixture(scope="module")
def small() -> MiniSuite:
    return build_suite(SMALL)


def first_turns(suite: MiniSuite, split: str) -> set[str]:
    if split == "test":
        return {item.turns[0] for item in suite.test}
    return {demo.prompt[0]["content"] for demo in getattr(suite, split)}


def test_default_sizes_are_balanced(suite):
    assert (len(suite.base), len(suite.align), len(suite.test)) == (6000, 1000, 2000)
    assert Counter(d.meta["domain"] for d in suite.base) == dict.fromkeys(DOMAINS, 1500)
    assert Counter(d.meta["domain"] for d in suite.align) == dict.fromkeys(DOMAINS, 250)
    assert Counter(item.domain for item in suite.test) == dict.fromkeys(DOMAINS, 500)


def test_skill_is_rare_in_base_and_half_of_align_and_test(suite):
    # Defaults: skill_share 0.5 (align and test), base shares math 6%, code 3%, dialogue 8%,
    # safety 1.2% of the 1,500 base tasks, spread evenly.
    in_base = {"math": 90, "code": 45, "dialogue": 120, "safety": 18}
    for domain in DOMAINS:
        base = [d.meta["skill"] for d in suite.base if d.meta["domain"] == domain]
        align = [d.meta["skill"] for d in suite.align if d.meta["domain"] == domain]
        test = [item.meta["skill"] for item in suite.test if item.domain == domain]
        assert (sum(base), sum(align), sum(test)) == (in_base[domain], 125, 250)


def test_heldout_wordings_are_in_the_test_split_only(suite):
    for domain in DOMAINS:
        test = [item for item in suite.test if item.domain == domain]
        # A quarter of the skill items and a quarter of the others (250 each: 62 and 62).
        assert sum(i.meta["heldout"] for i in test if i.meta["skill"]) == 62
        assert sum(i.meta["heldout"] for i in test if not i.meta["skill"]) == 62
    assert not any(d.meta["heldout"] for d in [*suite.base, *suite.align])


def test_default_fingerprint_is_pinned(suite):
    # It keys the cached base model: this value was computed when the suite was redesigned
    # (alignment skills, held-out wordings, 500 test items per domain) and last changed with
    # safety's base share (0.005 -> 0.012); a change here means every cached base model is
    # silently rebuilt and committed results no longer match.
    assert suite.fingerprint() == "d2c9d685ea5811064da73365fb26420349d5849c1134a090a12a33a49fdc6aaf"


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


def test_shared_suite_is_built_once_per_config(small):
    assert shared_suite(SMALL) is shared_suite(MiniSuiteConfig(n_base=400, n_align=80, n_test=40))
    assert shared_suite(SMALL).fingerprint() == small.fingerprint()


def test_more_base_data_leaves_test_and_align_unchanged(small):
    bigger = build_suite(SMALL.model_copy(update={"n_base": 800}))
    assert bigger.test == small.test
    assert sorted(d.id for d in bigger.align) == sorted(d.id for d in small.align)


def test_one_domain_and_remainders():
    suite = build_suite(MiniSuiteConfig(n_base=10, n_align=3, n_test=5, domains=["code", "math"]))
    assert Counter(d.meta["domain"] for d in suite.base) == {"code": 5, "math": 5}
    assert Counter(d.meta["domain"] for d in suite.align) == {"code": 2, "math": 1}
    assert [item.domain for item in suite.test] == ["code"] * 3 + ["math"] * 2


def test_exhausted_task_space_is_a_user_error():
    config = MiniSuiteConfig(n_base=100_000, n_align=0, n_test=0, domains=["code"])
    with pytest.raises(UserError, match="'code' domain has .* tasks left for its base split"):
        build_suite(config)


def test_every_demonstration_has_a_flawed_rejected_response(suite):
    for demo in [*suite.base, *suite.align]:
        assert demo.rejected and demo.rejected != demo.response, demo.id
        assert demo.prompt[-1]["role"] == "user"


def test_dialogue_demonstrations_train_both_turns(suite):
    lengths = Counter(len(d.prompt) for d in suite.base if d.meta["domain"] == "dialogue")
    assert lengths == {1: 750, 3: 750}


def test_all_text_is_training_text_and_test_questions_only(small):
    expected = []
    for demo in [*small.base, *small.align]:
        expected += [m["content"] for m in demo.prompt] + [demo.response, demo.rejected]
    expected += [turn for item in small.test for turn in item.turns]
    assert list(all_text(small)) == expected


# ---------------------------------------------------------------- the records digest


def demo(response: str = "r", **changes) -> Demonstration:
    fields = {"prompt": [{"role": "user", "content": "p"}], "response": response, "id": "a"}
    return Demonstration(**{**fields, **changes})


def test_records_digest_is_content_ids_and_order_but_not_meta():
    a, b = demo("one"), demo("two")
    assert records_digest([a, b]) == records_digest([demo("one"), b])
    assert records_digest([a, b]) != records_digest([b, a])
    assert records_digest([a]) != records_digest([demo("one", rejected="x")])
    moved = demo("one", meta={"source": "elsewhere.jsonl:1"})
    assert records_digest([a]) == records_digest([moved])
    assert records_digest([a]) != records_digest([demo("one", id="b")])
    assert len(records_digest([])) == 64


def test_records_digest_bytes():
    import hashlib

    # The exact bytes hashed, written out by hand: JSON of [id, prompt, response, rejected]
    # with sorted keys and raw UTF-8, one line per record.
    line = '["a", [{"content": "p", "role": "user"}], "caf\u00e9", null]\n'
    assert records_digest([demo("caf\u00e9")]) == hashlib.sha256(line.encode()).hexdigest()
