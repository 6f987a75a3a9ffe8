"""Statistics of the report checked against scipy and hand computations."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

from rsitr_bench import stats
from rsitr_bench.metrics import metrics_from_ranks


def test_summarize_matches_statistics_module() -> None:
    values = [31.2, 29.8, 33.1, 30.4, 32.0]
    summary = stats.summarize(values)
    assert summary.n == 5
    assert summary.mean == pytest.approx(statistics.mean(values))
    assert summary.std == pytest.approx(statistics.stdev(values))


def test_summarize_one_value_has_no_std() -> None:
    summary = stats.summarize([12.5])
    assert summary.mean == 12.5
    assert summary.std is None


def test_confidence_interval_by_hand() -> None:
    # mean 3, sample sd sqrt(2.5), sem sqrt(0.5), t(0.975, df=4) = 2.776445.
    interval = stats.mean_confidence_interval([1, 2, 3, 4, 5])
    half_width = 2.7764451051977987 * math.sqrt(0.5)
    assert interval.estimate == pytest.approx(3.0)
    assert interval.low == pytest.approx(3.0 - half_width)
    assert interval.high == pytest.approx(3.0 + half_width)


def test_confidence_interval_matches_scipy() -> None:
    values = np.array([0.7, -0.2, 1.9, 1.1, 0.4, 0.8])
    low, high = scipy_stats.t.interval(0.95, df=values.size - 1, loc=values.mean(), scale=scipy_stats.sem(values))
    interval = stats.mean_confidence_interval(values)
    assert interval.low == pytest.approx(low)
    assert interval.high == pytest.approx(high)


def test_confidence_interval_one_value() -> None:
    interval = stats.mean_confidence_interval([2.0])
    assert interval.estimate == 2.0
    assert interval.low is None
    assert interval.high is None


def test_paired_t_by_hand() -> None:
    # Differences 1..5: t = 3 / (sqrt(2.5) / sqrt(5)) = 3 * sqrt(2), two-sided p from t(4).
    result = stats.paired_t_test([2, 4, 6, 8, 10], [1, 2, 3, 4, 5])
    assert result.statistic == pytest.approx(3 * math.sqrt(2))
    assert result.p_value == pytest.approx(2 * scipy_stats.t.sf(3 * math.sqrt(2), df=4))
    assert result.p_value == pytest.approx(0.013236, abs=1e-6)


def test_paired_t_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(30, 2, 7), rng.normal(29, 2, 7)
    expected = scipy_stats.ttest_rel(a, b)
    result = stats.paired_t_test(a, b)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.statistic == pytest.approx(expected.statistic)


def test_paired_t_constant_difference_is_undefined() -> None:
    result = stats.paired_t_test([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert result.p_value is None
    assert "identical" in result.note


def test_paired_t_needs_two_pairs() -> None:
    result = stats.paired_t_test([2.0], [1.0])
    assert result.p_value is None
    assert "n=1" in result.note


def test_paired_tests_reject_unequal_lengths() -> None:
    with pytest.raises(ValueError, match="equal-length"):
        stats.paired_t_test([1.0, 2.0], [1.0])


def test_wilcoxon_minimum_p_values() -> None:
    assert stats.wilcoxon_min_p_value(5) == pytest.approx(0.0625)
    assert stats.wilcoxon_min_p_value(6) == pytest.approx(0.03125)
    assert stats.min_pairs_for_wilcoxon(0.05) == 6


def test_wilcoxon_five_seeds_gives_note() -> None:
    result = stats.wilcoxon_test([5, 6, 7, 8, 9], [1, 2, 3, 4, 5])
    assert result.p_value is None
    assert result.note.startswith("n=5 seeds: Wilcoxon cannot reach p<0.05")


def test_wilcoxon_six_positive_differences_exact() -> None:
    # All six differences positive: exact two-sided p = 2 / 2**6.
    treatment = [1.5, 2.7, 3.1, 4.9, 5.2, 6.8]
    reference = [1.0, 2.0, 2.0, 4.0, 3.0, 6.0]
    result = stats.wilcoxon_test(treatment, reference)
    assert result.p_value == pytest.approx(0.03125)
    assert result.p_value == pytest.approx(scipy_stats.wilcoxon(treatment, reference).pvalue)


def test_wilcoxon_matches_scipy_mixed_signs() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 1, 9), rng.normal(0.3, 1, 9)
    assert stats.wilcoxon_test(a, b).p_value == pytest.approx(scipy_stats.wilcoxon(a, b).pvalue)


def test_holm_hand_example() -> None:
    # Sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.06.
    adjusted = stats.holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_skips_missing_and_caps_at_one() -> None:
    assert stats.holm([None, 0.02, None, 0.5]) == [None, pytest.approx(0.04), None, pytest.approx(0.5)]
    assert stats.holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])
    assert stats.holm([]) == []


def test_holm_rejects_invalid_p() -> None:
    with pytest.raises(ValueError, match="1.5"):
        stats.holm([0.01, 1.5])


def _random_ranks(rng: np.random.Generator, num_images: int, captions: np.ndarray) -> stats.RankSet:
    caption_image = np.repeat(np.arange(num_images), captions)
    i2t = rng.integers(0, 3 * num_images, num_images)
    t2i = rng.integers(0, num_images, caption_image.size)
    return stats.RankSet.from_lists(i2t, t2i, caption_image)


def test_mean_recall_matches_metrics_module() -> None:
    rng = np.random.default_rng(0)
    ranks = _random_ranks(rng, 40, rng.integers(1, 8, 40))
    expected = metrics_from_ranks(torch.as_tensor(ranks.i2t), torch.as_tensor(ranks.t2i))["mR"]
    assert stats.mean_recall(ranks) == pytest.approx(expected)


def test_rank_set_rejects_mismatched_map() -> None:
    with pytest.raises(ValueError, match="caption_image"):
        stats.RankSet.from_lists([0, 1], [0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="outside"):
        stats.RankSet.from_lists([0, 1], [0, 1], [0, 2])


def test_bootstrap_observed_difference_uses_uneven_captions() -> None:
    rng = np.random.default_rng(1)
    captions = rng.integers(1, 8, 30)  # not five per image
    treatment = [_random_ranks(rng, 30, captions) for _ in range(3)]
    reference = [_random_ranks(rng, 30, captions) for _ in range(3)]
    expected = np.mean([stats.mean_recall(a) - stats.mean_recall(b) for a, b in zip(treatment, reference)])
    result = stats.paired_bootstrap(treatment, reference, resamples=200)
    assert result.difference == pytest.approx(expected)
    assert result.seeds == 3
    assert result.images == 30


def test_bootstrap_constant_difference() -> None:
    # Treatment retrieves every caption at rank 0 (i2t), reference never within top 10;
    # t2i ranks are equal, so every resample has mR difference exactly 3 * 100 / 6 = 50.
    caption_image = np.repeat(np.arange(20), 5)
    t2i = np.arange(100) % 20
    treatment = [stats.RankSet.from_lists(np.zeros(20), t2i, caption_image)]
    reference = [stats.RankSet.from_lists(np.full(20, 50), t2i, caption_image)]
    result = stats.paired_bootstrap(treatment, reference, resamples=999)
    assert result.difference == pytest.approx(50.0)
    assert result.low == pytest.approx(50.0)
    assert result.high == pytest.approx(50.0)
    assert result.p_value == pytest.approx(2 / 1000)


def test_bootstrap_standard_error_matches_theory() -> None:
    # i2t ranks are 0 or 100, so each image's hit is the same at every K and the mR
    # difference is 50 * mean(d) with d in {-1, 0, 1}; t2i is identical. The bootstrap
    # standard deviation of a mean of n values is the population sd / sqrt(n).
    rng = np.random.default_rng(7)
    num_images = 400
    caption_image = np.repeat(np.arange(num_images), 5)
    t2i = rng.integers(0, 30, caption_image.size)
    hits_treatment = rng.random(num_images) < 0.6
    hits_reference = rng.random(num_images) < 0.4
    treatment = [stats.RankSet.from_lists(np.where(hits_treatment, 0, 100), t2i, caption_image)]
    reference = [stats.RankSet.from_lists(np.where(hits_reference, 0, 100), t2i, caption_image)]
    d = hits_treatment.astype(float) - hits_reference
    expected_se = 50 * d.std(ddof=0) / math.sqrt(num_images)

    result = stats.paired_bootstrap(treatment, reference, resamples=4000, seed=11)
    assert result.difference == pytest.approx(50 * d.mean())
    # The 95% percentile interval of a near-normal statistic spans about 2 * 1.96 SE.
    assert (result.high - result.low) / (2 * 1.96) == pytest.approx(expected_se, rel=0.08)
    assert result.p_value < 0.001


def test_bootstrap_keeps_captions_with_their_image() -> None:
    # Only image 0's captions differ (t2i). A resample without image 0 has difference 0,
    # which happens with probability (1 - 1/n)**n when captions go with their image.
    num_images = 5
    caption_image = np.repeat(np.arange(num_images), 3)
    reference_t2i = np.full(caption_image.size, 20)
    treatment_t2i = np.where(caption_image == 0, 0, 20)
    i2t = np.full(num_images, 20)
    treatment = [stats.RankSet.from_lists(i2t, treatment_t2i, caption_image)]
    reference = [stats.RankSet.from_lists(i2t, reference_t2i, caption_image)]
    resamples = 20000
    result = stats.paired_bootstrap(treatment, reference, resamples=resamples, seed=0)
    p_absent = (1 - 1 / num_images) ** num_images
    # The p-value counts resamples with difference <= 0: exactly those without image 0.
    observed_absent = result.p_value / 2 * (resamples + 1) - 1
    tolerance = 4 * math.sqrt(p_absent * (1 - p_absent) * resamples)
    assert abs(observed_absent - p_absent * resamples) < tolerance


def test_bootstrap_rejects_different_splits() -> None:
    rng = np.random.default_rng(2)
    a = _random_ranks(rng, 10, np.full(10, 5))
    b = _random_ranks(rng, 12, np.full(12, 5))
    with pytest.raises(ValueError, match="test split"):
        stats.paired_bootstrap([a], [b], resamples=10)


def _synthetic_runs(
    rng: np.random.Generator, num_images: int, seeds: int, shift: float
) -> tuple[list[stats.RankSet], list[stats.RankSet]]:
    """Runs of two methods on one test set; ``shift`` > 0 makes the treatment's ranks better.

    Each image and caption has a difficulty shared by both methods (so the runs are
    paired), and each run draws its ranks from geometric distributions around it.
    """
    caption_image = np.repeat(np.arange(num_images), 5)
    image_success = rng.beta(2, 5, num_images)
    caption_success = rng.beta(2, 5, caption_image.size)

    def draw(boost: float) -> stats.RankSet:
        i2t = rng.geometric(np.clip(image_success + boost, 1e-3, 1)) - 1
        t2i = rng.geometric(np.clip(caption_success + boost, 1e-3, 1)) - 1
        return stats.RankSet.from_lists(i2t, t2i, caption_image)

    return [draw(shift) for _ in range(seeds)], [draw(0.0) for _ in range(seeds)]


def test_bootstrap_detects_better_method() -> None:
    rng = np.random.default_rng(4)
    treatment, reference = _synthetic_runs(rng, 200, seeds=5, shift=0.15)
    result = stats.paired_bootstrap(treatment, reference, resamples=2000)
    assert result.difference > 0
    assert result.low > 0
    assert result.p_value < 0.01


@pytest.mark.slow
def test_bootstrap_false_positive_rate() -> None:
    # 200 test sets where both methods have the same rank distribution: the share of
    # p < 0.05 should be near 5 %. The band 1-11 % is about 2.9 binomial standard
    # deviations (sd = sqrt(0.05 * 0.95 / 200) = 1.5 %) either side.
    rng = np.random.default_rng(2024)
    repetitions = 200
    rejections = 0
    for repetition in range(repetitions):
        treatment, reference = _synthetic_runs(rng, 150, seeds=3, shift=0.0)
        result = stats.paired_bootstrap(treatment, reference, resamples=400, seed=repetition)
        rejections += result.p_value < 0.05
    rate = rejections / repetitions
    assert 0.01 <= rate <= 0.11, f"false-positive rate {rate:.3f} outside 1-11 %"
