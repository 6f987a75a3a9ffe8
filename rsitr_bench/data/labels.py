"""Scene labels read from image file names.

RSICD and RSITMD name most images ``<scene>_<number>``, such as ``airport_12.jpg``, so the
scene is the part before the last underscore. UCM and Sydney name images by number only.
For UCM the number gives the scene, because its 2,100 images are 21 classes of 100 images
each, numbered in alphabetical class order. Sydney numbers and RSICD's bare numbers
(``00001.jpg``) carry no scene, and those images get label -1.
"""

from __future__ import annotations

import logging
from pathlib import PurePosixPath

from rsitr_bench.data.dataset import RetrievalDataset, Split

_logger = logging.getLogger(__name__)

UNLABELLED = -1
"""Label index of an image whose file name carries no scene."""

DATASET_PREFIXES = ("rsicd", "rsitmd", "ucm", "sydney")
"""Dataset names that may prefix a file name, as in ``ucm_1.tif``, to mark its source."""

UCM_CLASSES = (
    "agricultural",
    "airplane",
    "baseballdiamond",
    "beach",
    "buildings",
    "chaparral",
    "denseresidential",
    "forest",
    "freeway",
    "golfcourse",
    "harbor",
    "intersection",
    "mediumresidential",
    "mobilehomepark",
    "overpass",
    "parkinglot",
    "river",
    "runway",
    "sparseresidential",
    "storagetanks",
    "tenniscourt",
)
UCM_IMAGES_PER_CLASS = 100

# UCM-Captions numbers its images from 1, not 0. The published split files list 1.tif to
# 2090.tif and never 0.tif, and the captions of 1.tif to 100.tif describe farmland while
# those of 101.tif describe airplanes. So image n belongs to class (n - 1) // 100.
UCM_FIRST_NUMBER = 1


def scene_of(file_name: str, dataset_name: str | None = None) -> str | None:
    """Return the scene named by an image file name, or None where the name carries none.

    A leading dataset prefix (``rsicd_``, ``rsitmd_``, ``ucm_``, ``sydney_``) is stripped
    first and sets the source dataset. Otherwise ``dataset_name`` is the source, which
    decides what a bare number means: a UCM class for ``ucm``, no scene elsewhere.
    Scenes are lower-cased.
    """
    stem = PurePosixPath(file_name.replace("\\", "/")).stem.lower()
    source = (dataset_name or "").lower()
    for prefix in DATASET_PREFIXES:
        if stem.startswith(prefix + "_"):
            stem = stem[len(prefix) + 1 :]
            source = prefix
            break

    if stem.isdigit():
        if source == "ucm":
            return _ucm_class(int(stem))
        return None

    head, separator, number = stem.rpartition("_")
    if separator and number.isdigit() and any(character.isalpha() for character in head):
        return head
    return None


def _ucm_class(number: int) -> str | None:
    class_index = (number - UCM_FIRST_NUMBER) // UCM_IMAGES_PER_CLASS
    if number < UCM_FIRST_NUMBER or class_index >= len(UCM_CLASSES):
        return None
    return UCM_CLASSES[class_index]


def assign_labels(dataset: RetrievalDataset) -> int:
    """Set ``class_names`` and every split's ``labels`` from the image file names.

    Class names are the scenes found over all splits, sorted alphabetically. Images
    without a scene get -1. Where no image has a scene, ``class_names`` and all labels
    stay None. Returns the number of distinct images that carry a label.
    """
    splits = _all_splits(dataset)
    scenes: dict[str, str | None] = {}
    for split in splits:
        for name in split.images:
            if name not in scenes:
                scenes[name] = scene_of(name, dataset.name)

    class_names = sorted({scene for scene in scenes.values() if scene is not None})
    labelled = sum(scene is not None for scene in scenes.values())
    if not class_names:
        dataset.class_names = None
        for split in splits:
            split.labels = None
        _logger.info("%s: no image file name carries a scene label", dataset.name)
        return 0

    class_index = {name: index for index, name in enumerate(class_names)}
    dataset.class_names = class_names
    for split in splits:
        split.labels = [_label_index(scenes[name], class_index) for name in split.images]

    _logger.info(
        "%s: %s of %s images carry a scene label (%d classes)",
        dataset.name,
        f"{labelled:,}",
        f"{len(scenes):,}",
        len(class_names),
    )
    if labelled < len(scenes):
        dataset.notes.append(
            f"Scene labels are known for {labelled:,} of {len(scenes):,} images. The others "
            f"have file names without a scene and get label {UNLABELLED}."
        )
    return labelled


def _label_index(scene: str | None, class_index: dict[str, int]) -> int:
    if scene is None:
        return UNLABELLED
    return class_index[scene]


def _all_splits(dataset: RetrievalDataset) -> list[Split]:
    splits = list(dataset.splits.values())
    if dataset.train_val_partition is not None:
        splits.extend(dataset.train_val_partition.values())
    return splits


def count_labelled_images(dataset: RetrievalDataset) -> tuple[int, int]:
    """Return how many distinct images carry a scene label, and how many images there are."""
    labels_by_name: dict[str, int] = {}
    for split in dataset.splits.values():
        for index, name in enumerate(split.images):
            label = UNLABELLED if split.labels is None else split.labels[index]
            labels_by_name.setdefault(name, label)
    labelled = sum(label != UNLABELLED for label in labels_by_name.values())
    return labelled, len(labels_by_name)
