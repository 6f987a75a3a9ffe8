"""Dataset names and folders, and the train/val/test splits used for training.

``load_published_splits`` returns the splits as the files publish them. ``load_dataset``
returns train, val and test, and takes val from the first source that exists:

1. a val split in the files;
2. the published train/val partition of train (the precomp ``*_verify`` files), if it
   splits the published train images exactly;
3. a seeded partition of the train images, ``val_fraction`` of them, made by image so
   that all captions of an image stay in one split.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from pathlib import Path

from rsitr_bench.data.dataset import RetrievalDataset, Split
from rsitr_bench.data.formats import read_dataset_folder
from rsitr_bench.errors import DatasetError

_logger = logging.getLogger(__name__)

KNOWN_DATASETS = ("rsicd", "rsitmd", "ucm", "sydney")
"""Names that resolve to ``<data_root>/<name>/``."""

DEMO_DATASET = "demo"
DATA_ROOT_ENV = "RSITR_DATA_ROOT"

KARPATHY_VAL_AS_TEST = ("ucm", "sydney")
"""Datasets whose published test files are the standard Karpathy val split."""


def resolve_dataset_folder(
    name_or_folder: str | Path, data_root: str | Path | None = None
) -> tuple[str, Path]:
    """Return the dataset name and folder for a known name, ``demo`` or a folder path.

    A value with a path separator is a folder. A known name (case-insensitive) resolves to
    ``<data_root>/<name>/``, with ``data_root`` defaulting to $RSITR_DATA_ROOT, and wins
    over a folder of the same name in the working directory (write ``./rsicd`` for that
    folder). Any other existing folder is used as given, and its lower-cased base name is
    the dataset name.
    """
    value = str(name_or_folder)
    has_separator = os.sep in value or (os.altsep is not None and os.altsep in value)
    lowered = value.lower()

    if not has_separator and lowered in KNOWN_DATASETS:
        root = _data_root(data_root, lowered)
        folder = root / lowered
        if not folder.is_dir():
            raise DatasetError(
                f"Dataset folder {folder} for {lowered} does not exist. Put the {lowered} "
                f"split files there, or pass --data-root (or set {DATA_ROOT_ENV}) with the "
                f"folder that contains {lowered}/."
            )
        return lowered, folder

    if not has_separator and lowered == DEMO_DATASET:
        # Imported here because the demo module generates images and is needed by no
        # other dataset.
        from rsitr_bench.data.demo import ensure_demo

        return DEMO_DATASET, Path(ensure_demo())

    folder = Path(value).expanduser()
    if folder.is_dir():
        folder = folder.resolve()
        return folder.name.lower(), folder
    if has_separator:
        raise DatasetError(f"Dataset folder {folder} does not exist or is not a folder.")
    raise DatasetError(
        f"Unknown dataset {value!r}. Known names: {', '.join(KNOWN_DATASETS)} and "
        f"{DEMO_DATASET}. A path to a dataset folder works too."
    )


def _data_root(data_root: str | Path | None, name: str) -> Path:
    if data_root is None:
        data_root = os.environ.get(DATA_ROOT_ENV) or None
    if data_root is None:
        raise DatasetError(
            f"Dataset {name} needs a data root, the folder that contains {name}/. "
            f"Pass --data-root or set {DATA_ROOT_ENV}."
        )
    return Path(data_root).expanduser().absolute()


def load_published_splits(
    name_or_folder: str | Path,
    data_root: str | Path | None = None,
    image_dir: str | Path | None = None,
) -> RetrievalDataset:
    """Parse a dataset's splits as published, plus its train/val partition if any.

    ``image_dir`` defaults to ``<dataset folder>/images``.
    """
    name, folder = resolve_dataset_folder(name_or_folder, data_root)
    images = Path(image_dir).expanduser().absolute() if image_dir is not None else None
    dataset = read_dataset_folder(folder, name, image_dir=images)
    if name in KARPATHY_VAL_AS_TEST and "test" in dataset.splits:
        _add_note(
            dataset,
            f"The {name} test split here is the standard Karpathy val split, so label results "
            "on it as val-split results.",
        )
    return dataset


def load_dataset(
    name_or_folder: str | Path,
    data_root: str | Path | None = None,
    image_dir: str | Path | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> RetrievalDataset:
    """Load a dataset with the train, val and test splits used for training.

    See the module docstring for where val comes from. ``val_fraction`` and ``seed`` apply
    only when val is made from train. Image files are not checked here. Call
    ``require_images`` for that.
    """
    return make_training_splits(
        load_published_splits(name_or_folder, data_root, image_dir),
        val_fraction=val_fraction,
        seed=seed,
    )


def make_training_splits(
    dataset: RetrievalDataset, val_fraction: float = 0.1, seed: int = 0
) -> RetrievalDataset:
    """Return a copy of a published dataset with exactly the splits train, val and test."""
    for required in ("train", "test"):
        if required not in dataset.splits:
            raise DatasetError(
                f"Dataset {dataset.name} in {dataset.root} has no {required} split "
                f"(it has {', '.join(dataset.splits) or 'none'}). Training and evaluation "
                "need both a train and a test split."
            )

    result = dataclasses.replace(dataset, splits=dict(dataset.splits), notes=list(dataset.notes))
    if "val" in dataset.splits:
        _logger.info("%s: using the val split from the files", dataset.name)
    elif _partition_is_usable(result):
        assert result.train_val_partition is not None
        train = result.train_val_partition["train"]
        val = result.train_val_partition["val"]
        result.splits["train"] = train
        result.splits["val"] = val
        _add_note(
            result,
            f"Train and val are the published train/val partition of the train split "
            f"({train.num_images:,} / {val.num_images:,} images).",
        )
    else:
        train, val = carve_val_split(result.splits["train"], val_fraction, seed)
        result.splits["train"] = train
        result.splits["val"] = val
        _add_note(
            result,
            f"The files have no val split, so val is {val.num_images:,} of the "
            f"{train.num_images + val.num_images:,} train images (val_fraction {val_fraction}, "
            f"seed {seed}), chosen by image. These images are not trained on.",
        )
    result.splits = {split: result.splits[split] for split in ("train", "val", "test")}
    return result


def _partition_is_usable(dataset: RetrievalDataset) -> bool:
    """Return whether the published partition splits the train images exactly.

    When a partition exists but does not, a note on ``dataset`` gives the counts.
    """
    partition = dataset.train_val_partition
    if partition is None:
        return False
    published = set(dataset.splits["train"].images)
    train = set(partition["train"].images)
    val = set(partition["val"].images)
    overlap = train & val
    outside = (train | val) - published
    left_out = published - train - val
    if not overlap and not outside and not left_out:
        return True
    _add_note(
        dataset,
        f"The published train/val partition files do not split the train images exactly "
        f"({len(overlap):,} images in both, {len(outside):,} not in train, "
        f"{len(left_out):,} train images in neither), so they are not used.",
    )
    return False


def carve_val_split(train: Split, val_fraction: float, seed: int) -> tuple[Split, Split]:
    """Split train into (train, val) by image, with ``val_fraction`` of the images in val.

    Val gets round(val_fraction x images) images, at least 1 and at most images - 1. The
    choice depends only on the seed and the image names. Images are ranked by SHA-256 of
    ``"<seed>:<name>"``, so the choice is the same on every platform and Python version and
    does not depend on the order of the file. Both parts keep the order of ``train``.
    """
    if not 0.0 < val_fraction < 1.0:
        raise DatasetError(
            f"Invalid val_fraction {val_fraction}: expected a number strictly between 0 and 1, such as 0.1."
        )
    if train.num_images < 2:
        raise DatasetError(
            f"The train split has {train.num_images} image(s), so no val split can be made "
            "from it. Add a val split to the dataset files."
        )

    val_count = min(train.num_images - 1, max(1, round(val_fraction * train.num_images)))
    ranked = sorted(
        range(train.num_images),
        key=lambda index: hashlib.sha256(f"{seed}:{train.images[index]}".encode()).digest(),
    )
    val_indices = set(ranked[:val_count])
    train_indices = [index for index in range(train.num_images) if index not in val_indices]
    return train.subset(train_indices), train.subset(sorted(val_indices))


def _add_note(dataset: RetrievalDataset, note: str) -> None:
    dataset.notes.append(note)
    _logger.info("%s: %s", dataset.name, note)
