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
    assert (len(suite.base), len(suite.align), len(suite.test)) == (8000, 1000, 200)
    assert Counter(d.meta["domain"] for d in suite.base) == dict.fromkeys(DOMAINS, 2000)
    assert Counter(d.meta["domain"] for d in suite.align) == dict.fromkeys(DOMAINS, 250)
    assert Counter(item.domain for item in suite.test) == dict.fromkeys(DOMAINS, 50)


def test_default_fingerprint_is_pinned(suite):
    # It keys the cached base model: this value was computed before the suite moved into its
    # own package, and a change here means every cached base model is silently rebuilt.
    assert suite.fingerprint() == "8ceaada2550700e65a3ec2d63188a78061dbf250650e1e36c8330120cea96dee"


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
