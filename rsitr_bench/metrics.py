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


def _positions(similarity: torch.Tensor) -> torch.Tensor:
    """Return, for each row, the 0-based position of every column in the ranked list."""
    order = torch.sort(similarity, dim=1, descending=True, stable=True).indices
    positions = torch.empty_like(order)
    columns = torch.arange(order.shape[1], device=order.device).expand_as(order)
    positions.scatter_(1, order, columns)
    return positions


def rank_i2t(similarity: torch.Tensor, caption_image: torch.Tensor) -> torch.Tensor:
    """Rank captions for each image.

    ``similarity`` is [num_images, num_captions]; ``caption_image[j]`` is the image of caption j.
    Returns one 0-based rank per image.
    """
    positions = _positions(similarity)
    num_images = similarity.shape[0]
    is_target = caption_image.unsqueeze(0) == torch.arange(num_images, device=similarity.device).unsqueeze(1)
    large = torch.iinfo(positions.dtype).max
    return torch.where(is_target, positions, torch.full_like(positions, large)).min(dim=1).values


def rank_t2i(similarity: torch.Tensor, caption_image: torch.Tensor) -> torch.Tensor:
    """Rank images for each caption; ``similarity`` is [num_images, num_captions].

    Returns one 0-based rank per caption.
    """
    positions = _positions(similarity.t())
    return positions.gather(1, caption_image.view(-1, 1)).squeeze(1)


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
