"""What the domains share: the test item's conversation and the averaging helper."""

from __future__ import annotations

import pytest

from gsil_bench.minisuite.task import TestItem, interleaved, is_kind_at, mean


def test_test_item_messages():
    item = TestItem("x", "dialogue", ["List 2 colours, one per line.", "Now reverse them."],
                    "blue\nred", {}, ["red\nblue", "blue\nred"])  # fmt: skip
    assert item.messages([]) == [{"role": "user", "content": "List 2 colours, one per line."}]
    assert [m["role"] for m in item.messages(["red\nblue"])] == ["user", "assistant", "user"]
    with pytest.raises(ValueError):
        item.messages(["a", "b"])


def test_interleaved_and_is_kind_at_keep_every_prefix_balanced():
    assert interleaved({"a": 3, "b": 1}) == ["a", "a", "b", "a"]
    assert [is_kind_at(i, 0.5) for i in range(4)] == [False, True, False, True]
    assert sum(is_kind_at(i, 0.25) for i in range(8)) == 2


def test_mean_of_nothing_is_zero():
    assert mean([]) == 0.0
    assert mean([1.0, 0.0, 0.5]) == 0.5
