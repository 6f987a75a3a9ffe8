"""Image decoding with an in-process cache, and checks for missing image files.

``decode_images`` applies the geometry of open_clip's default eval preprocess (open_clip
3.3): resize the shortest side to ``size`` with bicubic resampling, then center-crop to
``size`` x ``size``. It returns uint8 pixels, so a model wrapper still converts them to
float and normalizes them. One difference from open_clip is that images are converted to
RGB before resizing, not after, because Pillow 13 resizes palette and 1-bit images with
nearest-neighbour resampling whatever filter is requested. The conversion also scales
16-bit grey levels to 8 bits (see ``to_rgb``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from rsitr_bench.data.dataset import RetrievalDataset
from rsitr_bench.errors import DatasetError

if TYPE_CHECKING:
    import torch

_logger = logging.getLogger(__name__)

DEFAULT_DECODE_THREADS = 4
MISSING_NAMES_SHOWN = 5

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each image is ready."""

_CacheKey = tuple[str, int]

# Decoded images as HWC uint8 arrays, keyed by (absolute path, size). An RSICD-sized set
# (10,921 images) at size 224 takes about 1.6 GB.
_cache: dict[_CacheKey, np.ndarray] = {}
# Keys that some thread is decoding now, so that a second caller waits instead of
# decoding the same image again.
_in_progress: dict[_CacheKey, threading.Event] = {}
_lock = threading.Lock()
_decode_count = 0


def decode_count() -> int:
    """Return how many images this process has decoded, cache hits not counted."""
    return _decode_count


def clear_image_cache() -> None:
    """Drop every cached decoded image. ``decode_count`` keeps counting."""
    with _lock:
        _cache.clear()


def cached_image_count() -> int:
    """Return the number of (path, size) entries in the decoded-image cache."""
    return len(_cache)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert an image of any Pillow mode to 8-bit RGB.

    16-bit grey levels are scaled to 8 bits, where Pillow's own conversion would clip
    every value above 255 to white. Alpha channels are dropped, as open_clip does.
    """
    if image.mode.startswith("I;16"):
        pixels = np.asarray(image, dtype=np.float64) / 257.0
        return _grey_to_rgb(pixels)
    if image.mode == "I":
        pixels = np.asarray(image, dtype=np.float64)
        # Some writers and Pillow versions give 16-bit grey images the 32-bit mode "I".
        # Values above 255 can only come from such a source, so they are scaled from the
        # 16-bit range.
        if pixels.max(initial=0) > 255:
            pixels = pixels / 257.0
        return _grey_to_rgb(pixels)
    if image.mode == "F":
        pixels = np.asarray(image, dtype=np.float64)
        # NOTE: float images have no standard range. Values up to 1.0 are read as [0, 1],
        # anything larger as [0, 255], and the result is clipped.
        if pixels.max(initial=0) <= 1.0:
            pixels = pixels * 255.0
        return _grey_to_rgb(pixels)
    if image.mode == "RGB":
        return image
    return image.convert("RGB")


def _grey_to_rgb(pixels: np.ndarray) -> Image.Image:
    grey = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")


def resize_and_crop(image: Image.Image, size: int) -> Image.Image:
    """Resize the shortest side to ``size`` (bicubic), then center-crop a square of ``size``.

    The output sizes and crop offsets follow torchvision's ``Resize(size)`` and
    ``CenterCrop(size)`` (torchvision 0.29), which open_clip's eval preprocess uses.
    """
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(size * long / short)
    new_width, new_height = (size, new_long) if width <= height else (new_long, size)
    if (new_width, new_height) != (width, height):
        image = image.resize((new_width, new_height), resample=Image.Resampling.BICUBIC)

    left = int(round((new_width - size) / 2.0))
    top = int(round((new_height - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


def decode_image(path: Path, size: int) -> np.ndarray:
    """Decode one image file into a ``size`` x ``size`` x 3 uint8 array, bypassing the cache.

    Raises DatasetError naming the path and the decoder's error when the file cannot be
    read or decoded.
    """
    global _decode_count
    if not path.is_file():
        raise DatasetError(
            f"Image file {path} does not exist. Download the dataset's images, or pass "
            "--image-dir with the folder that contains them."
        )
    try:
        with Image.open(path) as image:
            image.load()
            rgb = to_rgb(image)
            # np.array copies, because arrays viewing a Pillow image are read-only and
            # torch.from_numpy warns about those.
            pixels = np.array(resize_and_crop(rgb, size), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as error:
        raise DatasetError(
            f"Cannot decode image {path}: {type(error).__name__}: {error}. "
            "Replace the file with a readable JPEG, PNG or TIFF image."
        ) from error
    with _lock:
        _decode_count += 1
    return pixels


def _cached_or_decode(key: _CacheKey) -> np.ndarray:
    """Return the cached pixels for ``key``, decoding them first if no thread has."""
    while True:
        with _lock:
            pixels = _cache.get(key)
            if pixels is not None:
                return pixels
            event = _in_progress.get(key)
            if event is None:
                event = threading.Event()
                _in_progress[key] = event
                owner = True
            else:
                owner = False
        if not owner:
            # Another thread is decoding this image. If it fails, the loop decodes again
            # here and raises the error for this caller too.
            event.wait()
            continue
        try:
            pixels = decode_image(Path(key[0]), key[1])
            with _lock:
                _cache[key] = pixels
            return pixels
        finally:
            with _lock:
                del _in_progress[key]
            event.set()


def _default_thread_count() -> int:
    return max(2, min(DEFAULT_DECODE_THREADS, os.cpu_count() or 1))


def decode_images(
    paths: Sequence[str | Path],
    size: int,
    progress: ProgressCallback | None = None,
    num_threads: int | None = None,
) -> torch.Tensor:
    """Decode image files into a uint8 tensor of shape [N, 3, size, size].

    Each (absolute path, size) pair is decoded once and then served from the cache. It is
    decoded again only after ``clear_image_cache`` or after a failed decode.
    ``progress(done, total)`` is called in the calling thread after each image is ready.
    ``num_threads`` defaults to the CPU count, clamped to 2 to 4. Raises DatasetError for
    the first file that cannot be decoded.
    """
    import torch

    if size < 1:
        raise ValueError(f"image size must be at least 1, got {size}")
    keys = [(str(Path(path).expanduser().absolute()), size) for path in paths]
    total = len(keys)
    output = torch.empty((total, 3, size, size), dtype=torch.uint8)
    positions: dict[_CacheKey, list[int]] = {}
    for position, key in enumerate(keys):
        positions.setdefault(key, []).append(position)

    def store(key: _CacheKey, pixels: np.ndarray) -> None:
        chunk = torch.from_numpy(pixels).permute(2, 0, 1)
        for position in positions[key]:
            output[position] = chunk

    with _lock:
        hits = {key: _cache[key] for key in positions if key in _cache}
    done = 0
    for key, pixels in hits.items():
        store(key, pixels)
        done += len(positions[key])
    if done and progress is not None:
        progress(done, total)

    pending = [key for key in positions if key not in hits]
    if pending:
        threads = num_threads if num_threads is not None else _default_thread_count()
        workers = max(1, min(threads, len(pending)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
            futures = {pool.submit(_cached_or_decode, key): key for key in pending}
            try:
                for future in as_completed(futures):
                    key = futures[future]
                    store(key, future.result())
                    done += len(positions[key])
                    if progress is not None:
                        progress(done, total)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    return output


# --- image files of a dataset ----------------------------------------------------------


def image_paths(dataset: RetrievalDataset, split: str) -> list[Path]:
    """Return the absolute paths of a split's images, in the split's image order."""
    image_dir = Path(dataset.image_dir).expanduser().absolute()
    return [image_dir / name for name in dataset.splits[split].images]


def missing_images(dataset: RetrievalDataset) -> dict[str, list[str]]:
    """Return, per split, the file names whose image file does not exist, in split order."""
    image_dir = Path(dataset.image_dir).expanduser()
    return {
        split_name: [name for name in split.images if not (image_dir / name).is_file()]
        for split_name, split in dataset.splits.items()
    }


def require_images(dataset: RetrievalDataset) -> None:
    """Raise DatasetError unless every image of every split exists as a file.

    The message counts distinct images over all splits, names the first few missing
    ones and the folder searched, and gives the fix.
    """
    missing_by_split = missing_images(dataset)
    missing = list(dict.fromkeys(name for names in missing_by_split.values() for name in names))
    if not missing:
        return
    total = len({name for split in dataset.splits.values() for name in split.images})
    first_names = ", ".join(missing[:MISSING_NAMES_SHOWN])
    more = ", ..." if len(missing) > MISSING_NAMES_SHOWN else ""
    raise DatasetError(
        f"{len(missing):,} of {total:,} images are missing from {dataset.image_dir} "
        f"(dataset {dataset.name}). First missing: {first_names}{more}. Download the dataset's "
        "images into that folder, or pass --image-dir with the folder that contains them, "
        "or pass --data-root with the folder that contains the dataset folder."
    )

