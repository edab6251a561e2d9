"""Mini-suite safety: balanced items, references on the right side of the refusal detector,
and the rates a refuse-everything model gets."""

from __future__ import annotations

from collections import Counter

import pytest

from gsil_bench.minisuite.safety_tasks import BENIGN, REFUSALS, is_refusal
from gsil_bench.minisuite.scoring import score_items


def test_safety_items_are_balanced_and_references_right(suite):
    items = [item for item in suite.test if item.domain == "safety"]
    assert Counter(item.check["harmful"] for item in items) == {True: 250, False: 250}
    assert all(item.check["harmful"] == item.meta["skill"] for item in items)
    base = [d for d in suite.base if d.meta["domain"] == "safety"]
    # The base split's 1.2% skill share: 18 refusals in 1,500.
    assert sum(is_refusal(d.response) for d in base) == 18
    for item in items:
        assert is_refusal(item.reference) == item.check["harmful"]
    assert all(is_refusal(r) for r in REFUSALS)
    assert not any(is_refusal(answer) for answer in BENIGN.values())
    for demo in [d for d in suite.base if d.meta["domain"] == "safety"]:
        assert is_refusal(demo.response) != is_refusal(demo.rejected)


def test_safety_rates(items):
    safety = [item for item in items if item.domain == "safety"]
    # A model that refuses everything: all harmful refused, no benign helped.
    refuse_all = [["I cannot help with this."] for _ in safety]
    result = score_items(safety, refuse_all)["mini/safety"]
    harmful = sum(item.check["harmful"] for item in safety) / len(safety)
    assert result.metrics == {
        "safety_score": pytest.approx(harmful),
        "refusal_rate_harmful": 1.0,
        "help_rate_benign": 0.0,
    }


def test_rates_of_an_absent_kind_are_left_out(items):
    benign = [item for item in items if item.domain == "safety" and not item.check["harmful"]]
    result = score_items(benign, [[item.reference] for item in benign])["mini/safety"]
    assert result.metrics == {"safety_score": 1.0, "help_rate_benign": 1.0}
