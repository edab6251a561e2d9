"""``truncate_responses``: a prefix of the words, never all of them, never none."""

from __future__ import annotations

from gsil_bench.data.quality.truncate_responses import truncate_text
from gsil_bench.data.transforms import DataQualityConfig


def test_truncate_keeps_a_prefix(run, make_demos, changed):
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
