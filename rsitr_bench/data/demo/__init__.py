"""Embedded demo dataset: synthetic top-down scenes, each with five captions.

``ensure_demo`` writes the dataset once per cache folder and returns its folder. The folder
uses the precomp layout. ``<split>_filename.txt`` lists one image file name per line, and
``<split>_caps.txt`` lists the five captions of each image on five consecutive lines. The
images are 64x64 RGB PNG files under ``images/``. File names have the form
``<scene>_<n>.png``, so the scene class is the part before the last underscore.

Every image comes from a sampled ``Scene``, and its captions are written from the same
``Scene``. The package is split by concept:

- ``scenes``: the ``Scene``, ``Element`` and ``Shape`` dataclasses, the regions of the 3x3
  grid, the colour palette and the shape helpers.
- ``sampling``: ``sample_scene`` and the sampler of each scene class.
- ``render``: ``render_scene``, which draws a scene as an image.
- ``captions``: ``write_captions`` and the facts that it words for each scene class.
- this module: the dataset constants, the plan of every image, the dataset files with their
  manifest, and the cache folder (``ensure_demo``, ``ensure_pretraining_corpus``).

The constants and the code that reads them stay in this module, not in a submodule, because
tests replace ``SPLIT_SIZES``, ``PRETRAINING_SPLIT_SIZES`` and ``_write_dataset`` on
``rsitr_bench.data.demo``, and the functions here look those names up in this module's
globals on each call.

Generation is deterministic: with the same numpy and Pillow installation, two runs write
byte-identical files, whatever the hash seed of the process.
NOTE: another numpy version may change the random streams, and another zlib build inside
Pillow may change the PNG bytes (not the pixels). The manifest records both versions and the
checksums, so such a difference can be found.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import __version__ as pillow_version

from rsitr_bench.data.dataset import SPLITS
# The caption tests read the private _WHERE and _count through the package.
from rsitr_bench.data.demo.captions import _WHERE, CAPTIONS_PER_IMAGE, _count, write_captions
from rsitr_bench.data.demo.render import render_scene
from rsitr_bench.data.demo.sampling import sample_scene
from rsitr_bench.data.demo.scenes import (
    ELEMENT_KINDS,
    IMAGE_SIZE,
    REGIONS,
    RGB,
    Element,
    Scene,
    Shape,
    region_at,
)
from rsitr_bench.errors import DatasetError

__all__ = [
    "CACHE_ENV_VAR",
    "CAPTIONS_PER_IMAGE",
    "DEMO_DIR_NAME",
    "DEMO_SEED",
    "ELEMENT_KINDS",
    "GENERATOR_VERSION",
    "IMAGE_DIR_NAME",
    "IMAGE_SIZE",
    "MANIFEST_NAME",
    "PRETRAINING_CLASSES",
    "PRETRAINING_DIR_NAME",
    "PRETRAINING_SEED",
    "PRETRAINING_SPLIT_SIZES",
    "REGIONS",
    "RGB",
    "SCENE_CLASSES",
    "SPLIT_SIZES",
    "DemoImage",
    "Element",
    "Scene",
    "Shape",
    "demo_cache_root",
    "ensure_demo",
    "ensure_generated",
    "ensure_pretraining_corpus",
    "is_complete_demo",
    "plan_demo",
    "region_at",
    "render_scene",
    "sample_scene",
    "write_captions",
]

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 1
"""Raise this whenever the generated files change, so caches of older versions are not reused."""
DEMO_DIR_NAME = f"demo-v{GENERATOR_VERSION}"
DEMO_SEED = 20240611
SCENE_CLASSES = (
    "airport",
    "baseballfield",
    "beach",
    "farmland",
    "forest",
    "harbor",
    "intersection",
    "lake",
    "parking",
    "residential",
    "river",
    "storagetanks",
)
SPLIT_SIZES = {"train": 600, "val": 120, "test": 120}
"""Images per split. Each size must be a multiple of the number of scene classes."""
PRETRAINING_DIR_NAME = f"demo-pretraining-v{GENERATOR_VERSION}-6classes"
PRETRAINING_SEED = DEMO_SEED + 1
PRETRAINING_CLASSES = ("airport", "beach", "farmland", "harbor", "residential", "river")
PRETRAINING_SPLIT_SIZES = {"train": 1200, "val": 120, "test": 12}
"""The pretraining corpus's val split picks the best pretraining epoch; its test split is unused."""
IMAGE_DIR_NAME = "images"
MANIFEST_NAME = "manifest.json"
CACHE_ENV_VAR = "RSITR_CACHE_DIR"

# A generation takes seconds, so ensure_demo deletes a temporary folder older than this as
# left over from an interrupted run.
_STALE_TEMP_AGE_S = 3600.0
_PNG_COMPRESS_LEVEL = 6


@dataclass(frozen=True)
class DemoImage:
    """One planned image of the demo dataset: its split, file name, scene and captions."""

    split: str
    file_name: str
    scene: Scene
    captions: tuple[str, ...]


def plan_demo(
    seed: int = DEMO_SEED, split_sizes: dict[str, int] | None = None, classes: Sequence[str] = SCENE_CLASSES
) -> list[DemoImage]:
    """Sample every scene and its captions, without drawing, in the order of the split files.

    Each image's content depends only on ``seed``, its class and its number, so changing a
    split size leaves the other images unchanged. Numbers run on across splits, so every file
    name is unique in the shared image folder.
    """
    sizes = SPLIT_SIZES if split_sizes is None else split_sizes
    unknown = [label for label in classes if label not in SCENE_CLASSES]
    if unknown or not classes:
        raise ValueError(f"unknown demo scene classes {unknown}; choose from {', '.join(SCENE_CLASSES)}")
    numbers = {label: 0 for label in SCENE_CLASSES}
    planned: list[DemoImage] = []
    for split_index, split in enumerate(SPLITS):
        size = sizes[split]
        if size <= 0 or size % len(classes):
            raise ValueError(
                f"demo split {split!r} has size {size}, expected a positive multiple of "
                f"{len(classes)} scene classes"
            )
        entries: list[DemoImage] = []
        for label in classes:
            # The class's position in SCENE_CLASSES seeds its images, whichever classes are drawn.
            class_index = SCENE_CLASSES.index(label)
            for _ in range(size // len(classes)):
                numbers[label] += 1
                number = numbers[label]
                rng = np.random.default_rng([seed, class_index, number])
                scene = sample_scene(label, rng, noise_seed=(seed, class_index, number, 1))
                captions = tuple(write_captions(scene, rng))
                entries.append(DemoImage(split, f"{label}_{number}.png", scene, captions))
        # Mix the classes in the listing order, as in a real split file.
        order = np.random.default_rng([seed, 1000 + split_index]).permutation(len(entries))
        planned.extend(entries[int(i)] for i in order)
    return planned


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_dataset(
    folder: Path,
    seed: int = DEMO_SEED,
    split_sizes: dict[str, int] | None = None,
    classes: Sequence[str] = SCENE_CLASSES,
) -> None:
    """Write the split files, the images and, last, the manifest into ``folder``."""
    sizes = SPLIT_SIZES if split_sizes is None else split_sizes
    image_dir = folder / IMAGE_DIR_NAME
    image_dir.mkdir()
    planned = plan_demo(seed, sizes, classes)

    text_files: list[str] = []
    for split in SPLITS:
        entries = [entry for entry in planned if entry.split == split]
        names = "".join(f"{entry.file_name}\n" for entry in entries)
        captions = "".join(f"{caption}\n" for entry in entries for caption in entry.captions)
        for file_name, text in ((f"{split}_filename.txt", names), (f"{split}_caps.txt", captions)):
            with open(folder / file_name, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
            text_files.append(file_name)

    image_digest = hashlib.sha256()
    for entry in sorted(planned, key=lambda item: item.file_name):
        buffer = io.BytesIO()
        render_scene(entry.scene).save(buffer, format="PNG", compress_level=_PNG_COMPRESS_LEVEL)
        data = buffer.getvalue()
        (image_dir / entry.file_name).write_bytes(data)
        image_digest.update(entry.file_name.encode() + b"\0" + hashlib.sha256(data).digest())

    manifest = {
        "generator": "rsitr_bench.data.demo",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "splits": {split: sizes[split] for split in SPLITS},
        "classes": list(classes),
        "captions_per_image": CAPTIONS_PER_IMAGE,
        "images": len(planned),
        "sha256": {name: _sha256(folder / name) for name in text_files},
        "images_sha256": image_digest.hexdigest(),
        "numpy": np.__version__,
        "pillow": pillow_version,
    }
    # The manifest is the completeness marker, so it is written only after everything else.
    with open(folder / MANIFEST_NAME, "w", encoding="utf-8", newline="\n") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
        handle.write("\n")


def is_complete_demo(
    folder: Path,
    seed: int = DEMO_SEED,
    split_sizes: dict[str, int] | None = None,
    classes: Sequence[str] = SCENE_CLASSES,
) -> bool:
    """Return whether ``folder`` contains a finished demo dataset of this generator version.

    The check reads the manifest, hashes the split files and counts the images, but it does
    not decode or hash the images.
    """
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    sizes = SPLIT_SIZES if split_sizes is None else split_sizes
    expected_splits = {split: sizes[split] for split in SPLITS}
    if not isinstance(manifest, dict):
        return False
    if manifest.get("version") != GENERATOR_VERSION or manifest.get("seed") != seed:
        return False
    if manifest.get("splits") != expected_splits or manifest.get("classes") != list(classes):
        return False
    digests = manifest.get("sha256")
    if not isinstance(digests, dict) or len(digests) != 2 * len(SPLITS):
        return False
    try:
        for name, digest in digests.items():
            if _sha256(folder / name) != digest:
                return False
        image_count = sum(1 for _ in os.scandir(folder / IMAGE_DIR_NAME))
    except OSError:
        return False
    return image_count == manifest.get("images")


def demo_cache_root(cache_dir: Path | str | None = None) -> Path:
    """Return the cache folder: ``cache_dir``, else $RSITR_CACHE_DIR, else the user cache."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    from_env = os.environ.get(CACHE_ENV_VAR)
    if from_env:
        return Path(from_env).expanduser()
    xdg_cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg_cache).expanduser() if xdg_cache else Path.home() / ".cache"
    return base / "rsitr-bench"


def _unwritable_cache_error(cache_root: Path, error: OSError) -> DatasetError:
    reason = error.strerror or str(error)
    return DatasetError(
        f"cannot write the demo dataset to the cache folder {cache_root}: {reason}. "
        f"Set {CACHE_ENV_VAR} to a writable folder."
    )


def _remove_stale_folders(cache_root: Path, name: str = DEMO_DIR_NAME) -> None:
    """Delete temporary and replaced demo folders that an interrupted process left behind."""
    prefixes = (f".{name}.tmp-", f".{name}.stale-")
    now = time.time()
    try:
        entries = sorted(os.scandir(cache_root), key=lambda entry: entry.name)
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(prefixes) or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if age > _STALE_TEMP_AGE_S:
            logger.info(
                "Removing leftover demo folder %s, last changed %.0f s ago", entry.path, age
            )
            shutil.rmtree(entry.path, ignore_errors=True)


def _publish(temp: Path, target: Path, is_complete: Callable[[Path], bool] = is_complete_demo) -> None:
    """Rename the finished ``temp`` folder to ``target``, replacing an incomplete ``target``.

    When another process published a complete dataset first, its copy wins and ``temp`` is
    left for the caller to delete.
    """
    for _ in range(5):
        try:
            os.rename(temp, target)
            return
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
                raise
        if is_complete(target):
            logger.info("Another process finished the demo dataset first, using %s", target)
            return
        # Move the incomplete folder aside first, because a rename cannot replace a non-empty
        # folder. Another process may move it at the same moment, so a missing folder is fine.
        stale = target.with_name(f".{target.name}.stale-{uuid.uuid4().hex}")
        try:
            os.rename(target, stale)
        except FileNotFoundError:
            continue
        logger.warning("Replacing incomplete demo dataset folder %s", target)
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
    raise DatasetError(
        f"could not move the generated demo dataset to {target} because other processes kept "
        "replacing it. Delete that folder and run again."
    )


def ensure_demo(cache_dir: Path | str | None = None) -> Path:
    """Generate the demo dataset on first use and return its folder.

    The folder is ``<cache>/demo-v<version>``, where ``<cache>`` is ``cache_dir``, else
    $RSITR_CACHE_DIR, else $XDG_CACHE_HOME/rsitr-bench or ~/.cache/rsitr-bench. Generation
    writes into a temporary sibling folder and renames it when complete, so an interrupted run
    never leaves a folder that passes the completeness check. Raises DatasetError when the cache
    folder cannot be written.
    """
    return ensure_generated(DEMO_DIR_NAME, DEMO_SEED, SPLIT_SIZES, SCENE_CLASSES, cache_dir)


def ensure_pretraining_corpus(cache_dir: Path | str | None = None) -> Path:
    """Generate, on first use, the corpus that the demo model ``rsitr-tiny``/``demo`` is pretrained on.

    It comes from the same scene generator as the demo dataset with another seed, so it
    shares no image with it. It draws only half of the scene classes. The pretrained model
    therefore meets new scenes and words in the demo dataset, as a CLIP model pretrained on
    web images does in remote-sensing data.
    """
    return ensure_generated(
        PRETRAINING_DIR_NAME, PRETRAINING_SEED, PRETRAINING_SPLIT_SIZES, PRETRAINING_CLASSES, cache_dir
    )


def ensure_generated(
    name: str,
    seed: int,
    split_sizes: dict[str, int],
    classes: Sequence[str],
    cache_dir: Path | str | None = None,
) -> Path:
    """Generate the dataset ``name`` from ``seed`` into the cache on first use and return its folder."""
    cache_root = demo_cache_root(cache_dir)
    target = cache_root / name

    def is_complete(folder: Path) -> bool:
        return is_complete_demo(folder, seed, split_sizes, classes)

    if is_complete(target):
        return target

    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=cache_root))
    except OSError as error:
        raise _unwritable_cache_error(cache_root, error) from error
    _remove_stale_folders(cache_root, name)

    logger.info("Generating the %s dataset in %s", name, target)
    started = time.perf_counter()
    try:
        # mkdtemp makes the folder private, which would hide a shared cache from other users.
        os.chmod(temp, 0o755)
        _write_dataset(temp, seed, split_sizes, classes)
        _publish(temp, target, is_complete)
    except OSError as error:
        raise _unwritable_cache_error(cache_root, error) from error
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    logger.info(
        "Dataset %s ready: %d images in %s, generated in %.1f s",
        name,
        sum(split_sizes.values()),
        target,
        time.perf_counter() - started,
    )
    return target
