"""Statistics behind the report tables: intervals over seeds and the item-level paired test.

- *How much does a method's score move with the seed?* The mean over seeds of the per-seed
  scores with a Student-t 95% interval (:func:`mean_interval`): the run (seed) is the unit of
  replication, so the interval covers run-to-run variance (Miller 2024, arXiv 2411.00640).
  Seeds are few (2-5), so the t quantile, not 1.96.
- *Is method A better than the baseline?* That is a question about runs, answered by the
  run-level test of :mod:`gsil_bench.report.runs` (the † of the tables).
- *On these items, beyond item-sampling chance?* The item-level paired test
  (:func:`paired_comparison`) over items matched by id, each item's score first averaged over
  seeds (:func:`average_items`): a secondary column only. It ignores run-to-run variance, so on
  its own it is overconfident whenever seeds matter (``tests/report/test_power.py``); its
  standard error is also the floor under the run-level one.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

CONFIDENCE = 0.95
# Score differences that are multiples of 1/k for some k up to this bound get the exact test:
# 0/1 outcomes averaged over s seeds are multiples of 1/s, pass@1 from n samples of 1/(n*s).
MAX_LATTICE_DENOMINATOR = 1000
# Above this many operations the exact convolution is slower than it is worth; sample instead.
MAX_EXACT_WORK = 50_000_000
MONTE_CARLO_DRAWS = 20_000
MONTE_CARLO_SEED = 0


@dataclass(frozen=True)
class MeanInterval:
    """Mean over ``n`` seeds; ``half_width`` of the t interval, ``None`` when ``n == 1``
    (one seed says nothing about seed-to-seed spread, so no interval is made up)."""

    mean: float
    n: int
    half_width: float | None

    @property
    def low(self) -> float | None:
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self) -> float | None:
        return None if self.half_width is None else self.mean + self.half_width


@dataclass(frozen=True)
class PairedComparison:
    """Method minus baseline over ``n_items`` items matched by id.

    ``difference`` is the mean per-item difference (equal to the difference of the two
    item-mean scores); ``ci_low``/``ci_high`` its t interval (``None`` with fewer than two
    items); ``p_value`` the two-sided sign-flip test; ``exact`` False when it was sampled;
    ``standard_error`` the standard error of the mean item difference (``sd / sqrt(items)``,
    ``None`` with fewer than two items).
    """

    difference: float
    ci_low: float | None
    ci_high: float | None
    p_value: float
    n_items: int
    exact: bool
    standard_error: float | None = None


def mean(values: Collection[float]) -> float:
    """The arithmetic mean, ``sum / count``: the one mean the table, the objective and the sweep
    share, so that the same numbers give the same float everywhere."""
    if not values:
        raise ValueError("mean needs at least one value")
    return sum(values) / len(values)


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> MeanInterval:
    """Mean and Student-t interval: ``mean ± t_{(1+c)/2, n-1} * sd / sqrt(n)``, sd with n-1."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("mean_interval needs at least one value")
    mean = float(data.mean())
    if data.size == 1:
        return MeanInterval(mean, 1, None)
    quantile = float(sps.t.ppf(0.5 + confidence / 2, data.size - 1))
    half_width = quantile * float(data.std(ddof=1)) / math.sqrt(data.size)
    return MeanInterval(mean, int(data.size), half_width)


def average_items(runs: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Each item's score averaged over the runs (seeds) that scored it.

    Averaging before testing makes the item, not the (item, seed) pair, the unit of the test:
    the seeds of one method share its items, so treating them as independent would overstate
    the evidence.
    """
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    for run in runs:
        for item_id, score in run.items():
            totals[item_id] = totals.get(item_id, 0.0) + float(score)
            counts[item_id] = counts.get(item_id, 0) + 1
    return {item_id: totals[item_id] / counts[item_id] for item_id in sorted(totals)}


def paired_comparison(
    method: Mapping[str, float], baseline: Mapping[str, float], confidence: float = CONFIDENCE
) -> PairedComparison | None:
    """Paired comparison of per-item scores over the ids both sides have; ``None`` if none.

    Test: the paired permutation (sign-flip) test of the mean difference. Under the null
    hypothesis that the two methods are exchangeable on each item, each item's difference is
    as likely to have either sign, so the p-value is the share of the 2^m sign assignments whose
    |sum| reaches the observed one. Chosen over the alternatives because:

    - it is exact and assumes no distribution, unlike a paired t-test on 0/1 outcomes;
    - unlike McNemar's test it also applies once scores are averaged over seeds (multiples of
      1/s) or are graded (judge scores); on 0/1 outcomes from one seed it *is* the exact
      McNemar test (the concordant pairs have difference 0 and drop out; the discordant ones
      give a Binomial(b+c, 1/2) sum), see :func:`mcnemar_exact`;
    - unlike a bootstrap p-value it needs no resampling approximation when differences lie on
      a lattice, which is the usual case; then the null distribution is computed exactly by
      convolution. Only arbitrary real-valued differences fall back to Monte Carlo sign flips
      with a fixed seed, so the same records always give the same p-value.

    The interval is the t interval of the mean item difference (items are many, so the
    central limit theorem holds well; it can disagree with the p-value at the 0.05 edge).
    """
    ids = sorted(set(method) & set(baseline))
    if not ids:
        return None
    differences = np.array([float(method[i]) - float(baseline[i]) for i in ids])
    p_value, exact = sign_flip_p_value(differences)
    mean_diff = float(differences.mean())
    if differences.size < 2:
        return PairedComparison(mean_diff, None, None, p_value, 1, exact)
    interval = mean_interval(differences.tolist(), confidence)
    error = float(item_standard_error(differences))
    return PairedComparison(
        mean_diff, interval.low, interval.high, p_value, int(differences.size), exact, error
    )


def item_standard_error(differences: Sequence[float] | np.ndarray) -> np.ndarray | float:
    """``sd(d, ddof=1) / sqrt(m)`` over the last axis (items); vectorised for the simulations."""
    values = np.asarray(differences, dtype=float)
    errors = values.std(axis=-1, ddof=1) / math.sqrt(values.shape[-1])
    return float(errors) if errors.ndim == 0 else errors


def sign_flip_p_value(differences: Sequence[float] | np.ndarray) -> tuple[float, bool]:
    """Two-sided paired sign-flip p-value of ``sum(differences)``; returns (p, exact)."""
    values = np.asarray(differences, dtype=float)
    scale = max(1.0, float(np.abs(values).max(initial=0.0)))
    # Zero differences flip to themselves: they never change |sum| and are left out.
    values = values[np.abs(values) > 1e-12 * scale]
    if values.size == 0:
        return 1.0, True
    denominator = _lattice_denominator(values)
    if denominator is not None:
        steps = np.rint(values * denominator).astype(np.int64)
        work = steps.size * (2 * int(np.abs(steps).sum()) + 1)
        if work <= MAX_EXACT_WORK:
            return _exact_lattice_p(steps), True
    return _monte_carlo_p(values), False


def mcnemar_exact(only_method: int, only_baseline: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts ``b`` and ``c``:
    ``min(1, 2 * P(Binomial(b + c, 1/2) <= min(b, c)))``."""
    if only_method < 0 or only_baseline < 0:
        raise ValueError("discordant counts must be non-negative")
    discordant = only_method + only_baseline
    if discordant == 0:
        return 1.0
    tail = float(sps.binom.cdf(min(only_method, only_baseline), discordant, 0.5))
    return min(1.0, 2.0 * tail)


def _lattice_denominator(values: np.ndarray) -> int | None:
    """Smallest k with every value a multiple of 1/k (to 1e-6), or None."""
    for denominator in range(1, MAX_LATTICE_DENOMINATOR + 1):
        scaled = values * denominator
        if float(np.abs(scaled - np.rint(scaled)).max()) < 1e-6:
            return denominator
    return None


def _exact_lattice_p(steps: np.ndarray) -> float:
    """Exact null distribution of sum(±step) by convolving one item at a time."""
    total = int(np.abs(steps).sum())
    distribution = np.zeros(2 * total + 1)
    distribution[total] = 1.0  # index total is a sum of 0
    for step in np.abs(steps).tolist():
        flipped = np.zeros_like(distribution)
        flipped[step:] += distribution[:-step]
        flipped[:-step] += distribution[step:]
        distribution = 0.5 * flipped
    observed = abs(int(steps.sum()))
    sums = np.arange(-total, total + 1)
    return min(1.0, float(distribution[np.abs(sums) >= observed].sum()))


def _monte_carlo_p(values: np.ndarray) -> float:
    """Sampled sign flips; (hits + 1) / (draws + 1) so that the p-value is never 0."""
    rng = np.random.default_rng(MONTE_CARLO_SEED)
    observed = abs(float(values.sum()))
    tolerance = 1e-9 * float(np.abs(values).sum())
    chunk = max(1, min(MONTE_CARLO_DRAWS, 2_000_000 // values.size))
    hits = 0
    drawn = 0
    while drawn < MONTE_CARLO_DRAWS:
        rows = min(chunk, MONTE_CARLO_DRAWS - drawn)
        signs = rng.integers(0, 2, size=(rows, values.size)) * 2 - 1
        hits += int((np.abs(signs @ values) >= observed - tolerance).sum())
        drawn += rows
    return (hits + 1) / (MONTE_CARLO_DRAWS + 1)
