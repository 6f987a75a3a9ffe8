"""Encoding a split and ranking it: embeddings -> similarity -> ranks -> metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from rsitr_bench.metrics import retrieval_metrics
from rsitr_bench.progress import NullProgress, Progress


@dataclass
class EncodedSplit:
    """What evaluation needs of a split: images as uint8, captions as tokens."""

    images: torch.Tensor
    """uint8 [num_images, 3, H, W]"""
    tokens: torch.Tensor
    """token ids [num_captions, context_length]"""
    caption_image: torch.Tensor
    """int64 [num_captions]: the image index of each caption"""
    labels: torch.Tensor | None = None


def normalize_images(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Turn uint8 images into the float input the model expects."""
    return (images.float().div_(255.0) - mean) / std


@torch.no_grad()
def encode_in_batches(
    encode: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    batch_size: int,
    device: torch.device,
    prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
    progress: Progress | None = None,
) -> torch.Tensor:
    progress = progress or NullProgress()
    outputs = []
    for start in range(0, inputs.shape[0], batch_size):
        batch = inputs[start : start + batch_size].to(device, non_blocking=True)
        if prepare is not None:
            batch = prepare(batch)
        outputs.append(encode(batch).float())
        progress.advance(batch.shape[0])
    return torch.cat(outputs)


@torch.no_grad()
def evaluate_split(
    model: nn.Module,
    encode_images: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    encode_texts: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    split: EncodedSplit,
    mean: torch.Tensor,
    std: torch.Tensor,
    device: torch.device,
    batch_size: int,
    autocast: Callable[[], object],
    progress: Progress | None = None,
) -> tuple[dict[str, float], dict[str, list[int]]]:
    """Encode every image and caption of ``split`` and return (metrics, per-query ranks)."""
    progress = progress or NullProgress()
    was_training = model.training
    model.eval()
    try:
        progress.start("encoding", split.images.shape[0] + split.tokens.shape[0])
        with autocast():
            image_features = encode_in_batches(
                lambda batch: encode_images(model, batch), split.images, batch_size, device,
                prepare=lambda batch: normalize_images(batch, mean, std), progress=progress,
            )
            text_features = encode_in_batches(
                lambda batch: encode_texts(model, batch), split.tokens, batch_size, device, progress=progress,
            )
        progress.finish()
    finally:
        model.train(was_training)
    similarity = image_features @ text_features.t()
    return retrieval_metrics(similarity, split.caption_image)
