"""Statistics checked against values worked out by hand (the arithmetic is in each docstring)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from gsil_bench.report.stats import (
    average_items,
    mcnemar_exact,
    mean,
    mean_interval,
    paired_comparison,
    sign_flip_p_value,
)


def brute_force_sign_flip(differences: list[float]) -> float:
    """All 2^m sign assignments, counted directly: the definition of the test."""
    observed = abs(sum(differences))
    hits = 0
    signs = list(itertools.product((1, -1), repeat=len(differences)))
    for pattern in signs:
        total = sum(s * d for s, d in zip(pattern, differences, strict=True))
        hits += abs(total) >= observed - 1e-12
    return hits / len(signs)


def test_t_interval_three_seeds_by_hand() -> None:
    """0.5, 0.6, 0.7: mean 0.6, sd 0.1, t_{0.975,2} = 4.302653 (tables: 4.303),
    half-width = 4.302653 * 0.1 / sqrt(3) = 0.248414."""
    result = mean_interval([0.5, 0.6, 0.7])
    assert result.mean == pytest.approx(0.6)
    assert result.n == 3
    assert result.half_width == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-6)
    assert result.half_width == pytest.approx(0.248414, abs=1e-6)
    assert result.low == pytest.approx(0.6 - 0.248414, abs=1e-6)
    assert result.high == pytest.approx(0.6 + 0.248414, abs=1e-6)


def test_t_interval_two_seeds_uses_wide_quantile() -> None:
    """0.4, 0.3: sd = 0.0707107, t_{0.975,1} = 12.7062, half-width = 12.7062 * 0.05 = 0.63531."""
    result = mean_interval([0.4, 0.3])
    assert result.mean == pytest.approx(0.35)
    assert result.half_width == pytest.approx(0.635310, abs=1e-5)
    assert result.half_width == pytest.approx(
        sps.t.ppf(0.975, 1) * np.std([0.4, 0.3], ddof=1) / math.sqrt(2)
    )


def test_single_seed_has_no_interval() -> None:
    result = mean_interval([0.41])
    assert result.mean == 0.41 and result.n == 1
    assert result.half_width is None and result.low is None and result.high is None


def test_empty_values_are_an_error() -> None:
    with pytest.raises(ValueError):
        mean_interval([])


def test_sign_flip_tiny_case_enumerated_by_hand() -> None:
    """d = (3, 1, -1), sum 3. The 8 sums of ±3±1±1 are 5, 3, 3, 1, -1, -3, -3, -5;
    six have |sum| >= 3, so p = 6/8 = 0.75."""
    p, exact = sign_flip_p_value([3.0, 1.0, -1.0])
    assert exact and p == pytest.approx(0.75)


def test_sign_flip_all_same_sign() -> None:
    """Four positive differences: only all-plus and all-minus reach |sum|, p = 2/16."""
    p, exact = sign_flip_p_value([0.5, 1.0, 1.5, 2.0])
    assert exact and p == pytest.approx(0.125)


def test_sign_flip_zero_differences_drop_out() -> None:
    assert sign_flip_p_value([0.0, 0.0]) == (1.0, True)
    assert sign_flip_p_value([1.0, 0.0, 0.0]) == (pytest.approx(1.0), True)


@pytest.mark.parametrize(
    "differences",
    [
        [1 / 3, 2 / 3, 1, 1, -1, -1 / 3, 2 / 3],
        [0.25, -0.5, 0.75, 1.0, 0.25, 0.5, -0.25, 1.0, 0.5],
        [2, -1, 3, 1, 1, -2, 4],
    ],
)
def test_sign_flip_exact_matches_brute_force(differences: list[float]) -> None:
    p, exact = sign_flip_p_value(differences)
    assert exact
    assert p == pytest.approx(brute_force_sign_flip(differences), abs=1e-12)


def test_sign_flip_monte_carlo_for_real_valued_differences() -> None:
    differences = [
        0.1 * math.sqrt(2),
        0.7,
        math.pi / 10,
        -0.3 * math.e,
        0.9,
        0.05 * math.sqrt(3),
        -0.2,
        0.33 * math.pi,
        0.6 * math.sqrt(5),
        0.123456789,
    ]
    p, exact = sign_flip_p_value(differences)
    assert not exact
    # 20,000 draws: the standard error is below 0.0035, so 0.015 is over four of them.
    assert p == pytest.approx(brute_force_sign_flip(differences), abs=0.015)
    assert sign_flip_p_value(differences) == (p, False)  # fixed seed: same p every time


@pytest.mark.parametrize(
    ("b", "c", "expected"),
    [
        (1, 9, 22 / 1024),  # 2 * (C(10,0) + C(10,1)) / 2^10
        (2, 8, 112 / 1024),  # 2 * (1 + 10 + 45) / 2^10
        (0, 5, 2 / 32),  # 2 * 1 / 2^5
        (4, 4, 1.0),
        (0, 0, 1.0),
    ],
)
def test_mcnemar_exact_known_values(b: int, c: int, expected: float) -> None:
    assert mcnemar_exact(b, c) == pytest.approx(expected)


def test_mcnemar_negative_counts_rejected() -> None:
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


@pytest.mark.parametrize(("b", "c"), [(1, 9), (5, 20), (30, 12)])
def test_sign_flip_on_binary_outcomes_is_exact_mcnemar(b: int, c: int) -> None:
    """One seed, 0/1 outcomes: b items only the method solves, c only the baseline, and some
    that both or neither solve (difference 0)."""
    differences = [1.0] * b + [-1.0] * c + [0.0] * 7
    p, exact = sign_flip_p_value(differences)
    assert exact
    assert p == pytest.approx(mcnemar_exact(b, c), rel=1e-9)
    assert p == pytest.approx(sps.binomtest(b, b + c, 0.5).pvalue, rel=1e-9)


def test_average_items_over_seeds() -> None:
    runs = [{"a": 1.0, "b": 0.0}, {"a": 1.0, "b": 1.0}, {"a": 0.0, "b": 1.0, "c": 1.0}]
    assert average_items(runs) == pytest.approx({"a": 2 / 3, "b": 2 / 3, "c": 1.0})
    assert list(average_items(runs)) == ["a", "b", "c"]


def test_paired_comparison_matches_ids_and_hand_values() -> None:
    """Differences over the shared ids x1..x4: 1, 1, 0, 1/2 (x5 has no partner).
    Mean 0.625; the exact sign-flip p over the three non-zero ones is 2/8 = 0.25."""
    method = {"x1": 1.0, "x2": 1.0, "x3": 0.0, "x4": 1.0, "x5": 1.0}
    baseline = {"x4": 0.5, "x3": 0.0, "x2": 0.0, "x1": 0.0}
    result = paired_comparison(method, baseline)
    assert result is not None
    assert result.n_items == 4
    assert result.difference == pytest.approx(0.625)
    assert result.p_value == pytest.approx(0.25)
    assert result.exact
    half = sps.t.ppf(0.975, 3) * np.std([1, 1, 0, 0.5], ddof=1) / 2
    assert result.ci_low == pytest.approx(0.625 - half)
    assert result.ci_high == pytest.approx(0.625 + half)


def test_paired_comparison_without_shared_items() -> None:
    assert paired_comparison({"a": 1.0}, {"b": 1.0}) is None


def test_paired_comparison_one_item_has_no_interval() -> None:
    result = paired_comparison({"a": 1.0}, {"a": 0.0})
    assert result is not None and result.ci_low is None and result.p_value == pytest.approx(1.0)


def test_mean_is_sum_over_count() -> None:
    """(0.5 + 0.25 + 0.75) / 3 = 0.5; no values is an error, not a silent 0."""
    assert mean([0.5, 0.25, 0.75]) == 0.5
    with pytest.raises(ValueError):
        mean([])
