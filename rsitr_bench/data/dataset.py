"""The one in-memory form that every dataset format is parsed into.

A split lists its images once each and its captions once each. ``caption_image[j]`` is the
index (into ``images``) of the image that caption ``j`` describes. Images keep the order of
the source file and captions keep the order in which they were listed, so ranks and tie
breaks are reproducible from the files alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SPLITS = ("train", "val", "test")


@dataclass
class Split:
    """Images and captions of one split."""

    images: list[str]
    """File names relative to the dataset's image folder, one per image, no repeats."""
    captions: list[str]
    caption_image: list[int]
    """For each caption, the index in ``images`` of the image it describes."""
    labels: list[int] | None = None
    """Scene class index per image (-1 for an image without a scene), or None where no file name carries a scene."""
    uncaptioned_images: list[str] = field(default_factory=list)
    """Images the source file lists whose captions are all empty. They are left out of ``images``."""

    def __post_init__(self) -> None:
        if len(self.captions) != len(self.caption_image):
            raise ValueError(
                f"split has {len(self.captions)} captions but {len(self.caption_image)} "
                "caption-to-image indices"
            )
        if self.labels is not None and len(self.labels) != len(self.images):
            raise ValueError(f"split has {len(self.images)} images but {len(self.labels)} labels")

    @property
    def listed_images(self) -> int:
        """Number of images the source file lists, including those without a caption."""
        return len(self.images) + len(self.uncaptioned_images)

    @property
    def num_images(self) -> int:
        return len(self.images)

    @property
    def num_captions(self) -> int:
        return len(self.captions)

    def image_captions(self) -> list[list[int]]:
        """Return, for each image, the indices of its captions in listing order."""
        per_image: list[list[int]] = [[] for _ in self.images]
        for caption_index, image_index in enumerate(self.caption_image):
            per_image[image_index].append(caption_index)
        return per_image

    def subset(self, image_indices: list[int]) -> Split:
        """Return the split restricted to the given images with all their captions.

        Images and captions keep their order in this split, whatever the order of
        ``image_indices``. The subset has no ``uncaptioned_images``.
        """
        keep = sorted(set(image_indices))
        new_index = {old: new for new, old in enumerate(keep)}
        captions: list[str] = []
        caption_image: list[int] = []
        for caption, image_index in zip(self.captions, self.caption_image):
            if image_index in new_index:
                captions.append(caption)
                caption_image.append(new_index[image_index])
        labels = None if self.labels is None else [self.labels[i] for i in keep]
        return Split(
            images=[self.images[i] for i in keep],
            captions=captions,
            caption_image=caption_image,
            labels=labels,
        )


@dataclass
class RetrievalDataset:
    """A parsed dataset: its splits, where its images are, and its scene classes."""

    name: str
    root: Path
    image_dir: Path
    format: str
    """One of ``precomp``, ``karpathy``, ``coco``."""
    splits: dict[str, Split]
    class_names: list[str] | None = None
    """Scene class names indexed by ``Split.labels``, or None without labels."""
    notes: list[str] = field(default_factory=list)
    """Facts a user must see in the log and in the run record, such as a val split made from train,
    dropped empty captions, or a test split that is the standard val split."""
    train_val_partition: dict[str, Split] | None = None
    """A published train/val partition of the train split (the ``*_verify`` files of the
    precomp format), with keys ``train`` and ``val``, or None where the folder has none."""

    def split(self, name: str) -> Split:
        return self.splits[name]

    @property
    def has_labels(self) -> bool:
        return self.class_names is not None and all(
            split.labels is not None for split in self.splits.values()
        )
