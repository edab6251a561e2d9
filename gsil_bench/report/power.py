"""The instrument of a study, per benchmark metric: signal, noise, their ratio, and the minimum
detectable difference (DESIGN.md §11).

Definitions, in the spirit of Heineman et al. 2025 (*Signal and Noise*, arXiv 2508.13144) and
Miller 2024 (*Adding Error Bars to Evals*, arXiv 2411.00640, section 5 on power):

- **noise**: the standard deviation of one method's score across seeds, pooled over the methods
  (root of the mean variance, each weighted by its degrees of freedom n - 1): how far a rerun
  with another seed moves a score.
- **signal**: the standard deviation (ddof 1) of the method means. Heineman et al. use the range
  (max - min, scaled by the mean score); the range grows with the number of methods even when
  none differs (eight equal methods have a range of ~2.8 standard errors), the standard
  deviation does not, so a table of many rows is not credited with signal it lacks.
- **SNR** = signal / noise. Below 1 the methods' means spread less than one rerun moves a
  score: the benchmark "does not separate" the methods in this study.
- **MDE**: the smallest true difference between two methods that the study's test detects with
  80% power at two-sided alpha 0.05, from the noncentral t distribution (exact, not the normal
  approximation ``(t_{1-α/2} + t_{0.8}) · sd / sqrt(n)``): for the paired t-test over n seeds
  the noncentrality is ``δ / se`` with ``se^2 = sd_diff^2 / n`` and n - 1 degrees of freedom,
  ``sd_diff`` the standard deviation of the per-seed differences (pooled over the methods
  compared); unpaired, ``sd_diff = sqrt(2) · noise`` and 2n - 2 degrees of freedom. The
  test's item-level variance, when it has one, is added as the test adds it
  (:mod:`gsil_bench.report.runs`), so the MDE is that of the test the table prints.
- **seeds for the target MDE** (a power analysis for the next study, Miller 2024 section 5):
  the fewest seeds per method at which the same test, at the same spread, would detect
  ``TARGET_MDE``; the item-level part does not shrink with seeds, so when it alone puts the
  MDE above the target no number of seeds reaches it (``floor``: the MDE with unlimited seeds)
  and more items, not more seeds, are what the benchmark needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy import stats as sps

from gsil_bench.report.runs import PAIRED_T, WELCH_T, ItemVariance, combined_error

ALPHA = 0.05
POWER = 0.8
SEPARATES_AT = 1.0  # SNR below this: "does not separate"
TARGET_MDE = 0.05  # the difference a study should be able to see (issue 9), planned for
MAX_PLANNED_SEEDS = 64  # a plan past this many seeds is reported as "more than"


@dataclass(frozen=True)
class SeedPlan:
    """Seeds per method that the study's test needs for an MDE of at most ``target``.

    ``seeds`` is None when no count up to ``MAX_PLANNED_SEEDS`` is enough; ``floor`` is the
    MDE with unlimited seeds (the item-level part alone; 0 without one): above the target,
    only more items help.
    """

    target: float
    seeds: int | None
    floor: float


@dataclass(frozen=True)
class Instrument:
    """What one benchmark metric of a study can see. ``None`` where it cannot be measured
    (one method: no signal; one seed per method: no noise; no noise: no SNR or MDE)."""

    signal: float | None
    noise: float | None
    snr: float | None
    mde: float | None
    seeds: int
    items: int | None
    test: str  # "paired t" (pairs by seed) or "Welch t" (unpaired), what the MDE assumes
    sd_diff: float | None = None
    plan: SeedPlan | None = None  # seeds that would bring the MDE to TARGET_MDE

    @property
    def separates(self) -> bool | None:
        return None if self.snr is None else self.snr >= SEPARATES_AT


def power_of_t_test(noncentrality: float, df: float, alpha: float = ALPHA) -> float:
    """Power of the two-sided t-test at a true standardised effect (noncentrality)."""
    critical = float(sps.t.ppf(1 - alpha / 2, df))
    upper = float(sps.nct.sf(critical, df, noncentrality))
    # The far tail underflows to NaN in scipy for large noncentralities; it is 0 there.
    lower = float(np.nan_to_num(sps.nct.cdf(-critical, df, noncentrality)))
    return min(1.0, upper + lower)


def detectable_noncentrality(df: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """The noncentrality at which the two-sided t-test with ``df`` has the given power."""
    if df <= 0:
        raise ValueError("the t-test needs at least one degree of freedom")
    high = 1.0
    while power_of_t_test(high, df, alpha) < power:
        high *= 2.0
    return float(optimize.brentq(lambda x: power_of_t_test(x, df, alpha) - power, 0.0, high))


def minimum_detectable_difference(
    sd_diff: float,
    seeds: int,
    *,
    paired: bool = True,
    items: ItemVariance | None = None,
    alpha: float = ALPHA,
    power: float = POWER,
) -> float | None:
    """MDE of a comparison of two methods over ``seeds`` seeds each.

    ``sd_diff`` is the standard deviation of one seed's difference between the two methods:
    observed directly when paired, ``sqrt(2) · noise`` when not; ``items`` the item-level
    variance the test adds. None with fewer than 2 seeds, and None when no spread was
    measured at all (every difference equal): a plug-in MDE of 0 would claim that any
    difference is detectable.
    """
    if seeds < 2:
        return None
    run_df = seeds - 1.0 if paired else 2.0 * seeds - 2.0
    parts = [(sd_diff**2 / seeds, run_df)]
    if items is not None:
        parts.append((items.variance, items.df))
    error, df = combined_error(parts)
    if float(error) == 0.0:
        return None
    return detectable_noncentrality(float(df), alpha, power) * float(error)


def plan_seeds(
    sd_diff: float,
    *,
    paired: bool = True,
    items: ItemVariance | None = None,
    target: float = TARGET_MDE,
    most: int = MAX_PLANNED_SEEDS,
) -> SeedPlan:
    """The fewest seeds (2 to ``most``) whose MDE at this ``sd_diff`` and item variance is at
    most ``target``. The MDE falls as seeds are added (the run part shrinks as 1/n and the
    degrees of freedom grow), so the first count that meets the target is the answer."""
    floor = 0.0
    if items is not None and items.variance > 0:
        floor = detectable_noncentrality(items.df) * math.sqrt(items.variance)
    seeds = None
    if floor <= target:
        for n in range(2, most + 1):
            mde = minimum_detectable_difference(sd_diff, n, paired=paired, items=items)
            if mde is None or mde <= target:
                seeds = n
                break
    return SeedPlan(target, seeds, floor)


def pooled_sd(groups: Sequence[Sequence[float]]) -> float | None:
    """``sqrt(sum((n_i - 1) s_i^2) / sum(n_i - 1))`` over groups of at least 2 values."""
    usable = [np.asarray(g, dtype=float) for g in groups if len(g) >= 2]
    if not usable:
        return None
    squares = sum(float(((g - g.mean()) ** 2).sum()) for g in usable)
    return math.sqrt(squares / sum(g.size - 1 for g in usable))


def measure_instrument(
    method_means: Sequence[float],
    seed_scores: Sequence[Sequence[float]],
    paired_sds: Sequence[tuple[float, int]],
    *,
    seeds: int,
    items: int | None,
    item_variance: ItemVariance | None = None,
) -> Instrument:
    """The instrument of one column.

    ``method_means``: the mean over seeds of each method compared (the signal's spread);
    ``seed_scores``: per method, its per-seed scores (the noise); ``paired_sds``: per method
    compared with the baseline by the paired test, (standard deviation of its per-seed
    differences, number of pairs), pooled into ``sd_diff``; empty when nothing is paired, and
    then the MDE is that of the unpaired test. ``seeds``: the study's seeds per method;
    ``items``: items per run; ``item_variance``: the item-level variance the test adds.
    """
    signal = float(np.std(method_means, ddof=1)) if len(method_means) >= 2 else None
    noise = pooled_sd(seed_scores)
    snr = signal / noise if signal is not None and noise else None
    pooled_pairs = _pooled_from_sds(paired_sds)
    sd_diff: float | None
    if pooled_pairs is not None:
        sd_diff, test, paired = pooled_pairs, PAIRED_T, True
    else:
        sd_diff = None if noise is None else math.sqrt(2.0) * noise
        test, paired = WELCH_T, False
    mde = plan = None
    if sd_diff is not None:
        mde = minimum_detectable_difference(sd_diff, seeds, paired=paired, items=item_variance)
        if mde is not None:
            plan = plan_seeds(sd_diff, paired=paired, items=item_variance)
    return Instrument(signal, noise, snr, mde, seeds, items, test, sd_diff, plan)


def _pooled_from_sds(paired: Sequence[tuple[float, int]]) -> float | None:
    usable = [(sd, n) for sd, n in paired if n >= 2]
    if not usable:
        return None
    return math.sqrt(sum((n - 1) * sd**2 for sd, n in usable) / sum(n - 1 for _, n in usable))
