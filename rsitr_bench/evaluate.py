"""Encoding a split and ranking it: embeddings -> similarity -> ranks -> metrics.

Under torchrun every process encodes a contiguous share of the images and of the captions,
and the embeddings are gathered in their original order, so every process ranks the same
similarity matrix and gets the same metrics.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Callable

import torch
from torch import nn

from rsitr_bench import distributed
from rsitr_bench.metrics import retrieval_metrics
from rsitr_bench.progress import NullProgress, Progress

_logger = logging.getLogger(__name__)

DEVICE_CACHE_FRACTION = 0.25
"""Maximum fraction of the free GPU memory that a split's cached images, tokens and labels may take."""


@dataclass
class EncodedSplit:
    """A split as tensors: uint8 images, caption token ids and the caption-to-image map."""

    images: torch.Tensor
    """uint8 [num_images, 3, H, W]"""
    tokens: torch.Tensor
    """token ids [num_captions, context_length]"""
    caption_image: torch.Tensor
    """int64 [num_captions]: the image index of each caption"""
    labels: torch.Tensor | None = None


def normalize_images(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Convert uint8 images to the normalized float input that the model expects."""
    return (images.float().div_(255.0) - mean) / std


def to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a batch to ``device``.

    A CPU-to-CUDA copy is staged in pinned memory, so the transfer to the GPU does not block
    the host. Staging itself is a synchronous copy unless ``batch`` is already pinned.
    """
    if device.type == "cuda" and batch.device.type == "cpu":
        return batch.pin_memory().to(device, non_blocking=True)
    return batch.to(device)


def take_rows(source: torch.Tensor, indices: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Return ``source[indices]`` on ``device``, indexing where ``source`` lives."""
    if source.device != indices.device:
        indices = indices.to(source.device)
    return to_device(source[indices], device)


def stage_split(split: EncodedSplit, device: torch.device) -> EncodedSplit:
    """Keep a split's images, tokens and labels on the GPU when they fit, else pin them.

    They fit when they take at most ``DEVICE_CACHE_FRACTION`` of the free GPU memory. On
    other devices the split is returned unchanged. ``caption_image`` stays on the CPU.
    """
    if device.type != "cuda":
        return split
    free_bytes, _ = torch.cuda.mem_get_info(device)
    size = split.images.nbytes + split.tokens.nbytes + (split.labels.nbytes if split.labels is not None else 0)
    on_device = size <= DEVICE_CACHE_FRACTION * free_bytes
    if on_device:
        _logger.debug("Keeping %.1f MB of images and tokens on %s", size / 2**20, device)
    else:
        _logger.info(
            "Keeping images and tokens (%.1f MB) in pinned memory, because they exceed %.0f%% of the free GPU memory (%.1f MB)",
            size / 2**20, 100 * DEVICE_CACHE_FRACTION, free_bytes / 2**20,
        )

    def move(tensor: torch.Tensor) -> torch.Tensor:
        if on_device:
            return tensor.to(device)
        return tensor if tensor.is_pinned() else tensor.pin_memory()

    return replace(
        split,
        images=move(split.images),
        tokens=move(split.tokens),
        labels=move(split.labels) if split.labels is not None else None,
    )


@torch.no_grad()
def encode_in_batches(
    encode: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    batch_size: int,
    device: torch.device,
    prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Encode ``inputs`` in batches and return the float32 embeddings, one row per input row."""
    progress = progress or NullProgress()
    if inputs.shape[0] == 0:
        raise ValueError("encode_in_batches needs at least one input row, got 0")
    outputs = []
    for start in range(0, inputs.shape[0], batch_size):
        batch = to_device(inputs[start : start + batch_size], device)
        if prepare is not None:
            batch = prepare(batch)
        outputs.append(encode(batch).float())
        progress.advance(batch.shape[0])
    return torch.cat(outputs)


def encode_share(
    encode: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    batch_size: int,
    device: torch.device,
    prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Encode this process's contiguous share of ``inputs`` and gather all shares in order.

    Without torchrun this encodes every row. A process whose share is empty (fewer rows
    than processes) encodes one row and keeps none of it, to learn the embedding width.
    """
    start, end = distributed.shard_bounds(inputs.shape[0])
    if start < end:
        local = encode_in_batches(encode, inputs[start:end], batch_size, device, prepare, progress)
    else:
        local = encode_in_batches(encode, inputs[:1], batch_size, device, prepare)[:0]
    return distributed.gather_rows(local)


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
    """Encode every image and caption of ``split`` and return (metrics, per-query ranks).

    Under torchrun this is a collective: every process must call it, and every process
    returns the same result.
    """
    progress = progress or NullProgress()
    num_images, num_captions = split.images.shape[0], split.tokens.shape[0]
    if num_images == 0 or num_captions == 0:
        raise ValueError(
            f"cannot evaluate a split with {num_images} images and {num_captions} captions: "
            "evaluation needs at least one image and one caption"
        )
    image_share = distributed.shard_bounds(num_images)
    caption_share = distributed.shard_bounds(num_captions)
    was_training = model.training
    model.eval()
    try:
        progress.start("encoding", image_share[1] - image_share[0] + caption_share[1] - caption_share[0])
        with autocast():
            image_features = encode_share(
                lambda batch: encode_images(model, batch), split.images, batch_size, device,
                prepare=lambda batch: normalize_images(batch, mean, std), progress=progress,
            )
            text_features = encode_share(
                lambda batch: encode_texts(model, batch), split.tokens, batch_size, device, progress=progress,
            )
        progress.finish()
    finally:
        model.train(was_training)
    similarity = image_features @ text_features.t()
    return retrieval_metrics(similarity, split.caption_image)
