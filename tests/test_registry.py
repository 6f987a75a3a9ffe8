"""Dataset names and folders, and the train/val/test splits used for training."""

from __future__ import annotations

import logging
import sys
import types
from pathlib import Path

import pytest

from rsitr_bench.data.dataset import Split
from rsitr_bench.data.registry import (
    DATA_ROOT_ENV,
    KNOWN_DATASETS,
    carve_val_split,
    load_dataset,
    load_published_splits,
    resolve_dataset_folder,
)
from rsitr_bench.errors import DatasetError


def captions_of(name: str) -> list[str]:
    return [f"{name} caption {number}" for number in range(5)]


def write_dataset(folder: Path, write_split, splits: dict[str, list[str]], suffix: str = "") -> Path:
    """Write precomp splits with five captions per image, one file name per image."""
    for split, names in splits.items():
        write_split(folder, split, names, [c for name in names for c in captions_of(name)], suffix)
    return folder


@pytest.fixture(autouse=True)
def no_data_root_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)


# --- names and folders -----------------------------------------------------------------


def test_known_name_under_data_root(tmp_path: Path, write_split) -> None:
    write_dataset(tmp_path / "rsicd", write_split, {"train": ["a_1.jpg"], "test": ["b_1.jpg"]})

    name, folder = resolve_dataset_folder("RSICD", data_root=tmp_path)
    dataset = load_published_splits("rsicd", data_root=tmp_path)

    assert name == "rsicd"
    assert folder == tmp_path / "rsicd"
    assert dataset.name == "rsicd"
    assert dataset.image_dir == tmp_path / "rsicd" / "images"


def test_data_root_from_environment(
    tmp_path: Path, write_split, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dataset(tmp_path / "ucm", write_split, {"train": ["1.tif"], "test": ["2.tif"]})
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path))

    name, folder = resolve_dataset_folder("ucm")

    assert (name, folder) == ("ucm", tmp_path / "ucm")


def test_name_without_data_root() -> None:
    with pytest.raises(DatasetError) as raised:
        resolve_dataset_folder("rsitmd")

    message = str(raised.value)
    assert "--data-root" in message
    assert DATA_ROOT_ENV in message


def test_name_with_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as raised:
        resolve_dataset_folder("sydney", data_root=tmp_path)

    assert str(tmp_path / "sydney") in str(raised.value)


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(DatasetError) as raised:
        resolve_dataset_folder("flickr30k")

    message = str(raised.value)
    assert "'flickr30k'" in message
    for name in KNOWN_DATASETS:
        assert name in message
    assert "demo" in message
    assert "folder" in message


def test_missing_folder_path(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        resolve_dataset_folder(str(tmp_path / "nowhere"))


def test_folder_path_used_as_given(tmp_path: Path, write_split) -> None:
    folder = write_dataset(tmp_path / "MyData", write_split, {"test": ["a_1.jpg"]})

    name, resolved = resolve_dataset_folder(str(folder), data_root=tmp_path / "unused")

    assert name == "mydata"
    assert resolved == folder


def test_relative_folder_without_separator(
    tmp_path: Path, write_split, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dataset(tmp_path / "local", write_split, {"test": ["a_1.jpg"]})
    monkeypatch.chdir(tmp_path)

    name, folder = resolve_dataset_folder("local")

    assert (name, folder) == ("local", tmp_path / "local")


def test_known_name_wins_over_local_folder(
    tmp_path: Path, write_split, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dataset(tmp_path / "cwd" / "rsicd", write_split, {"test": ["a_1.jpg"]})
    write_dataset(tmp_path / "root" / "rsicd", write_split, {"test": ["b_1.jpg"]})
    monkeypatch.chdir(tmp_path / "cwd")

    assert resolve_dataset_folder("rsicd", data_root=tmp_path / "root")[1] == tmp_path / "root" / "rsicd"
    assert resolve_dataset_folder("./rsicd")[1] == tmp_path / "cwd" / "rsicd"


def test_demo_uses_ensure_demo(
    tmp_path: Path, write_split, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_dataset(tmp_path / "generated", write_split, {"train": ["a_1.jpg", "b_1.jpg"], "test": ["c_1.jpg"]})
    fake = types.ModuleType("rsitr_bench.data.demo")
    fake.ensure_demo = lambda: folder  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "rsitr_bench.data.demo", fake)

    dataset = load_published_splits("demo")

    assert dataset.name == "demo"
    assert dataset.root == folder


def test_image_dir_override(tmp_path: Path, write_split) -> None:
    folder = write_dataset(tmp_path / "set", write_split, {"test": ["a_1.jpg"]})

    dataset = load_published_splits(str(folder), image_dir=tmp_path / "pictures")

    assert dataset.image_dir == tmp_path / "pictures"


def test_karpathy_val_note_for_ucm_and_sydney(tmp_path: Path, write_split) -> None:
    for name in ("ucm", "sydney", "rsicd"):
        write_dataset(tmp_path / name, write_split, {"train": ["1.tif", "2.tif"], "test": ["3.tif"]})

    for name in ("ucm", "sydney"):
        notes = load_published_splits(name, data_root=tmp_path).notes
        assert any("Karpathy val split" in note for note in notes), name
    assert not any("Karpathy" in note for note in load_published_splits("rsicd", data_root=tmp_path).notes)


# --- training splits -------------------------------------------------------------------


def test_val_split_from_files(tmp_path: Path, write_split) -> None:
    folder = write_dataset(
        tmp_path / "set",
        write_split,
        {"train": ["a_1.jpg", "b_1.jpg"], "val": ["v_1.jpg"], "test": ["t_1.jpg"]},
    )
    write_dataset(folder, write_split, {"train": ["a_1.jpg"], "val": ["b_1.jpg"]}, suffix="_verify")

    dataset = load_dataset(str(folder))

    assert list(dataset.splits) == ["train", "val", "test"]
    assert dataset.splits["train"].images == ["a_1.jpg", "b_1.jpg"]
    assert dataset.splits["val"].images == ["v_1.jpg"]


def test_partition_used_for_val(tmp_path: Path, write_split) -> None:
    folder = write_dataset(
        tmp_path / "set", write_split, {"train": ["a_1.jpg", "b_1.jpg", "c_1.jpg"], "test": ["t_1.jpg"]}
    )
    write_dataset(folder, write_split, {"train": ["c_1.jpg", "a_1.jpg"], "val": ["b_1.jpg"]}, suffix="_verify")

    dataset = load_dataset(str(folder))

    assert dataset.splits["train"].images == ["c_1.jpg", "a_1.jpg"]
    assert dataset.splits["val"].images == ["b_1.jpg"]
    assert dataset.splits["test"].images == ["t_1.jpg"]
    assert any("published train/val partition" in note for note in dataset.notes)


def test_partition_that_overlaps_falls_back(tmp_path: Path, write_split) -> None:
    train_names = [f"scene_{index}.jpg" for index in range(20)]
    folder = write_dataset(tmp_path / "set", write_split, {"train": train_names, "test": ["t_1.jpg"]})
    write_dataset(folder, write_split, {"train": train_names[:12], "val": train_names[10:]}, suffix="_verify")

    dataset = load_dataset(str(folder), val_fraction=0.25, seed=3)

    assert dataset.splits["val"].num_images == 5
    assert dataset.splits["train"].num_images == 15
    assert any("2 images in both" in note for note in dataset.notes)
    assert any("no val split" in note for note in dataset.notes)


def test_partition_missing_images_falls_back(tmp_path: Path, write_split) -> None:
    train_names = [f"scene_{index}.jpg" for index in range(10)]
    folder = write_dataset(tmp_path / "set", write_split, {"train": train_names, "test": ["t_1.jpg"]})
    write_dataset(folder, write_split, {"train": train_names[:6], "val": train_names[6:9]}, suffix="_verify")

    dataset = load_dataset(str(folder))

    assert any("1 train images in neither" in note for note in dataset.notes)
    assert dataset.splits["train"].num_images + dataset.splits["val"].num_images == 10


def test_seeded_val_split_logged_and_noted(
    tmp_path: Path, write_split, caplog: pytest.LogCaptureFixture
) -> None:
    train_names = [f"scene_{index}.jpg" for index in range(30)]
    folder = write_dataset(tmp_path / "set", write_split, {"train": train_names, "test": ["t_1.jpg"]})

    with caplog.at_level(logging.INFO, logger="rsitr_bench.data.registry"):
        dataset = load_dataset(str(folder), val_fraction=0.1, seed=7)

    assert dataset.splits["val"].num_images == 3
    assert dataset.splits["val"].num_captions == 15
    assert any("3 of the 30 train images" in note for note in dataset.notes)
    assert any("3 of the 30 train images" in record.getMessage() for record in caplog.records)


def test_missing_test_split(tmp_path: Path, write_split) -> None:
    folder = write_dataset(tmp_path / "set", write_split, {"train": ["a_1.jpg", "b_1.jpg"]})

    with pytest.raises(DatasetError, match="no test split"):
        load_dataset(str(folder))


def make_train(image_count: int, captions_per_image: int = 5, reverse: bool = False) -> Split:
    images = [f"scene_{index}.jpg" for index in range(image_count)]
    if reverse:
        images.reverse()
    captions = [f"{name} {number}" for name in images for number in range(captions_per_image)]
    caption_image = [index for index in range(image_count) for _ in range(captions_per_image)]
    return Split(images=images, captions=captions, caption_image=caption_image)


def test_carve_is_deterministic() -> None:
    train = make_train(100)

    first_train, first_val = carve_val_split(train, 0.1, seed=0)
    second_train, second_val = carve_val_split(train, 0.1, seed=0)
    _, other_val = carve_val_split(train, 0.1, seed=1)

    assert first_val.images == second_val.images
    assert first_train.images == second_train.images
    assert other_val.images != first_val.images


def test_carve_does_not_depend_on_file_order() -> None:
    _, val = carve_val_split(make_train(50), 0.2, seed=5)
    _, reversed_val = carve_val_split(make_train(50, reverse=True), 0.2, seed=5)

    assert set(val.images) == set(reversed_val.images)


def test_carve_by_image() -> None:
    train = make_train(40, captions_per_image=3)

    new_train, val = carve_val_split(train, 0.25, seed=2)

    assert val.num_images == 10
    assert new_train.num_images == 30
    assert not set(new_train.images) & set(val.images)
    assert new_train.num_captions + val.num_captions == train.num_captions
    for split in (new_train, val):
        for image, caption_indices in enumerate(split.image_captions()):
            assert len(caption_indices) == 3
            assert all(split.captions[index].startswith(split.images[image]) for index in caption_indices)


def test_carve_keeps_order() -> None:
    train = make_train(20)

    new_train, val = carve_val_split(train, 0.3, seed=0)
    order = {name: index for index, name in enumerate(train.images)}

    assert [order[name] for name in new_train.images] == sorted(order[name] for name in new_train.images)
    assert [order[name] for name in val.images] == sorted(order[name] for name in val.images)


def test_carve_at_least_one_image() -> None:
    new_train, val = carve_val_split(make_train(3), 0.01, seed=0)

    assert val.num_images == 1
    assert new_train.num_images == 2


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_carve_rejects_fraction(fraction: float) -> None:
    with pytest.raises(DatasetError, match="val_fraction"):
        carve_val_split(make_train(10), fraction, seed=0)


def test_carve_needs_two_images() -> None:
    with pytest.raises(DatasetError, match="1 image"):
        carve_val_split(make_train(1), 0.5, seed=0)
