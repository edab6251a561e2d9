"""Run-level comparison of a method with the baseline: the run (seed) is the unit of replication.

Why not the items: the items of one benchmark are shared by every run, and a run's training
(its base model, data order, sampled negatives) moves all of its item outcomes together. A test
over items treats that run-to-run spread as absent, so two runs of the *same* method under two
labels differ "significantly" far more often than 5% (Miller 2024, *Adding Error Bars to Evals*,
arXiv 2411.00640, section 2.2 on clustered errors; ``tests/report/test_power.py`` shows it).

The test: a **paired t-test over seeds** of the per-seed differences (each run's metric, the
method's minus the baseline's at the same seed). A method and the baseline run with one seed
share that seed's base model and data, so pairing by seed removes that shared part of the
noise (Miller 2024, section 4, paired differences).

- Why t and not an exact sign-flip over seeds: with n seeds a sign-flip test can never give a
  p-value below 2 / 2^n, i.e. 0.25 with 3 seeds and 0.0625 with 5, so it could never reach
  0.05 at the seed counts a study can afford. The t-test can, at the price of assuming roughly
  normal per-seed means (each is a mean over many items, so the central limit theorem helps).
- Seeds that do not match (a run failed, or another seed list): Welch's unpaired t-test over
  the two sets of per-seed scores.
- Item sampling: when the caller passes the item-level variance of the mean difference (from
  the seed-averaged item differences, see :func:`gsil_bench.report.stats.paired_comparison`),
  it is added to the run-level variance, with Welch-Satterthwaite degrees of freedom for the
  sum (DESIGN.md §11: "both go into the interval"). Both estimates hold the items' own
  Bernoulli noise, so the sum counts it twice: the test errs on the safe side. Seeds that
  change nothing (all per-seed differences equal) then fall back to the item-level t-test,
  instead of an infinite t statistic that would make any difference "significant".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from gsil_bench.report.stats import CONFIDENCE

PAIRED_T = "paired t"
WELCH_T = "Welch t"
# Below this relative size a standard error counts as zero (floating-point noise of equal values).
ZERO_SPREAD = 1e-12

ArrayLike = np.ndarray | float


@dataclass(frozen=True)
class RunComparison:
    """Method minus baseline over runs.

    ``difference`` is the mean of the per-seed differences (paired) or the difference of the
    two means over seeds (Welch); ``ci_low``/``ci_high`` its t interval; ``p_value`` two-sided
    (NaN when no spread at all was measured and the difference is not zero); ``seeds`` the
    number of pairs (paired) or of the method's seeds (Welch); ``test`` names which;
    ``standard_error`` and ``df`` are those of the t statistic, item sampling included;
    ``seed_sd`` the standard deviation of the per-seed differences (paired only: the
    ``sd_diff`` of a power analysis).
    """

    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    seeds: int
    test: str
    standard_error: float
    df: float
    seed_sd: float | None = None


@dataclass(frozen=True)
class ItemVariance:
    """Item-level variance of a mean difference (``standard_error**2`` of the item-level
    paired comparison) and its degrees of freedom (items - 1)."""

    variance: float
    df: float


def combined_error(parts: Sequence[tuple[ArrayLike, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Standard error and Welch-Satterthwaite degrees of freedom of a sum of independent
    variance estimates ``(variance, df)``: ``df = (sum v)^2 / sum(v^2 / df_i)``. Vectorised
    over the variances; where every variance is zero the df is that of the first part."""
    total = sum(np.asarray(v, dtype=float) for v, _ in parts)
    spread = sum(np.asarray(v, dtype=float) ** 2 / df for v, df in parts)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(spread > 0, total**2 / np.where(spread > 0, spread, 1.0), parts[0][1])
    return np.sqrt(np.asarray(total, dtype=float)), np.asarray(df, dtype=float)


def paired_t_test(
    differences: np.ndarray, items: ItemVariance | tuple[np.ndarray, float] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised paired t-test over the last axis (seeds): (mean, standard error, df, p).

    ``t = mean(d) / sqrt(sd(d)^2 / n + item variance)``, sd with ddof 1, n - 1 degrees of
    freedom without items and the Satterthwaite ones with. Shared by the report and the
    simulation tests, so that what the tests calibrate is what the tables print.
    """
    values = np.asarray(differences, dtype=float)
    n = values.shape[-1]
    if n < 2:
        raise ValueError("a paired t-test needs at least two seeds")
    means = values.mean(axis=-1)
    parts: list[tuple[ArrayLike, float]] = [(values.var(axis=-1, ddof=1) / n, n - 1.0)]
    if items is not None:
        parts.append(_item_part(items))
    errors, df = combined_error(parts)
    return np.asarray(means), errors, df, two_sided_p(np.asarray(means), errors, df)


def welch_t_test(
    method: Sequence[float], baseline: Sequence[float], items: ItemVariance | None = None
) -> tuple[float, float, float, float]:
    """Welch's unpaired t-test of two sets of per-seed scores: (difference, se, df, p)."""
    a, b = np.asarray(method, dtype=float), np.asarray(baseline, dtype=float)
    if a.size < 2 or b.size < 2:
        raise ValueError("Welch's t-test needs at least two seeds on each side")
    parts: list[tuple[ArrayLike, float]] = [
        (a.var(ddof=1) / a.size, a.size - 1.0),
        (b.var(ddof=1) / b.size, b.size - 1.0),
    ]
    if items is not None:
        parts.append(_item_part(items))
    error, df = combined_error(parts)
    difference = float(a.mean() - b.mean())
    p = two_sided_p(np.asarray(difference), np.asarray(error), np.asarray(df))
    return difference, float(error), float(df), float(p)


def run_level_comparison(
    method: Mapping[int, float],
    baseline: Mapping[int, float],
    *,
    items: ItemVariance | None = None,
    confidence: float = CONFIDENCE,
) -> RunComparison | None:
    """Compare per-seed scores (seed -> that run's metric); ``None`` when no test is possible.

    Paired over the seeds both sides ran when there are at least two; otherwise Welch over all
    seeds when each side has at least two; otherwise (a single run on one side) nothing.
    """
    shared = sorted(set(method) & set(baseline))
    if len(shared) >= 2:
        differences = np.array([float(method[s]) - float(baseline[s]) for s in shared])
        mean, error, df, p = (float(x) for x in paired_t_test(differences, items))
        test, seeds, seed_sd = PAIRED_T, len(shared), float(differences.std(ddof=1))
    elif len(method) >= 2 and len(baseline) >= 2:
        ours = [float(method[s]) for s in sorted(method)]
        theirs = [float(baseline[s]) for s in sorted(baseline)]
        mean, error, df, p = welch_t_test(ours, theirs, items)
        test, seeds, seed_sd = WELCH_T, len(method), None
    else:
        return None
    half = float(sps.t.ppf(0.5 + confidence / 2, df)) * error
    return RunComparison(mean, mean - half, mean + half, p, seeds, test, error, df, seed_sd)


def two_sided_p(means: np.ndarray, errors: np.ndarray, df: np.ndarray) -> np.ndarray:
    """``2 * P(T_df > |mean / error|)``; a zero error gives 1 for a zero mean, else NaN."""
    scale = np.maximum(np.abs(means), 1.0)
    zero_error = errors <= ZERO_SPREAD * scale
    statistic = np.abs(means) / np.where(zero_error, 1.0, errors)
    p = np.minimum(1.0, 2.0 * sps.t.sf(statistic, df))
    degenerate = np.where(np.abs(means) <= ZERO_SPREAD * scale, 1.0, np.nan)
    return np.where(zero_error, degenerate, p)


def _item_part(items: ItemVariance | tuple[np.ndarray, float]) -> tuple[ArrayLike, float]:
    if isinstance(items, ItemVariance):
        return items.variance, items.df
    variance, df = items
    return np.asarray(variance, dtype=float), float(df)


def item_variance(standard_error: float | None, items: int) -> ItemVariance | None:
    """The item part of a comparison from the item-level standard error; None without one."""
    if standard_error is None or items < 2 or not math.isfinite(standard_error):
        return None
    return ItemVariance(standard_error**2, items - 1.0)
