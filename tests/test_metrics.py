import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rsitr_bench.metrics import (
    METRIC_KEYS,
    metrics_from_ranks,
    rank_i2t,
    rank_t2i,
    recall_at_k,
    retrieval_metrics,
)


def brute_force_ranks(similarity: torch.Tensor, caption_image: list[int]):
    """Rank with plain loops: stable descending order, lower gallery index first on ties."""
    num_images, num_captions = similarity.shape
    i2t = []
    for image in range(num_images):
        order = sorted(range(num_captions), key=lambda j: (-similarity[image, j].item(), j))
        i2t.append(min(order.index(j) for j in range(num_captions) if caption_image[j] == image))
    t2i = []
    for caption in range(num_captions):
        order = sorted(range(num_images), key=lambda i: (-similarity[i, caption].item(), i))
        t2i.append(order.index(caption_image[caption]))
    return i2t, t2i


def test_i2t_rank_uses_best_caption():
    # Image 0 owns captions 0 and 1; caption 1 is its best-ranked one at position 1.
    similarity = torch.tensor([[0.1, 0.8, 0.9, 0.0], [0.5, 0.2, 0.3, 0.9]])
    caption_image = torch.tensor([0, 0, 1, 1])
    assert rank_i2t(similarity, caption_image).tolist() == [1, 0]


def test_t2i_rank_hand_checked():
    similarity = torch.tensor([[0.1, 0.8, 0.9, 0.0], [0.5, 0.2, 0.3, 0.9]])
    caption_image = torch.tensor([0, 0, 1, 1])
    # Caption 0 prefers image 1 (0.5 > 0.1), so its image 0 is at rank 1.
    assert rank_t2i(similarity, caption_image).tolist() == [1, 0, 1, 0]


def test_ties_break_to_lower_index():
    similarity = torch.tensor([[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]])
    caption_image = torch.tensor([0, 1, 1])
    # Equal scores: the lower gallery index ranks first in both directions.
    assert rank_i2t(similarity, caption_image).tolist() == [0, 1]
    assert rank_t2i(similarity, caption_image).tolist() == [0, 1, 1]


def test_recall_hand_checked():
    ranks = torch.tensor([0, 4, 5, 9, 10])
    assert recall_at_k(ranks, 1) == pytest.approx(20.0)
    assert recall_at_k(ranks, 5) == pytest.approx(40.0)
    assert recall_at_k(ranks, 10) == pytest.approx(80.0)


def test_mr_is_mean_of_six_recalls():
    metrics = metrics_from_ranks(torch.tensor([0, 7]), torch.tensor([0, 2, 20, 3]))
    expected = {
        "i2t_R@1": 50.0, "i2t_R@5": 50.0, "i2t_R@10": 100.0,
        "t2i_R@1": 25.0, "t2i_R@5": 75.0, "t2i_R@10": 75.0,
    }
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value), key
    assert metrics["mR"] == pytest.approx(sum(expected.values()) / 6)
    assert tuple(metrics) == METRIC_KEYS


def test_recall_of_no_queries_raises():
    with pytest.raises(ValueError):
        recall_at_k(torch.tensor([], dtype=torch.long), 1)


@pytest.mark.parametrize("seed", range(6))
def test_ranks_match_brute_force(seed):
    generator = torch.Generator().manual_seed(seed)
    num_images = 7
    caption_image = [i for i in range(num_images) for _ in range(5)]
    # Quantised scores make ties frequent, as with RSICD's repeated captions.
    similarity = torch.randint(0, 4, (num_images, len(caption_image)), generator=generator).float()
    expected_i2t, expected_t2i = brute_force_ranks(similarity, caption_image)
    metrics, ranks = retrieval_metrics(similarity, torch.tensor(caption_image))
    assert ranks["i2t"] == expected_i2t
    assert ranks["t2i"] == expected_t2i
    assert metrics == metrics_from_ranks(torch.tensor(expected_i2t), torch.tensor(expected_t2i))


def test_uneven_captions_per_image():
    caption_image = [0, 0, 0, 1, 2, 2]
    similarity = torch.tensor(
        [[0.9, 0.1, 0.2, 0.3, 0.4, 0.5], [0.1, 0.2, 0.3, 0.1, 0.9, 0.8], [0.3, 0.3, 0.3, 0.3, 0.3, 0.3]]
    )
    expected_i2t, expected_t2i = brute_force_ranks(similarity, caption_image)
    _, ranks = retrieval_metrics(similarity, torch.tensor(caption_image))
    assert ranks["i2t"] == expected_i2t
    assert ranks["t2i"] == expected_t2i


similarity_matrices = st.integers(min_value=1, max_value=6).flatmap(
    lambda images: st.tuples(
        st.just(images),
        st.integers(min_value=1, max_value=4),
        st.integers(min_value=0, max_value=2**31 - 1),
    )
)


def _random_case(images: int, per_image: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    caption_image = torch.arange(images).repeat_interleave(per_image)
    similarity = torch.randint(0, 5, (images, images * per_image), generator=generator).float()
    return similarity, caption_image


@settings(max_examples=60, deadline=None)
@given(similarity_matrices)
def test_recall_monotone_in_k(case):
    similarity, caption_image = _random_case(*case)
    _, ranks = retrieval_metrics(similarity, caption_image)
    for direction in ("i2t", "t2i"):
        values = [recall_at_k(torch.tensor(ranks[direction]), k) for k in range(1, 12)]
        assert all(a <= b for a, b in itertools.pairwise(values))


@settings(max_examples=60, deadline=None)
@given(similarity_matrices)
def test_recall_invariant_to_gallery_permutation(case):
    images, per_image, seed = case
    generator = torch.Generator().manual_seed(seed)
    caption_image = torch.arange(images).repeat_interleave(per_image)
    # Distinct scores: with ties, permuting the gallery legitimately changes the tie order.
    similarity = torch.randperm(images * images * per_image, generator=generator).float().view(images, -1)
    metrics, _ = retrieval_metrics(similarity, caption_image)

    caption_order = torch.randperm(caption_image.numel(), generator=generator)
    image_order = torch.randperm(images, generator=generator)
    inverse_image = torch.argsort(image_order)
    permuted = similarity[image_order][:, caption_order]
    permuted_caption_image = inverse_image[caption_image[caption_order]]
    permuted_metrics, _ = retrieval_metrics(permuted, permuted_caption_image)
    for key in METRIC_KEYS:
        assert permuted_metrics[key] == pytest.approx(metrics[key]), key


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=8), st.integers(min_value=1, max_value=5))
def test_perfect_similarity_gives_100(images, per_image):
    caption_image = torch.arange(images).repeat_interleave(per_image)
    similarity = (caption_image.unsqueeze(0) == torch.arange(images).unsqueeze(1)).float()
    metrics, _ = retrieval_metrics(similarity, caption_image)
    for key in METRIC_KEYS:
        assert metrics[key] == pytest.approx(100.0), key
