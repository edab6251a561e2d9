"""The diagnostics of a run against its base model, on hand-made results and pairs."""

from __future__ import annotations

import pytest

from gsil_bench.data.records import Demonstration
from gsil_bench.experiment.controls import (
    heldout_logp_delta,
    identical_pair_share,
    moved_share,
    run_diagnostics,
)
from gsil_bench.experiment.pairs import build_pairs


def result(answers: dict[str, str | None], ref_logp: float | None = None) -> dict:
    items = [
        {"id": i, "score": 1.0, **({"answer_sha": a} if a else {})} for i, a in answers.items()
    ]
    metrics = {"accuracy": 1.0, **({"ref_logp": ref_logp} if ref_logp is not None else {})}
    return {"metrics": metrics, "items": items}


def test_moved_share_compares_answers_item_by_item():
    base = result({"a": "h1", "b": "h2", "c": "h3", "d": "h4", "e": "h5"})
    run = result({"d": "XX", "c": "h3", "b": "YY", "a": "h1", "e": None})
    # e carries no hash on the run's side: 4 items compared, b and d moved.
    assert moved_share(run, base) == pytest.approx(2 / 4)
    assert moved_share(run, None) is None
    assert moved_share(result({"a": None}), base) is None


def test_heldout_logp_delta_averages_the_domains_change():
    base = {"mini/math": result({}, -2.0), "mini/code": result({}, -1.0), "other": result({})}
    run = {"mini/math": result({}, -1.5), "mini/code": result({}, -1.3), "other": result({})}
    # (+0.5 + -0.3) / 2; "other" reports no ref_logp and is left out.
    assert heldout_logp_delta(run, base) == pytest.approx(0.1)
    assert heldout_logp_delta({"other": result({})}, base) is None


def test_identical_pairs_from_hand_made_pairs():
    demos = [
        Demonstration(id=str(i), prompt=[{"role": "user", "content": f"p{i}"}], response=f"r{i}")
        for i in range(4)
    ]
    round_1 = build_pairs(demos, ["r0", "x1", "r2", "r3"]).facts  # 3 of 4 identical
    round_2 = build_pairs(demos, ["r0", "x1", "x2", "x3"], drop_identical=True).facts  # 1 of 4
    assert (round_1["pairs"], round_2["pairs"]) == (4, 4)  # counted before any is dropped
    assert identical_pair_share([round_1]) == pytest.approx(3 / 4)
    assert identical_pair_share([round_1, round_2]) == pytest.approx(4 / 8)
    assert identical_pair_share([build_pairs(demos, None).facts]) is None  # no negatives


def test_run_diagnostics_leave_out_what_cannot_be_measured():
    base = {"mini/math": result({"a": "h1", "b": "h2"}, -2.0)}
    run = {"mini/math": result({"a": "h1", "b": "zz"}, -1.0)}
    rounds = [{"pairs": 10, "identical_negatives": 1}]
    assert run_diagnostics(run, base, rounds) == pytest.approx(
        {"moved_answers/mini/math": 0.5, "heldout_logp_delta": 1.0, "identical_pairs": 0.1}
    )
    # SFT (no negatives) and no evaluation: nothing to report.
    assert run_diagnostics({}, None, [{"length_policy": {}}]) == {}
