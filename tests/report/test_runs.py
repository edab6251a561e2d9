"""The run-level test, checked against hand arithmetic and scipy's own t-tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from gsil_bench.report.runs import (
    PAIRED_T,
    WELCH_T,
    ItemVariance,
    combined_error,
    item_variance,
    paired_t_test,
    run_level_comparison,
)


def test_paired_t_by_hand_three_seeds() -> None:
    """Differences 0.1, 0.2, 0.3 (method 0.5, 0.7, 0.9 vs baseline 0.4, 0.5, 0.6): mean 0.2,
    sd 0.1, se 0.1 / sqrt(3) = 0.057735, t = 3.4641 on 2 df. With 2 df the two-sided p has a
    closed form, 1 - t / sqrt(t^2 + 2) = 1 - 3.4641 / 3.7417 = 0.0742."""
    method = {0: 0.5, 1: 0.7, 2: 0.9}
    baseline = {2: 0.6, 0: 0.4, 1: 0.5}  # paired by seed, not by position
    result = run_level_comparison(method, baseline)
    assert result is not None
    assert result.test == PAIRED_T and result.seeds == 3 and result.df == 2
    assert result.difference == pytest.approx(0.2)
    assert result.standard_error == pytest.approx(0.1 / math.sqrt(3))
    t = 0.2 / (0.1 / math.sqrt(3))
    assert result.p_value == pytest.approx(1 - t / math.sqrt(t**2 + 2))
    assert result.p_value == pytest.approx(0.0742, abs=5e-4)
    reference = sps.ttest_rel([0.5, 0.7, 0.9], [0.4, 0.5, 0.6])
    assert result.p_value == pytest.approx(reference.pvalue)
    half = 4.302653 * 0.1 / math.sqrt(3)  # t_{0.975,2} from tables
    assert result.ci_low == pytest.approx(0.2 - half, abs=1e-6)
    assert result.ci_high == pytest.approx(0.2 + half, abs=1e-6)
    assert result.seed_sd == pytest.approx(0.1)


def test_unmatched_seeds_fall_back_to_welch() -> None:
    """One shared seed only: Welch over all seeds, as scipy computes it."""
    method = {0: 0.50, 1: 0.60, 2: 0.55}
    baseline = {2: 0.40, 3: 0.45, 4: 0.35}
    result = run_level_comparison(method, baseline)
    reference = sps.ttest_ind([0.50, 0.60, 0.55], [0.40, 0.45, 0.35], equal_var=False)
    assert result is not None and result.test == WELCH_T and result.seed_sd is None
    assert result.difference == pytest.approx(0.15)
    assert result.p_value == pytest.approx(reference.pvalue)
    # Equal variances 0.0025 and n = 3 on both sides: the Welch df is 2 + 2 = 4.
    assert result.df == pytest.approx(4.0)


def test_a_single_run_on_one_side_gives_no_test() -> None:
    assert run_level_comparison({0: 0.5}, {0: 0.4, 1: 0.3}) is None
    assert run_level_comparison({0: 0.5, 1: 0.6}, {2: 0.4}) is None


def test_item_variance_is_added_with_satterthwaite_df() -> None:
    """Run variance 0.01 / 3 (sd 0.1, 3 seeds, 2 df) plus item variance 0.002 on 49 df:
    se = sqrt(0.0033333 + 0.002) = 0.073030;
    df = 0.0053333^2 / (0.0033333^2 / 2 + 0.002^2 / 49) = 2.8444e-5 / 5.6372e-6 = 5.0458."""
    items = ItemVariance(0.002, 49.0)
    result = run_level_comparison({0: 0.5, 1: 0.7, 2: 0.9}, {0: 0.4, 1: 0.5, 2: 0.6}, items=items)
    assert result is not None
    assert result.standard_error == pytest.approx(0.073030, abs=1e-6)
    assert result.df == pytest.approx(5.0458, abs=1e-3)
    assert result.p_value == pytest.approx(2 * sps.t.sf(0.2 / 0.073030, 5.0458), rel=1e-4)


def test_seeds_that_change_nothing_fall_back_to_the_item_level_t() -> None:
    """Per-seed differences all 0.3: no run spread, so without items there is no test (NaN,
    never a †), and with items the test is the item-level t on the items' df."""
    method, baseline = {0: 0.8, 1: 0.8, 2: 0.8}, {0: 0.5, 1: 0.5, 2: 0.5}
    bare = run_level_comparison(method, baseline)
    assert bare is not None and math.isnan(bare.p_value)
    result = run_level_comparison(method, baseline, items=ItemVariance(0.01, 19.0))
    assert result is not None and result.df == pytest.approx(19.0)
    assert result.p_value == pytest.approx(2 * sps.t.sf(0.3 / 0.1, 19))
    same = run_level_comparison(baseline, dict(baseline))
    assert same is not None and same.p_value == 1.0


def test_combined_error_is_vectorised() -> None:
    """Two studies at once; the second has no spread at all and keeps the first part's df."""
    error, df = combined_error([(np.array([0.01, 0.0]), 4.0), (np.array([0.01, 0.0]), 4.0)])
    assert error == pytest.approx([math.sqrt(0.02), 0.0])
    assert df == pytest.approx([8.0, 4.0])  # equal parts: df adds up


def test_paired_t_test_rows_match_scipy() -> None:
    rng = np.random.default_rng(5)
    differences = rng.normal(0.02, 0.05, size=(4, 5))
    _, _, df, p = paired_t_test(differences)
    assert df == pytest.approx([4.0] * 4)
    assert p == pytest.approx([sps.ttest_1samp(row, 0.0).pvalue for row in differences])
    with pytest.raises(ValueError):
        paired_t_test(np.array([0.1]))


def test_item_variance_from_the_item_level_standard_error() -> None:
    assert item_variance(0.1, 20) == ItemVariance(pytest.approx(0.01), 19.0)
    assert item_variance(None, 20) is None and item_variance(0.1, 1) is None
