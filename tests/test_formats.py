"""Parsing of the precomp, Karpathy and COCO formats, and scene labels from file names."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rsitr_bench.data.dataset import RetrievalDataset, Split
from rsitr_bench.data.formats import (
    captions_per_name,
    coco_split_of,
    detect_format,
    pair_precomp_files,
    read_dataset_folder,
)
from rsitr_bench.data.labels import UNLABELLED, count_labelled_images, scene_of
from rsitr_bench.errors import DatasetError


def captions_of(name: str, count: int = 5) -> list[str]:
    return [f"{name} caption {number}" for number in range(count)]


def grouped_captions(split: Split) -> dict[str, list[str]]:
    """Map each image name to its captions in listing order."""
    return {
        split.images[image]: [split.captions[index] for index in indices]
        for image, indices in enumerate(split.image_captions())
    }


# --- precomp ---------------------------------------------------------------------------


def test_precomp_one_name_per_image(tmp_path: Path, write_split) -> None:
    names = ["a_1.jpg", "b_2.jpg", "c_3.jpg"]
    captions = [caption for name in names for caption in captions_of(name)]
    write_split(tmp_path, "train", names, captions)

    dataset = read_dataset_folder(tmp_path, "example")
    train = dataset.splits["train"]

    assert dataset.format == "precomp"
    assert train.images == names
    assert train.captions == captions
    assert train.caption_image == [0] * 5 + [1] * 5 + [2] * 5


def test_precomp_three_captions_per_name(tmp_path: Path, write_split) -> None:
    names = ["x.png", "y.png"]
    captions = captions_of("x", 3) + captions_of("y", 3)
    write_split(tmp_path, "test", names, captions)

    test = read_dataset_folder(tmp_path, "example").splits["test"]

    assert test.num_images == 2
    assert test.caption_image == [0, 0, 0, 1, 1, 1]


def test_precomp_one_name_per_caption(tmp_path: Path, write_split) -> None:
    # "b" appears in two runs that are not consecutive; it stays one image at its first place.
    names = ["a.jpg", "a.jpg", "b.jpg", "c.jpg", "b.jpg", "c.jpg"]
    captions = ["a0", "a1", "b0", "c0", "b1", "c1"]
    write_split(tmp_path, "test", names, captions)

    test = read_dataset_folder(tmp_path, "example").splits["test"]

    assert test.images == ["a.jpg", "b.jpg", "c.jpg"]
    assert test.captions == captions
    assert test.caption_image == [0, 0, 1, 2, 1, 2]
    assert grouped_captions(test)["b.jpg"] == ["b0", "b1"]


def test_precomp_all_three_splits(tmp_path: Path, write_split) -> None:
    for split, names in {"train": ["t1.jpg", "t2.jpg"], "val": ["v1.jpg"], "test": ["s1.jpg"]}.items():
        write_split(tmp_path, split, names, [c for name in names for c in captions_of(name)])

    dataset = read_dataset_folder(tmp_path, "example")

    assert list(dataset.splits) == ["train", "val", "test"]
    assert dataset.splits["val"].images == ["v1.jpg"]
    assert dataset.root == tmp_path
    assert dataset.image_dir == tmp_path / "images"


def test_precomp_crlf_bom_and_whitespace(tmp_path: Path, write_text) -> None:
    write_text(tmp_path / "test_filename.txt", ["a.jpg  ", "b.jpg\t"], newline="\r\n", bom=True)
    write_text(
        tmp_path / "test_caps.txt",
        ["  first of a ", "second of a", "first of b", "second of b  "],
        newline="\r\n",
        bom=True,
    )

    test = read_dataset_folder(tmp_path, "example").splits["test"]

    assert test.images == ["a.jpg", "b.jpg"]
    assert test.captions == ["first of a", "second of a", "first of b", "second of b"]
    assert all("\r" not in caption and "\ufeff" not in caption for caption in test.captions)


def test_precomp_trailing_blank_caption_lines(tmp_path: Path, write_text) -> None:
    write_text(tmp_path / "test_filename.txt", ["a.jpg", "b.jpg"])
    write_text(tmp_path / "test_caps.txt", ["a0", "a1", "b0", "b1", "", ""])

    test = read_dataset_folder(tmp_path, "example").splits["test"]

    assert test.captions == ["a0", "a1", "b0", "b1"]


def test_caption_with_line_separator_character(tmp_path: Path, write_text) -> None:
    # U+2028 inside a caption is not a line end for the split files.
    write_text(tmp_path / "test_filename.txt", ["a.jpg"])
    write_text(tmp_path / "test_caps.txt", ["left\u2028right"])

    test = read_dataset_folder(tmp_path, "example").splits["test"]

    assert test.captions == ["left\u2028right"]


def test_empty_captions_dropped_with_one_warning(
    tmp_path: Path, write_split, caplog: pytest.LogCaptureFixture
) -> None:
    names = ["a.jpg", "b.jpg"]
    captions = ["a0", "", "a2", "a3", "   ", "b0", "", "b2", "b3", "b4"]
    write_split(tmp_path, "train", names, captions)

    with caplog.at_level(logging.WARNING):
        dataset = read_dataset_folder(tmp_path, "example")
    train = dataset.splits["train"]
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]

    assert train.captions == ["a0", "a2", "a3", "b0", "b2", "b3", "b4"]
    assert train.caption_image == [0, 0, 0, 1, 1, 1, 1]
    assert len(warnings) == 1
    assert "3 from the published splits" in warnings[0].getMessage()
    assert any("3 from the published splits" in note for note in dataset.notes)


def test_image_with_only_empty_captions_dropped(
    tmp_path: Path, write_split, caplog: pytest.LogCaptureFixture
) -> None:
    names = ["a.jpg", "empty.jpg", "c.jpg"]
    captions = ["a0", "a1", "", "", "c0", "c1"]
    write_split(tmp_path, "train", names, captions)

    with caplog.at_level(logging.WARNING):
        dataset = read_dataset_folder(tmp_path, "example")
    train = dataset.splits["train"]
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]

    assert train.images == ["a.jpg", "c.jpg"]
    assert train.caption_image == [0, 0, 1, 1]
    assert len(warnings) == 1
    assert "empty.jpg" in warnings[0].getMessage()
    assert "Dropped 1 image left without captions" in warnings[0].getMessage()


def test_unpairable_files_name_both_counts(tmp_path: Path, write_split) -> None:
    write_split(tmp_path, "train", ["a.jpg", "b.jpg", "c.jpg"], [f"caption {i}" for i in range(7)])

    with pytest.raises(DatasetError) as raised:
        read_dataset_folder(tmp_path, "example")

    message = str(raised.value)
    assert "train_caps.txt (7 lines)" in message
    assert "train_filename.txt (3 lines)" in message


def test_more_names_than_captions_unpairable(tmp_path: Path, write_split) -> None:
    write_split(tmp_path, "test", ["a.jpg", "b.jpg", "c.jpg", "d.jpg"], ["one", "two"])

    with pytest.raises(DatasetError, match=r"\(2 lines\).*\(4 lines\)"):
        read_dataset_folder(tmp_path, "example")


def test_caption_file_without_name_file(tmp_path: Path, write_text) -> None:
    write_text(tmp_path / "test_caps.txt", ["a caption"])

    with pytest.raises(DatasetError, match="test_filename.txt"):
        read_dataset_folder(tmp_path, "example")


def test_empty_file_name_line(tmp_path: Path, write_split) -> None:
    write_split(tmp_path, "test", ["a.jpg", "", "c.jpg"], ["a", "b", "c"])

    with pytest.raises(DatasetError, match="line 2"):
        read_dataset_folder(tmp_path, "example")


def test_invalid_utf8_file(tmp_path: Path, write_text) -> None:
    write_text(tmp_path / "test_filename.txt", ["a.jpg"])
    (tmp_path / "test_caps.txt").write_bytes(b"caf\xe9\n")

    with pytest.raises(DatasetError, match="not valid UTF-8"):
        read_dataset_folder(tmp_path, "example")


def test_partition_files_read(tmp_path: Path, write_split) -> None:
    names = ["a.jpg", "b.jpg", "c.jpg"]
    write_split(tmp_path, "train", names, [c for name in names for c in captions_of(name)])
    write_split(tmp_path, "test", ["t.jpg"], captions_of("t"))
    write_split(tmp_path, "train", ["c.jpg", "a.jpg"], captions_of("c") + captions_of("a"), "_verify")
    write_split(tmp_path, "val", ["b.jpg"] * 5, captions_of("b"), "_verify")

    dataset = read_dataset_folder(tmp_path, "example")

    assert list(dataset.splits) == ["train", "test"]
    assert dataset.train_val_partition is not None
    assert dataset.train_val_partition["train"].images == ["c.jpg", "a.jpg"]
    assert dataset.train_val_partition["val"].images == ["b.jpg"]
    assert dataset.train_val_partition["val"].num_captions == 5


def test_incomplete_partition_files_ignored(tmp_path: Path, write_split, write_text) -> None:
    write_split(tmp_path, "train", ["a.jpg"], ["a0"])
    write_text(tmp_path / "train_caps_verify.txt", ["a0"])

    dataset = read_dataset_folder(tmp_path, "example")

    assert dataset.train_val_partition is None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    per_image=st.integers(min_value=1, max_value=6),
    image_count=st.integers(min_value=1, max_value=8),
)
def test_both_layouts_give_same_split(tmp_path: Path, per_image: int, image_count: int) -> None:
    names = [f"scene_{index}.jpg" for index in range(image_count)]
    captions = [caption for name in names for caption in captions_of(name, per_image)]
    folder = tmp_path / f"{per_image}_{image_count}"
    for layout, name_lines in {
        "per_image": names,
        "per_caption": [name for name in names for _ in range(per_image)],
    }.items():
        (folder / layout).mkdir(parents=True, exist_ok=True)
        (folder / layout / "test_filename.txt").write_text("\n".join(name_lines) + "\n")
        (folder / layout / "test_caps.txt").write_text("\n".join(captions) + "\n")

    per_image_split = read_dataset_folder(folder / "per_image", "example").splits["test"]
    per_caption_split = read_dataset_folder(folder / "per_caption", "example").splits["test"]

    assert per_image_split.images == per_caption_split.images == names
    assert per_image_split.captions == per_caption_split.captions == captions
    assert per_image_split.caption_image == per_caption_split.caption_image


def test_captions_per_name_counts() -> None:
    assert captions_per_name(10, 10) == 1
    assert captions_per_name(50, 10) == 5
    assert captions_per_name(12, 4) == 3
    assert captions_per_name(11, 10) is None
    assert captions_per_name(5, 10) is None
    assert captions_per_name(5, 0) is None


def test_pair_precomp_files_order(tmp_path: Path, write_split) -> None:
    write_split(tmp_path, "test", ["a.jpg", "b.jpg"], ["a0", "a1", "b0", "b1"])

    pairs = pair_precomp_files(tmp_path / "test_caps.txt", tmp_path / "test_filename.txt")

    assert pairs == [("a.jpg", "a0"), ("a.jpg", "a1"), ("b.jpg", "b0"), ("b.jpg", "b1")]


# --- Karpathy JSON ---------------------------------------------------------------------


def karpathy_image(file_name: str, split: str, captions: list[str], file_path: str | None = None) -> dict:
    entry = {"filename": file_name, "split": split, "sentences": [{"raw": c, "tokens": []} for c in captions]}
    if file_path is not None:
        entry["filepath"] = file_path
    return entry


def test_karpathy_splits_and_restval(tmp_path: Path, write_json) -> None:
    write_json(
        tmp_path / "dataset_example.json",
        {
            "dataset": "example",
            "images": [
                karpathy_image("a_1.jpg", "train", ["a0", "a1"]),
                karpathy_image("b_1.jpg", "restval", ["b0"]),
                karpathy_image("c_1.jpg", "val", ["c0"], file_path=""),
                karpathy_image("d_1.jpg", "test", [" d0 ", "d1"], file_path="sub"),
            ],
        },
    )

    dataset = read_dataset_folder(tmp_path, "example")

    assert dataset.format == "karpathy"
    assert dataset.splits["train"].images == ["a_1.jpg", "b_1.jpg"]
    assert dataset.splits["train"].caption_image == [0, 0, 1]
    assert dataset.splits["val"].images == ["c_1.jpg"]
    assert dataset.splits["test"].images == ["sub/d_1.jpg"]
    assert dataset.splits["test"].captions == ["d0", "d1"]


def test_karpathy_unknown_split(tmp_path: Path, write_json) -> None:
    write_json(tmp_path / "dataset.json", {"images": [karpathy_image("a.jpg", "holdout", ["a0"])]})

    with pytest.raises(DatasetError, match="'holdout'") as raised:
        read_dataset_folder(tmp_path, "example")

    assert "a.jpg" in str(raised.value)


def test_karpathy_sentence_without_raw(tmp_path: Path, write_json) -> None:
    write_json(
        tmp_path / "dataset.json",
        {"images": [{"filename": "a.jpg", "split": "test", "sentences": [{"tokens": ["a"]}]}]},
    )

    with pytest.raises(DatasetError, match="'raw'"):
        read_dataset_folder(tmp_path, "example")


def test_two_karpathy_files_rejected(tmp_path: Path, write_json) -> None:
    for name in ("dataset_a.json", "dataset_b.json"):
        write_json(tmp_path / name, {"images": [karpathy_image("a.jpg", "test", ["a0"])]})

    with pytest.raises(DatasetError, match="dataset_a.json, dataset_b.json"):
        read_dataset_folder(tmp_path, "example")


# --- COCO JSON -------------------------------------------------------------------------


def coco_file(names: list[str], captions: dict[str, list[str]]) -> dict:
    images = [{"id": 100 + index, "file_name": name} for index, name in enumerate(names)]
    ids = {name: 100 + index for index, name in enumerate(names)}
    annotations = [
        {"id": len(names) * 10 + index, "image_id": ids[name], "caption": caption}
        for name, texts in captions.items()
        for index, caption in enumerate(texts)
    ]
    return {"images": images, "annotations": annotations}


def test_coco_splits_from_file_names(tmp_path: Path, write_json) -> None:
    write_json(tmp_path / "captions_train2014.json", coco_file(["a.jpg", "b.jpg"], {"b.jpg": ["b0"], "a.jpg": ["a0", "a1"]}))
    write_json(tmp_path / "captions_val2014.json", coco_file(["v.jpg"], {"v.jpg": ["v0"]}))
    write_json(tmp_path / "test.json", coco_file(["t.jpg"], {"t.jpg": ["t0"]}))

    dataset = read_dataset_folder(tmp_path, "example")
    train = dataset.splits["train"]

    assert dataset.format == "coco"
    assert list(dataset.splits) == ["train", "val", "test"]
    assert train.images == ["a.jpg", "b.jpg"]
    assert train.captions == ["b0", "a0", "a1"]
    assert train.caption_image == [1, 0, 0]
    assert dataset.splits["test"].captions == ["t0"]


@pytest.mark.parametrize(
    ("file_name", "split"),
    [
        ("captions_train2014.json", "train"),
        ("captions_val2017.json", "val"),
        ("coco_karpathy_test.json", "test"),
        ("train.json", "train"),
        ("val.json", "val"),
        ("rsicd-validation.json", "val"),
        ("restval.json", "train"),
        ("captions.json", None),
        ("trainval.json", None),
    ],
)
def test_coco_split_of_file_name(file_name: str, split: str | None) -> None:
    assert coco_split_of(Path(file_name)) == split


def test_coco_file_without_split_word(tmp_path: Path, write_json) -> None:
    write_json(tmp_path / "captions.json", coco_file(["a.jpg"], {"a.jpg": ["a0"]}))

    with pytest.raises(DatasetError, match="captions.json"):
        read_dataset_folder(tmp_path, "example")


def test_coco_annotation_with_unknown_image(tmp_path: Path, write_json) -> None:
    data = coco_file(["a.jpg"], {"a.jpg": ["a0"]})
    data["annotations"].append({"id": 1, "image_id": 999, "caption": "orphan"})
    write_json(tmp_path / "test.json", data)

    with pytest.raises(DatasetError, match="image_id 999"):
        read_dataset_folder(tmp_path, "example")


def test_coco_two_files_for_one_split(tmp_path: Path, write_json) -> None:
    write_json(tmp_path / "captions_test.json", coco_file(["a.jpg"], {"a.jpg": ["a0"]}))
    write_json(tmp_path / "test.json", coco_file(["b.jpg"], {"b.jpg": ["b0"]}))

    with pytest.raises(DatasetError, match="test split"):
        read_dataset_folder(tmp_path, "example")


# --- detection -------------------------------------------------------------------------


def test_folder_without_format(tmp_path: Path, write_json) -> None:
    (tmp_path / "notes.txt").write_text("nothing here")
    write_json(tmp_path / "config.json", {"lr": 0.1})

    with pytest.raises(DatasetError) as raised:
        read_dataset_folder(tmp_path, "example")

    message = str(raised.value)
    assert str(tmp_path) in message
    assert "<split>_caps.txt" in message
    assert "Karpathy" in message
    assert "COCO" in message
    assert "notes.txt" in message


def test_invalid_json_file(tmp_path: Path) -> None:
    (tmp_path / "dataset.json").write_text("{not json")

    with pytest.raises(DatasetError, match="not valid JSON"):
        read_dataset_folder(tmp_path, "example")


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        read_dataset_folder(tmp_path / "absent", "example")


def test_precomp_wins_over_json(tmp_path: Path, write_split, write_json) -> None:
    write_split(tmp_path, "test", ["a.jpg"], ["a0"])
    write_json(tmp_path / "dataset.json", {"images": [karpathy_image("b.jpg", "test", ["b0"])]})

    assert detect_format(tmp_path) == "precomp"


# --- scene labels ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file_name", "dataset_name", "scene"),
    [
        ("airport_12.jpg", "rsicd", "airport"),
        ("denseresidential_1433.tif", "rsitmd", "denseresidential"),
        ("00001.jpg", "rsicd", None),
        ("rsicd_00001.jpg", "mini", None),
        ("rsicd_stadium_1.jpg", "mini", "stadium"),
        ("rsitmd_sparseresidential_3814.tif", "mini", "sparseresidential"),
        ("sydney_5.tif", "mini", None),
        ("5.tif", "sydney", None),
        ("ucm_1.tif", "mini", "agricultural"),
        ("1.tif", "ucm", "agricultural"),
        ("100.tif", "ucm", "agricultural"),
        ("101.tif", "ucm", "airplane"),
        ("2001.tif", "ucm", "tenniscourt"),
        ("2100.tif", "ucm", "tenniscourt"),
        ("2101.tif", "ucm", None),
        ("0.tif", "ucm", None),
        ("Airport_3.JPG", None, "airport"),
        ("sub/beach_4.jpg", None, "beach"),
        ("picture.jpg", None, None),
        ("_12.jpg", None, None),
    ],
)
def test_scene_of_file_name(file_name: str, dataset_name: str | None, scene: str | None) -> None:
    assert scene_of(file_name, dataset_name) == scene


def test_labels_sorted_over_all_splits(tmp_path: Path, write_split) -> None:
    write_split(tmp_path, "train", ["river_1.jpg", "00007.jpg"], ["r", "n"])
    write_split(tmp_path, "test", ["airport_2.jpg", "river_3.jpg"], ["a", "r"])

    dataset = read_dataset_folder(tmp_path, "example")

    assert dataset.class_names == ["airport", "river"]
    assert dataset.splits["train"].labels == [1, UNLABELLED]
    assert dataset.splits["test"].labels == [0, 1]
    assert dataset.has_labels
    assert count_labelled_images(dataset) == (3, 4)
    assert any("3 of 4 images" in note for note in dataset.notes)


def test_labels_none_without_scenes(tmp_path: Path, write_split) -> None:
    write_split(tmp_path, "test", ["1.tif", "2.tif"], ["one", "two"])

    dataset = read_dataset_folder(tmp_path, "example")

    assert dataset.class_names is None
    assert dataset.splits["test"].labels is None
    assert not dataset.has_labels


def test_ucm_labels_from_numbers(tmp_path: Path, write_split) -> None:
    write_split(tmp_path, "test", ["1.tif", "250.tif", "2100.tif"], ["a", "b", "c"])

    dataset: RetrievalDataset = read_dataset_folder(tmp_path, "ucm")

    assert dataset.class_names == ["agricultural", "baseballdiamond", "tenniscourt"]
    assert dataset.splits["test"].labels == [0, 1, 2]
