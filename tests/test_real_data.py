"""Counts and checks on the real published split files under $RSITR_DATA_ROOT."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rsitr_bench.data.images import decode_images, image_paths, missing_images, require_images
from rsitr_bench.data.labels import UCM_CLASSES, count_labelled_images
from rsitr_bench.data.registry import load_dataset, load_published_splits
from rsitr_bench.errors import DatasetError

pytestmark = pytest.mark.real_data


def split_counts(dataset) -> dict[str, tuple[int, int]]:
    return {name: (split.num_images, split.num_captions) for name, split in dataset.splits.items()}


@pytest.mark.parametrize(
    ("name", "counts"),
    [
        ("rsicd", {"train": (9_828, 49_140), "test": (1_093, 5_465)}),
        # The published train split lists 4,291 images and 21,455 caption lines. 20 of those
        # lines are empty, and they are all five captions of 4 images, so those images go too.
        ("rsitmd", {"train": (4_287, 21_435), "test": (452, 2_260)}),
        ("ucm", {"train": (1_680, 8_400), "test": (210, 1_050)}),
        ("sydney", {"train": (497, 2_485), "test": (58, 290)}),
    ],
)
def test_published_split_counts(real_data_root: Path, name: str, counts: dict) -> None:
    dataset = load_published_splits(name, data_root=real_data_root)

    assert dataset.format == "precomp"
    assert split_counts(dataset) == counts


def test_rsitmd_empty_captions_reported(real_data_root: Path) -> None:
    dataset = load_published_splits("rsitmd", data_root=real_data_root)
    dropped = [note for note in dataset.notes if note.startswith("Dropped empty captions")]

    assert len(dropped) == 1
    assert "20 from the published splits (train_caps.txt: 20)" in dropped[0]
    assert "mountain_2378.tif" in dropped[0]
    assert all(len(captions) > 0 for captions in dataset.splits["train"].image_captions())


@pytest.mark.parametrize(
    ("name", "train_images", "val_images"),
    [("rsicd", 7_862, 1_966), ("rsitmd", 3_429, 858), ("sydney", 397, 100)],
)
def test_published_partition_used(
    real_data_root: Path, name: str, train_images: int, val_images: int
) -> None:
    dataset = load_dataset(name, data_root=real_data_root)

    assert dataset.splits["train"].num_images == train_images
    assert dataset.splits["val"].num_images == val_images
    assert not set(dataset.splits["train"].images) & set(dataset.splits["val"].images)
    assert any("published train/val partition" in note for note in dataset.notes)


def test_ucm_val_carved_from_train(real_data_root: Path) -> None:
    dataset = load_dataset("ucm", data_root=real_data_root, val_fraction=0.1, seed=0)

    assert dataset.splits["val"].num_images == 168
    assert dataset.splits["train"].num_images == 1_512
    assert dataset.splits["test"].num_images == 210
    assert any("Karpathy val split" in note for note in dataset.notes)
    assert any("no val split" in note for note in dataset.notes)


def test_ucm_labels_cover_all_classes(real_data_root: Path) -> None:
    dataset = load_published_splits("ucm", data_root=real_data_root)

    assert dataset.class_names == sorted(UCM_CLASSES)
    assert count_labelled_images(dataset) == (1_890, 1_890)


def test_rsicd_labels_partial(real_data_root: Path) -> None:
    dataset = load_published_splits("rsicd", data_root=real_data_root)
    labelled, total = count_labelled_images(dataset)

    assert total == 10_921
    assert 0 < labelled < total
    assert dataset.class_names is not None and "airport" in dataset.class_names


def test_sydney_has_no_labels(real_data_root: Path) -> None:
    dataset = load_published_splits("sydney", data_root=real_data_root)

    assert dataset.class_names is None


def test_rsicd_missing_images_message(real_data_root: Path) -> None:
    dataset = load_published_splits("rsicd", data_root=real_data_root)

    with pytest.raises(DatasetError) as raised:
        require_images(dataset)

    message = str(raised.value)
    assert "10,906 of 10,921 images are missing" in message
    assert str(real_data_root / "rsicd" / "images") in message


def test_mini_counts(real_data_root: Path) -> None:
    dataset = load_dataset(real_data_root / "mini")

    assert split_counts(dataset) == {"train": (20, 100), "val": (4, 20), "test": (10, 50)}
    assert dataset.name == "mini"
    assert dataset.class_names == ["agricultural", "sparseresidential", "stadium"]


def test_mini_images_all_decode(real_data_root: Path) -> None:
    dataset = load_dataset(str(real_data_root / "mini"))

    require_images(dataset)
    assert all(not names for names in missing_images(dataset).values())
    for split in dataset.splits:
        pixels = decode_images(image_paths(dataset, split), size=64)
        assert pixels.shape == (dataset.splits[split].num_images, 3, 64, 64)
        assert pixels.dtype == torch.uint8
        assert int(pixels.float().std()) > 0
