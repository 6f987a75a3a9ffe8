"""Ranks and recall@K for image-text retrieval.

Directions: i2t ranks captions for each image query, t2i ranks images for each caption query.

Tie rule: the gallery is sorted by descending similarity with a stable sort, so among equal
scores the item with the lower gallery index ranks first. This is deterministic and depends
only on the order of the split files. RSICD repeats captions across images, so equal scores
do occur there.

Ranks are 0-based: rank 0 means the first retrieved item is correct. An i2t query's rank is
the rank of the best-ranked of its ground-truth captions; a t2i query's rank is the rank of
its one image. A query is a hit at K when its rank is below K.
"""

from __future__ import annotations

import torch

RECALL_KS = (1, 5, 10)
METRIC_KEYS = tuple(f"{direction}_R@{k}" for direction in ("i2t", "t2i") for k in RECALL_KS) + ("mR",)


def _rank_of(similarity: torch.Tensor, target_score: torch.Tensor, target_index: torch.Tensor) -> torch.Tensor:
    """Count, per row, the items ranked before the target: higher scores, and equal scores at a lower index.

    This equals the target's position in a stable descending sort, in O(rows x columns)
    time instead of the sort's O(rows x columns x log columns).
    """
    target_score = target_score.unsqueeze(1)
    columns = torch.arange(similarity.shape[1], device=similarity.device).unsqueeze(0)
    ahead = (similarity > target_score) | ((similarity == target_score) & (columns < target_index.unsqueeze(1)))
    return ahead.sum(dim=1)


def rank_i2t(similarity: torch.Tensor, caption_image: torch.Tensor) -> torch.Tensor:
    """Rank captions for each image.

    ``similarity`` is [num_images, num_captions]; ``caption_image[j]`` is the image of caption j.
    Returns one 0-based rank per image: the rank of its best-ranked caption, which is the
    one with the highest score and, among equal scores, the lowest index.
    """
    num_images, num_captions = similarity.shape
    is_target = caption_image.unsqueeze(0) == torch.arange(num_images, device=similarity.device).unsqueeze(1)
    target_scores = torch.where(is_target, similarity, torch.full_like(similarity, -torch.inf))
    best_score = target_scores.max(dim=1).values
    columns = torch.arange(num_captions, device=similarity.device).expand_as(similarity)
    best_index = torch.where(is_target & (target_scores == best_score.unsqueeze(1)), columns, num_captions).min(dim=1).values
    return _rank_of(similarity, best_score, best_index)


def rank_t2i(similarity: torch.Tensor, caption_image: torch.Tensor) -> torch.Tensor:
    """Rank images for each caption; ``similarity`` is [num_images, num_captions].

    Returns one 0-based rank per caption.
    """
    by_caption = similarity.t()
    target_score = by_caption.gather(1, caption_image.view(-1, 1)).squeeze(1)
    return _rank_of(by_caption, target_score, caption_image)


def recall_at_k(ranks: torch.Tensor, k: int) -> float:
    """Percentage of queries whose rank is below ``k``."""
    if ranks.numel() == 0:
        raise ValueError("cannot compute recall over zero queries")
    return 100.0 * (ranks < k).double().mean().item()


def metrics_from_ranks(i2t_ranks: torch.Tensor, t2i_ranks: torch.Tensor) -> dict[str, float]:
    """Return R@1/5/10 in both directions and mR, the mean of the six recalls, in percent."""
    metrics = {}
    for direction, ranks in (("i2t", i2t_ranks), ("t2i", t2i_ranks)):
        for k in RECALL_KS:
            metrics[f"{direction}_R@{k}"] = recall_at_k(torch.as_tensor(ranks), k)
    metrics["mR"] = sum(metrics.values()) / len(metrics)
    return metrics


def retrieval_metrics(similarity: torch.Tensor, caption_image: torch.Tensor) -> tuple[dict[str, float], dict[str, list[int]]]:
    """Rank both directions and return (metrics, ranks as lists for the run record)."""
    caption_image = caption_image.to(similarity.device)
    i2t = rank_i2t(similarity, caption_image).cpu()
    t2i = rank_t2i(similarity, caption_image).cpu()
    return metrics_from_ranks(i2t, t2i), {"i2t": i2t.tolist(), "t2i": t2i.tolist()}
