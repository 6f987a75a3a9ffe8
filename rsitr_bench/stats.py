"""Statistics for comparing methods over seeds and test images.

Two sources of variation are tested separately:

- seeds (training randomness): a paired t-test and a Wilcoxon signed-rank test over the
  per-seed mR differences, pairing runs of two methods by seed.
- test images (which test set was drawn): a paired bootstrap that resamples test images,
  each with all its captions, and recomputes mR for both methods on the same resample.

``holm`` adjusts a family of p-values for multiple comparisons.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from rsitr_bench.metrics import RECALL_KS

_logger = logging.getLogger(__name__)

DEFAULT_CONFIDENCE = 0.95
DEFAULT_BOOTSTRAP_RESAMPLES = 5000
DEFAULT_BOOTSTRAP_SEED = 0
_BOOTSTRAP_CHUNK = 500
"""Resamples drawn at once. Each array of one chunk takes about chunk x images x 8 bytes."""


@dataclass(frozen=True)
class Summary:
    """Mean and sample standard deviation (ddof=1) of values over seeds."""

    n: int
    mean: float
    std: float | None
    """None with fewer than two values."""


def summarize(values: Sequence[float]) -> Summary:
    """Return the mean and the sample standard deviation (ddof=1) of ``values``."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        raise ValueError("cannot summarize zero values")
    std = float(array.std(ddof=1)) if array.size > 1 else None
    return Summary(n=int(array.size), mean=float(array.mean()), std=std)


@dataclass(frozen=True)
class Interval:
    """A confidence interval around an estimate."""

    estimate: float
    low: float | None
    high: float | None
    """``low`` and ``high`` are None when the interval cannot be computed (n < 2)."""


def mean_confidence_interval(values: Sequence[float], confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """Return the mean with its t-distribution confidence interval (n - 1 degrees of freedom)."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        raise ValueError("cannot compute a confidence interval over zero values")
    mean = float(array.mean())
    if array.size < 2:
        return Interval(mean, None, None)
    half_width = scipy_stats.t.ppf(0.5 + confidence / 2, df=array.size - 1) * array.std(ddof=1) / math.sqrt(array.size)
    return Interval(mean, float(mean - half_width), float(mean + half_width))


@dataclass(frozen=True)
class TestResult:
    """The outcome of one test: a p-value, or None with a note giving the reason."""

    p_value: float | None
    statistic: float | None = None
    note: str | None = None


def paired_t_test(treatment: Sequence[float], reference: Sequence[float]) -> TestResult:
    """Two-sided paired t-test of ``treatment - reference`` (scipy.stats.ttest_rel)."""
    treatment_array, reference_array = _paired_arrays(treatment, reference)
    if treatment_array.size < 2:
        return TestResult(None, note=f"n={treatment_array.size} pair: the t-test needs at least 2")
    differences = treatment_array - reference_array
    if np.all(differences == differences[0]):
        # The differences have zero spread, so ttest_rel returns p = nan when they are all
        # zero and p = 0 (t = ±inf) otherwise (scipy 1.17). Neither is a meaningful test.
        return TestResult(None, note="the differences are identical for every seed, so the t-test is undefined")
    result = scipy_stats.ttest_rel(treatment_array, reference_array)
    return TestResult(float(result.pvalue), statistic=float(result.statistic))


def wilcoxon_min_p_value(n: int) -> float:
    """Return the smallest two-sided exact p-value of the Wilcoxon signed-rank test with n pairs.

    The most extreme outcome (all differences of one sign) has probability 1 / 2**n under
    the null hypothesis, and the two-sided p-value doubles it.
    """
    return min(1.0, 2.0 / 2**n)


def min_pairs_for_wilcoxon(alpha: float = 0.05) -> int:
    """Return the fewest pairs with which a two-sided Wilcoxon test can reach p < ``alpha``."""
    n = 1
    while wilcoxon_min_p_value(n) >= alpha:
        n += 1
    return n


def wilcoxon_test(treatment: Sequence[float], reference: Sequence[float], alpha: float = 0.05) -> TestResult:
    """Two-sided Wilcoxon signed-rank test (scipy.stats.wilcoxon), or a note when it cannot reach ``alpha``."""
    treatment_array, reference_array = _paired_arrays(treatment, reference)
    n = treatment_array.size
    needed = min_pairs_for_wilcoxon(alpha)
    if n < needed:
        return TestResult(
            None,
            note=f"n={n} seeds: Wilcoxon cannot reach p<{alpha:g}, because its smallest two-sided p is "
            f"{wilcoxon_min_p_value(n):.4g}. It needs {needed} seeds",
        )
    differences = treatment_array - reference_array
    if np.all(differences == 0):
        return TestResult(None, note="all differences are zero, so the Wilcoxon test is undefined")
    result = scipy_stats.wilcoxon(treatment_array, reference_array)
    return TestResult(float(result.pvalue), statistic=float(result.statistic))


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Return Holm-adjusted p-values (step-down, controls the family-wise error rate).

    Sorted ascending, the i-th smallest of m p-values (i from 0) is multiplied by m - i.
    A running maximum keeps the adjusted values monotone, and each is capped at 1. None
    entries are not tests, so they stay None and do not count towards m. Raises ValueError
    for a p-value outside [0, 1] or NaN.
    """
    indexed = [(p, i) for i, p in enumerate(p_values) if p is not None]
    for p, _ in indexed:
        if not 0.0 <= p <= 1.0 or math.isnan(p):
            raise ValueError(f"invalid p-value {p!r}: expected a number in [0, 1]")
    m = len(indexed)
    adjusted: list[float | None] = [None] * len(p_values)
    running_max = 0.0
    for rank, (p, index) in enumerate(sorted(indexed)):
        running_max = max(running_max, min(1.0, (m - rank) * p))
        adjusted[index] = running_max
    return adjusted


@dataclass(frozen=True)
class RankSet:
    """Test ranks of one run: 0-based rank per image query (i2t) and per caption query (t2i)."""

    i2t: np.ndarray
    t2i: np.ndarray
    caption_image: np.ndarray
    """Image index of each test caption, aligned with ``t2i``."""

    @classmethod
    def from_lists(cls, i2t: Sequence[int], t2i: Sequence[int], caption_image: Sequence[int]) -> "RankSet":
        ranks = cls(np.asarray(i2t, dtype=np.int64), np.asarray(t2i, dtype=np.int64), np.asarray(caption_image, dtype=np.int64))
        if ranks.t2i.shape != ranks.caption_image.shape:
            raise ValueError(
                f"{ranks.t2i.size} t2i ranks but {ranks.caption_image.size} caption_image entries. "
                "Both must have one entry per test caption"
            )
        if ranks.caption_image.size and (ranks.caption_image.min() < 0 or ranks.caption_image.max() >= ranks.i2t.size):
            raise ValueError(f"caption_image refers to images outside 0..{ranks.i2t.size - 1}")
        return ranks


def _per_image_hits(ranks: RankSet) -> np.ndarray:
    """Return [images, 6]: i2t hit (0/1) at each K, then the number of t2i hits of the image's captions at each K."""
    num_images = ranks.i2t.size
    columns = [(ranks.i2t < k).astype(float) for k in RECALL_KS]
    for k in RECALL_KS:
        columns.append(np.bincount(ranks.caption_image, weights=(ranks.t2i < k).astype(float), minlength=num_images))
    return np.stack(columns, axis=1)


def mean_recall(ranks: RankSet) -> float:
    """Return mR in percent, the mean of R@1/5/10 in both directions (as in rsitr_bench.metrics)."""
    hits = _per_image_hits(ranks)
    recalls = np.concatenate([hits[:, :3].mean(axis=0), hits[:, 3:].sum(axis=0) / ranks.caption_image.size])
    return float(100.0 * recalls.mean())


@dataclass(frozen=True)
class BootstrapResult:
    """Paired bootstrap over test images of the mR difference ``treatment - reference``."""

    difference: float
    """Observed mR difference in percentage points, averaged over seeds."""
    low: float
    high: float
    """Percentile confidence interval of the difference."""
    p_value: float
    resamples: int
    seeds: int
    images: int


def paired_bootstrap(
    treatment: Sequence[RankSet],
    reference: Sequence[RankSet],
    resamples: int = DEFAULT_BOOTSTRAP_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_BOOTSTRAP_SEED,
) -> BootstrapResult:
    """Bootstrap the mR difference over test images, keeping the pairing by seed.

    ``treatment[s]`` and ``reference[s]`` are the runs of training seed s. All runs share one
    test split (same images, same caption-to-image map). Each resample draws test images
    with replacement, once for all seeds and both methods, and keeps each drawn image's
    captions with it. On the resample, mR is recomputed for every run and the statistic is
    the mean over seeds of mR(treatment) - mR(reference). Training seeds are held fixed,
    so the interval reflects the test-set sample, not seed-to-seed variation (the paired
    t-test covers that).

    The interval is the percentile interval. The two-sided p-value is
    2 * min(P*(d <= 0), P*(d >= 0)) with add-one smoothing, so p < 1 - confidence exactly
    when the interval excludes zero, up to the smoothing.
    """
    if len(treatment) != len(reference) or not treatment:
        raise ValueError(
            f"paired_bootstrap needs the same number of runs (at least 1) per method, got {len(treatment)} and "
            f"{len(reference)}"
        )
    if resamples < 1:
        raise ValueError(f"invalid number of bootstrap resamples {resamples}: expected at least 1")
    first = treatment[0]
    for ranks in (*treatment, *reference):
        if ranks.i2t.size != first.i2t.size or not np.array_equal(ranks.caption_image, first.caption_image):
            raise ValueError(
                "runs differ in their test split (number of images or caption-to-image map). Pass only runs "
                "that were evaluated on the same test split"
            )
    num_images = first.i2t.size
    captions_per_image = np.bincount(first.caption_image, minlength=num_images).astype(float)

    # One row per run: per-image hit counts, so a resample's recalls are weighted sums.
    hits = np.stack([_per_image_hits(r) for r in (*treatment, *reference)])  # [runs, images, 6]
    num_seeds = len(treatment)
    sign = np.concatenate([np.ones(num_seeds), -np.ones(num_seeds)]) / num_seeds

    def statistic(weights: np.ndarray) -> np.ndarray:
        """Return the mean-over-seeds mR difference for each row of image weights [resamples, images]."""
        weighted = np.einsum("bi,rik->brk", weights, hits)  # [resamples, runs, 6]
        i2t = weighted[:, :, :3] / weights.sum(axis=1)[:, None, None]
        t2i = weighted[:, :, 3:] / (weights @ captions_per_image)[:, None, None]
        mean_recalls = 100.0 * np.concatenate([i2t, t2i], axis=2).mean(axis=2)  # [resamples, runs]
        return mean_recalls @ sign

    observed = float(statistic(np.ones((1, num_images)))[0])
    rng = np.random.default_rng(seed)
    differences = np.empty(resamples)
    for start in range(0, resamples, _BOOTSTRAP_CHUNK):
        count = min(_BOOTSTRAP_CHUNK, resamples - start)
        draws = rng.integers(0, num_images, size=(count, num_images))
        offsets = (np.arange(count) * num_images)[:, None]
        weights = np.bincount((draws + offsets).ravel(), minlength=count * num_images).reshape(count, num_images)
        differences[start:start + count] = statistic(weights.astype(float))

    alpha = 1.0 - confidence
    low, high = np.quantile(differences, [alpha / 2, 1 - alpha / 2])
    at_or_below = (np.count_nonzero(differences <= 0) + 1) / (resamples + 1)
    at_or_above = (np.count_nonzero(differences >= 0) + 1) / (resamples + 1)
    p_value = min(1.0, 2.0 * min(at_or_below, at_or_above))
    return BootstrapResult(observed, float(low), float(high), float(p_value), resamples, num_seeds, num_images)


def _paired_arrays(treatment: Sequence[float], reference: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    treatment_array = np.asarray(treatment, dtype=float)
    reference_array = np.asarray(reference, dtype=float)
    if treatment_array.shape != reference_array.shape or treatment_array.ndim != 1:
        raise ValueError(
            f"paired tests need two equal-length 1-D sequences, got shapes {treatment_array.shape} and {reference_array.shape}"
        )
    return treatment_array, reference_array
