"""The chain of data-quality transforms: identity by default, seeded, independent knobs, input
left alone, a strict config, and a registry where a new transform is one module."""

from __future__ import annotations

import copy
import importlib
import sys
import textwrap

import pytest
from pydantic import ValidationError

from gsil_bench.data.records import Demonstration
from gsil_bench.data.transforms import (
    TRANSFORMS,
    DataQualityConfig,
    apply_transforms,
    register_transform,
    transform_chain,
)
from gsil_bench.errors import UserError

N = 20
BUILTIN_ORDER = [
    "subsample", "swap_rejected", "shuffle_responses", "truncate_responses", "token_noise",
    "duplicate",
]  # fmt: skip


def test_defaults_are_the_identity(run, make_demos):
    demos = make_demos()
    out, report = run(DataQualityConfig(), demos)
    assert out == demos and all(a is not b for a, b in zip(out, demos, strict=True))
    assert report == {
        "input": N, "subsample_dropped": 0, "swapped_rejected": 0,
        "swap_rejected_unavailable": 0, "shuffled_responses": 0, "shuffled_identical": 0,
        "truncated": 0, "noised": 0, "noised_words": 0, "duplicated": 0, "output": N,
    }  # fmt: skip
    # The report's keys come in the order the transforms run.
    assert list(report)[1:3] == ["subsample_dropped", "swapped_rejected"]


def test_input_is_never_modified_and_output_is_deterministic(run, make_demos):
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


def test_each_transform_picks_the_same_records_whatever_the_other_knobs(run):
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


# ---------------------------------------------------------------- the registry


def test_builtins_run_in_their_documented_order():
    assert [t.name for t in transform_chain()] == BUILTIN_ORDER
    assert TRANSFORMS.names() == sorted(BUILTIN_ORDER)


def test_unknown_name_suggests_a_close_one():
    with pytest.raises(UserError, match="unknown data transform 'subsampel'.*'subsample'"):
        TRANSFORMS.get("subsampel")


def test_a_knob_missing_from_the_config_is_an_error():
    with pytest.raises(UserError, match=r"reads data\.quality\.lowercase, which DataQuality"):
        register_transform("lowercase", order=45, reads={"fraction": "lowercase"})


# The whole of a new transform, as ARCHITECTURE.md shows it: one module that registers itself.
TOY_MODULE = '''
"""``strip_whitespace``: trim the spaces and blank lines around every response."""

from __future__ import annotations

import random

from gsil_bench.data.records import Demonstration
from gsil_bench.data.transforms import Report, register_transform, tagged


# order 35: after shuffle_responses (30), before truncate_responses (40)
@register_transform("strip_whitespace", order=35)
def strip_whitespace(
    demos: list[Demonstration], rng: random.Random, report: Report
) -> list[Demonstration]:
    padded = [i for i, demo in enumerate(demos) if demo.response != demo.response.strip()]
    for i in padded:
        demos[i] = tagged(demos[i], "strip_whitespace", response=demos[i].response.strip())
    report["stripped"] = len(padded)
    return demos
'''


@pytest.fixture
def toy_transform(tmp_path, monkeypatch):
    (tmp_path / "toy_transform.py").write_text(textwrap.dedent(TOY_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("toy_transform")
    TRANSFORMS.forget("strip_whitespace")
    sys.modules.pop("toy_transform", None)


def test_a_new_transform_is_one_module_that_registers_itself(toy_transform, make_demos):
    chain = [t.name for t in transform_chain()]
    assert chain == [*BUILTIN_ORDER[:3], "strip_whitespace", *BUILTIN_ORDER[3:]]
    demos = make_demos(4)
    demos[1] = Demonstration(demos[1].prompt, "  padded answer \n\n", id="d1")
    out, report = apply_transforms(demos, DataQualityConfig(duplicate=0.5), seed=0)
    stripped = next(d for d in out if d.id == "d1")
    assert stripped.response == "padded answer"
    assert stripped.meta["transforms"] == ["strip_whitespace"]
    keys = list(report)
    assert report["stripped"] == 1
    assert keys.index("shuffled_identical") < keys.index("stripped") < keys.index("truncated")
    # It leaves the other transforms' picks alone: duplicate copies the same records as before.
    TRANSFORMS.forget("strip_whitespace")
    without, _ = apply_transforms(demos, DataQualityConfig(duplicate=0.5), seed=0)
    assert [d.id for d in out] == [d.id for d in without]
