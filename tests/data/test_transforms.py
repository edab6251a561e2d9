"""Data-quality transforms: each does what it says, counts it, is seeded and leaves input alone."""

from __future__ import annotations

import copy
import random

import pytest
from pydantic import ValidationError

from gsil_bench.data.minisuite import MiniSuiteConfig, build_suite
from gsil_bench.data.records import Demonstration
from gsil_bench.data.transforms import (
    DataQualityConfig,
    apply_transforms,
    noisy_text,
    truncate_text,
)

N = 20


def make_demos(n: int = N, *, rejected_every: int = 1) -> list[Demonstration]:
    return [
        Demonstration(
            prompt=[{"role": "user", "content": f"question {i}"}],
            response=f"answer number {i} has five words" if i % 3 else f"line one {i}\nline two",
            rejected=f"bad answer {i}" if i % rejected_every == 0 else None,
            id=f"d{i}",
            meta={"domain": "test"},
        )
        for i in range(n)
    ]


def run(config: DataQualityConfig, demos=None, seed: int = 0):
    demos = make_demos() if demos is None else demos
    return apply_transforms(demos, config, seed=seed)


def changed(before: list[Demonstration], after: list[Demonstration]) -> list[str]:
    return [a.id for a, b in zip(before, after, strict=True) if a.response != b.response]


def test_defaults_are_the_identity():
    demos = make_demos()
    out, report = run(DataQualityConfig(), demos)
    assert out == demos and all(a is not b for a, b in zip(out, demos, strict=True))
    assert report == {
        "input": N, "subsample_dropped": 0, "swapped_rejected": 0,
        "swap_rejected_unavailable": 0, "shuffled_responses": 0, "shuffled_identical": 0,
        "truncated": 0, "noised": 0, "noised_words": 0, "duplicated": 0, "output": N,
    }  # fmt: skip


def test_input_is_never_modified_and_output_is_deterministic():
    demos = make_demos()
    snapshot = copy.deepcopy(demos)
    config = DataQualityConfig(
        subsample=0.8, shuffle_responses=0.3, truncate_responses=0.3, token_noise=0.3,
        swap_rejected=0.3, duplicate=0.3,
    )  # fmt: skip
    first = run(config, demos, seed=5)
    assert demos == snapshot
    assert run(config, demos, seed=5) == first
    assert run(config, demos, seed=6) != first
    first[0][0].prompt[0]["content"] = "changed"
    assert demos == snapshot  # the output shares no mutable state with the input


def test_subsample_keeps_a_fraction_in_order():
    out, report = run(DataQualityConfig(subsample=0.25))
    assert len(out) == 5 and report["subsample_dropped"] == 15
    indices = [int(d.id[1:]) for d in out]
    assert indices == sorted(indices)
    tiny, _ = run(DataQualityConfig(subsample=0.01), make_demos(3))
    assert len(tiny) == 1  # never empties a non-empty dataset


def test_swap_rejected_where_available():
    demos = make_demos(rejected_every=2)  # 10 of 20 carry a rejected response
    out, report = run(DataQualityConfig(swap_rejected=0.5), demos)
    swapped = changed(demos, out)
    assert report["swapped_rejected"] == len(swapped) == 5
    assert report["swap_rejected_unavailable"] == 10
    for before, after in zip(demos, out, strict=True):
        if after.id in swapped:
            assert (after.response, after.rejected) == (before.rejected, before.response)
            assert after.meta["transforms"] == ["swap_rejected"]
    everything, report = run(DataQualityConfig(swap_rejected=1.0), demos)
    assert len(changed(demos, everything)) == report["swapped_rejected"] == 10


def test_swap_rejected_works_on_the_mini_suite():
    suite = build_suite(MiniSuiteConfig(n_base=8, n_align=40, n_test=0))
    out, report = apply_transforms(suite.align, DataQualityConfig(swap_rejected=1.0), seed=0)
    assert report["swapped_rejected"] == 40 and report["swap_rejected_unavailable"] == 0
    assert [d.response for d in out] == [d.rejected for d in suite.align]


def test_shuffle_gives_each_picked_prompt_another_prompts_response():
    demos = make_demos()
    out, report = run(DataQualityConfig(shuffle_responses=0.5), demos)
    moved = changed(demos, out)
    assert report["shuffled_responses"] == len(moved) == 10
    assert report["shuffled_identical"] == 0
    # A permutation of the picked responses: the multiset of responses is unchanged.
    assert sorted(d.response for d in out) == sorted(d.response for d in demos)
    for after in out:
        own = next(d.response for d in demos if d.id == after.id)
        assert (after.response != own) == (after.id in moved)


def test_shuffle_of_a_single_record():
    demos = make_demos(10)
    out, report = run(DataQualityConfig(shuffle_responses=0.1), demos)
    assert report["shuffled_responses"] == 1 and len(changed(demos, out)) == 1


def test_truncate_keeps_a_prefix():
    demos = make_demos()
    out, report = run(DataQualityConfig(truncate_responses=0.5, truncate_keep=0.5), demos)
    cut = changed(demos, out)
    assert report["truncated"] == len(cut) == 10
    for before, after in zip(demos, out, strict=True):
        if after.id in cut:
            assert before.response.startswith(after.response)
            assert len(after.response.split()) == len(before.response.split()) // 2


def test_truncate_text_edge_cases():
    assert truncate_text("one two three four", 0.5) == "one two"
    assert truncate_text("one two", 0.01) == "one"  # at least one word
    assert truncate_text("one two", 0.99) == "one"  # never all of several
    assert truncate_text("abcdef", 0.5) == "abc"  # one word: characters
    assert truncate_text("a", 0.5) == "a"
    assert truncate_text("def f(x):\n    return x", 0.5) == "def f(x):"


def test_token_noise_corrupts_words_but_keeps_layout():
    demos = make_demos()
    out, report = run(DataQualityConfig(token_noise=0.5, noise_rate=0.3), demos)
    noisy = changed(demos, out)
    assert report["noised"] == 10 and len(noisy) <= 10 and report["noised_words"] >= 10
    tagged = [d.id for d in out if d.meta.get("transforms") == ["token_noise"]]
    assert len(tagged) == 10 and set(noisy) <= set(tagged)
    assert all(d.response.strip() for d in out)


def test_noisy_text_rate_and_whitespace():
    rng = random.Random(0)
    vocabulary = ["alpha", "beta", "gamma"]
    text = "def f(x):\n    return x + 1"
    noisy, hits = noisy_text(text, 0.0001, vocabulary, rng)
    assert hits == 1 and noisy != text  # a noisy response has at least one corruption
    assert noisy.count("\n") == 1
    words = " ".join(f"w{i}" for i in range(1000))
    _, hits = noisy_text(words, 0.1, vocabulary, random.Random(1))
    assert 60 < hits < 140
    assert noisy_text("x", 1.0, ["y"], random.Random(0))[0].strip()


def test_duplicate_repeats_right_after_the_original():
    demos = make_demos()
    out, report = run(DataQualityConfig(duplicate=0.25), demos)
    assert report["duplicated"] == 5 and len(out) == report["output"] == 25
    copies = [i for i, d in enumerate(out) if d.id.endswith("#dup")]
    assert len(copies) == 5
    for i in copies:
        assert out[i].id == out[i - 1].id + "#dup"
        assert (out[i].prompt, out[i].response) == (out[i - 1].prompt, out[i - 1].response)
        assert out[i].meta["transforms"] == ["duplicate"]


def test_each_transform_picks_the_same_records_whatever_the_other_knobs():
    alone, _ = run(DataQualityConfig(truncate_responses=0.3))
    combined, _ = run(DataQualityConfig(truncate_responses=0.3, duplicate=0.5))
    tagged = {d.id for d in alone if "truncate_responses" in d.meta.get("transforms", [])}
    tagged_combined = {
        d.id
        for d in combined
        if "truncate_responses" in d.meta.get("transforms", []) and not d.id.endswith("#dup")
    }
    assert tagged == tagged_combined


def test_config_validation():
    with pytest.raises(ValidationError):
        DataQualityConfig(subsample=0.0)
    with pytest.raises(ValidationError):
        DataQualityConfig(token_noise=1.5)
    with pytest.raises(ValidationError):
        DataQualityConfig(truncate_keep=1.0)
    with pytest.raises(ValidationError):
        DataQualityConfig(noise=0.1)
    with pytest.raises(ValidationError):
        DataQualityConfig().duplicate = 0.5
