"""Parsers that read the published splits of a dataset folder into a RetrievalDataset.

The format is detected from the files in the folder, in this order:

- ``precomp``: ``<split>_caps.txt`` (one caption a line) with ``<split>_filename.txt``
  (image file names) for split train, val or test. Two layouts are published, and the line
  counts decide which one a pair of files uses. Either the file-name file lists each image
  once and the caption file has k consecutive lines per image (k >= 1, the same for every
  image), or both files have one line per caption. Optional ``train_*_verify.txt`` and
  ``val_*_verify.txt`` files are a published train/val partition of the train split.
- ``karpathy``: one JSON file (such as ``dataset_rsicd.json``) whose ``images[]`` entries have
  ``filename``, an optional ``filepath``, ``split`` (train, val, test or restval, which counts
  as train) and ``sentences[].raw``.
- ``coco``: COCO caption JSON files (``images[]`` with ``id`` and ``file_name``,
  ``annotations[]`` with ``image_id`` and ``caption``), one file per split. The split comes
  from the file name, see ``coco_split_of``.

Captions are stripped of surrounding whitespace. Empty captions are dropped, and so are
images left without any caption, so every image of a split has at least one caption. One
warning per folder and one note in ``RetrievalDataset.notes`` report what was dropped.
RSITMD's train split has 4 images whose five captions are all empty.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from rsitr_bench.data.dataset import SPLITS, RetrievalDataset, Split
from rsitr_bench.data.labels import assign_labels
from rsitr_bench.errors import DatasetError

_logger = logging.getLogger(__name__)

FORMATS = ("precomp", "karpathy", "coco")

PARTITION_SUFFIX = "_verify"
"""File-name suffix of the published train/val partition in the precomp format."""

KARPATHY_SPLITS = {"train": "train", "restval": "train", "val": "val", "test": "test"}
"""Split values of the Karpathy format and the split each one is read into."""

COCO_SPLIT_WORDS = {
    "train": "train",
    "restval": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}
"""Words in a COCO caption file name that select its split."""

MAX_NAMES_SHOWN = 5

LOOKED_FOR = (
    "the precomp format (<split>_caps.txt with <split>_filename.txt, for split train, val "
    "or test); a Karpathy-style JSON file (images[] with filename, split and sentences[].raw, "
    "such as dataset_rsicd.json); COCO caption JSON files (images[] with id and file_name, "
    "annotations[] with image_id and caption, one file per split named like "
    "captions_train2014.json or test.json)"
)


class _EmptyCaptions:
    """Counts of dropped empty captions and names of dropped captionless images, per source file."""

    def __init__(self) -> None:
        self.published: dict[str, int] = {}
        self.partition: dict[str, int] = {}
        self.images: dict[str, list[str]] = {}

    def count(self, source: str, partition: bool) -> None:
        counts = self.partition if partition else self.published
        counts[source] = counts.get(source, 0) + 1

    def drop_images(self, source: str, names: list[str]) -> None:
        self.images.setdefault(source, []).extend(names)

    def report(self, dataset: RetrievalDataset) -> None:
        """Log one warning and add one note when any caption or image was dropped."""
        sentences = []
        if self.published or self.partition:
            parts = []
            if self.published:
                parts.append(
                    f"{sum(self.published.values()):,} from the published splits "
                    f"({_format_counts(self.published)})"
                )
            if self.partition:
                parts.append(
                    f"{sum(self.partition.values()):,} from the train/val partition files "
                    f"({_format_counts(self.partition)})"
                )
            sentences.append(f"Dropped empty captions: {' and '.join(parts)}.")
        if self.images:
            names = list(dict.fromkeys(name for dropped in self.images.values() for name in dropped))
            counts = {source: len(dropped) for source, dropped in self.images.items()}
            first_names = ", ".join(names[:MAX_NAMES_SHOWN])
            if len(names) > MAX_NAMES_SHOWN:
                first_names += ", ..."
            images = "image" if len(names) == 1 else "images"
            sentences.append(
                f"Dropped {len(names):,} {images} left without captions ({first_names}) "
                f"from their splits ({_format_counts(counts)})."
            )
        if not sentences:
            return
        message = " ".join(sentences)
        _logger.warning("%s: %s", dataset.name, message)
        dataset.notes.append(message)


def _format_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{source}: {number:,}" for source, number in counts.items())


class _SplitBuilder:
    """Builder that collects the (image, caption) pairs of one split, grouping captions by image name.

    Images keep the order of their first appearance, so an image listed in several
    non-consecutive runs becomes one image.
    """

    def __init__(self, source: str, empty: _EmptyCaptions, partition: bool = False) -> None:
        self.source = source
        self.empty = empty
        self.partition = partition
        self.image_index: dict[str, int] = {}
        self.images: list[str] = []
        self.captions: list[str] = []
        self.caption_image: list[int] = []

    def add_image(self, name: str) -> int:
        index = self.image_index.get(name)
        if index is None:
            index = len(self.images)
            self.image_index[name] = index
            self.images.append(name)
        return index

    def add_caption(self, name: str, caption: str) -> None:
        index = self.add_image(name)
        caption = caption.strip()
        if not caption:
            self.empty.count(self.source, self.partition)
            return
        self.captions.append(caption)
        self.caption_image.append(index)

    def build(self) -> Split:
        """Return the split, without the images that have no caption left."""
        split = Split(images=self.images, captions=self.captions, caption_image=self.caption_image)
        captioned = sorted(set(self.caption_image))
        if len(captioned) == len(self.images):
            return split
        captioned_set = set(captioned)
        uncaptioned = [name for index, name in enumerate(self.images) if index not in captioned_set]
        self.empty.drop_images(self.source, uncaptioned)
        captioned_split = split.subset(captioned)
        captioned_split.uncaptioned_images = uncaptioned
        return captioned_split


def read_dataset_folder(folder: Path, name: str, image_dir: Path | None = None) -> RetrievalDataset:
    """Parse the published splits of a dataset folder, whatever its format.

    ``image_dir`` defaults to ``<folder>/images``. Scene labels are assigned from the file
    names. Raises DatasetError when the folder is missing, has no recognised format or
    contains files that cannot be read.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"Dataset folder {folder} does not exist or is not a folder.")

    empty = _EmptyCaptions()
    partition: dict[str, Split] | None = None
    dataset_format, json_files = _detect_format(folder)
    if dataset_format == "precomp":
        splits, partition = _read_precomp(folder, empty)
    elif dataset_format == "karpathy":
        splits = _read_karpathy(folder, json_files, empty)
    else:
        splits = _read_coco(folder, json_files, empty)

    dataset = RetrievalDataset(
        name=name,
        root=folder,
        image_dir=Path(image_dir) if image_dir is not None else folder / "images",
        format=dataset_format,
        splits=splits,
        train_val_partition=partition,
    )
    empty.report(dataset)
    assign_labels(dataset)
    summary = ", ".join(
        f"{split_name} {split.num_images:,} images / {split.num_captions:,} captions"
        for split_name, split in splits.items()
    )
    _logger.info("%s: read %s format from %s: %s", name, dataset_format, folder, summary)
    return dataset


def detect_format(folder: Path) -> str:
    """Return the format of a dataset folder: ``precomp``, ``karpathy`` or ``coco``.

    Raises DatasetError listing what was looked for when no format fits.
    """
    return _detect_format(Path(folder))[0]


def _detect_format(folder: Path) -> tuple[str, dict[Path, dict]]:
    """Return the format and, for the JSON formats, the parsed files of that format."""
    for split in SPLITS:
        if (folder / f"{split}_caps.txt").is_file() or (folder / f"{split}_filename.txt").is_file():
            return "precomp", {}

    kinds: dict[str, dict[Path, dict]] = {"karpathy": {}, "coco": {}}
    for path in sorted(folder.glob("*.json")):
        data = _read_json(path)
        kind = _json_kind(data)
        if kind is not None:
            kinds[kind][path] = data
    if kinds["karpathy"]:
        if kinds["coco"]:
            _logger.warning(
                "%s: using the Karpathy JSON file and ignoring the COCO files %s",
                folder,
                ", ".join(path.name for path in kinds["coco"]),
            )
        return "karpathy", kinds["karpathy"]
    if kinds["coco"]:
        return "coco", kinds["coco"]

    entries = sorted(entry.name for entry in folder.iterdir())
    found = ", ".join(entries[:10]) + (f" and {len(entries) - 10} more" if len(entries) > 10 else "")
    raise DatasetError(
        f"No dataset format recognised in {folder}. Looked for {LOOKED_FOR}. "
        f"Found: {found or 'nothing'}."
    )


# --- precomp ---------------------------------------------------------------------------


def read_text_lines(path: Path) -> list[str]:
    """Read a UTF-8 text file into stripped lines.

    A leading byte order mark is removed, CRLF and CR line ends count as line ends, and the
    newline that ends the last line does not add an empty line.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DatasetError(f"Cannot read {path}: {error}") from error
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DatasetError(f"{path} is not valid UTF-8 ({error}). Save it as UTF-8.") from error

    # str.splitlines would also split on form feeds and Unicode line separators inside a
    # caption, which would shift the caption-to-image pairing.
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.strip() for line in lines]


def captions_per_name(caption_lines: int, name_lines: int) -> int | None:
    """Return how many caption lines belong to each file-name line, or None if none fits.

    Equal counts mean one file name per caption. A count that is k times the number of
    file names means k consecutive captions per file name.
    """
    if name_lines == 0:
        return None
    if caption_lines == name_lines:
        return 1
    if caption_lines > name_lines and caption_lines % name_lines == 0:
        return caption_lines // name_lines
    return None


def pair_precomp_files(caps_path: Path, names_path: Path) -> list[tuple[str, str]]:
    """Return the (file name, caption) pairs of one precomp split, in caption order.

    Raises DatasetError naming both files and both line counts when neither layout fits.
    """
    captions = read_text_lines(caps_path)
    names = read_text_lines(names_path)
    while names and not names[-1]:
        names.pop()
    for line_number, name in enumerate(names, start=1):
        if not name:
            raise DatasetError(
                f"{names_path}, line {line_number}: the file name is empty. "
                "Remove the line or write the image's file name on it."
            )

    per_name = captions_per_name(len(captions), len(names))
    if per_name is None:
        # Blank lines after the last caption are padding, unless they are needed to pair.
        trimmed = list(captions)
        while trimmed and not trimmed[-1]:
            trimmed.pop()
        per_name = captions_per_name(len(trimmed), len(names))
        if per_name is not None:
            captions = trimmed
    if per_name is None:
        raise DatasetError(
            f"Cannot pair {caps_path} ({len(captions):,} lines) with {names_path} "
            f"({len(names):,} lines). The caption file needs one line per file-name line, "
            "or the same number of consecutive lines (such as 5) for every file-name line. "
            "Check that both files belong to the same split and that neither was cut short."
        )
    return [(names[index // per_name], caption) for index, caption in enumerate(captions)]


def _precomp_split_files(folder: Path, split: str, suffix: str = "") -> tuple[Path, Path] | None:
    caps_path = folder / f"{split}_caps{suffix}.txt"
    names_path = folder / f"{split}_filename{suffix}.txt"
    if caps_path.is_file() and names_path.is_file():
        return caps_path, names_path
    if caps_path.is_file() or names_path.is_file():
        present, absent = (caps_path, names_path) if caps_path.is_file() else (names_path, caps_path)
        raise DatasetError(
            f"Found {present} but not {absent}. A precomp split needs both files, so "
            f"add {absent.name} or remove {present.name}."
        )
    return None


def _read_precomp_split(
    caps_path: Path, names_path: Path, empty: _EmptyCaptions, partition: bool = False
) -> Split:
    builder = _SplitBuilder(caps_path.name, empty, partition=partition)
    for name, caption in pair_precomp_files(caps_path, names_path):
        builder.add_caption(name, caption)
    return builder.build()


def _read_precomp(
    folder: Path, empty: _EmptyCaptions
) -> tuple[dict[str, Split], dict[str, Split] | None]:
    splits: dict[str, Split] = {}
    for split in SPLITS:
        files = _precomp_split_files(folder, split)
        if files is not None:
            splits[split] = _read_precomp_split(*files, empty)
    return splits, _read_precomp_partition(folder, empty)


def _read_precomp_partition(folder: Path, empty: _EmptyCaptions) -> dict[str, Split] | None:
    paths = [
        folder / f"{split}_{kind}{PARTITION_SUFFIX}.txt"
        for split in ("train", "val")
        for kind in ("caps", "filename")
    ]
    present = [path for path in paths if path.is_file()]
    if not present:
        return None
    if len(present) < len(paths):
        absent = [path.name for path in paths if not path.is_file()]
        _logger.warning(
            "%s: ignoring the train/val partition files because %s are missing",
            folder,
            ", ".join(absent),
        )
        return None

    partition: dict[str, Split] = {}
    for split in ("train", "val"):
        files = _precomp_split_files(folder, split, PARTITION_SUFFIX)
        assert files is not None  # all four files exist, checked above
        partition[split] = _read_precomp_split(*files, empty, partition=True)
    return partition


# --- JSON formats ----------------------------------------------------------------------


def _read_json(path: Path) -> object:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise DatasetError(f"Cannot read {path}: {error}") from error
    except UnicodeDecodeError as error:
        raise DatasetError(f"{path} is not valid UTF-8 ({error}). Save it as UTF-8.") from error
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise DatasetError(
            f"{path} is not valid JSON ({error}). Fix the file or move it out of the dataset folder."
        ) from error


def _json_kind(data: object) -> str | None:
    """Return ``coco`` or ``karpathy`` for data of that format, None for other JSON."""
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        return None
    if "annotations" in data:
        return "coco"
    if any(isinstance(entry, dict) and "sentences" in entry for entry in data["images"]):
        return "karpathy"
    return None


def _read_karpathy(folder: Path, files: dict[Path, dict], empty: _EmptyCaptions) -> dict[str, Split]:
    if len(files) > 1:
        raise DatasetError(
            f"{folder} contains {len(files)} Karpathy-style JSON files "
            f"({', '.join(path.name for path in files)}). Keep one dataset per folder."
        )
    path, data = next(iter(files.items()))
    builders = {split: _SplitBuilder(f"{path.name} ({split})", empty) for split in SPLITS}
    for position, entry in enumerate(data["images"]):
        where = f"{path}, images[{position}]"
        if not isinstance(entry, dict):
            raise DatasetError(f"{where} is not a JSON object.")
        file_name = entry.get("filename")
        if not isinstance(file_name, str) or not file_name.strip():
            raise DatasetError(f"{where} has no 'filename' string.")
        file_path = entry.get("filepath") or ""
        if not isinstance(file_path, str):
            raise DatasetError(f"{where} has a 'filepath' that is not a string: {file_path!r}.")
        name = f"{file_path.strip().rstrip('/')}/{file_name.strip()}" if file_path.strip() else file_name.strip()

        split_value = entry.get("split")
        split = KARPATHY_SPLITS.get(split_value) if isinstance(split_value, str) else None
        if split is None:
            raise DatasetError(
                f"{where} ({name}) has the invalid split {split_value!r}. "
                f"Expected one of {', '.join(KARPATHY_SPLITS)}."
            )
        sentences = entry.get("sentences")
        if not isinstance(sentences, list):
            raise DatasetError(f"{where} ({name}) has no 'sentences' list.")

        builder = builders[split]
        builder.add_image(name)
        for sentence_position, sentence in enumerate(sentences):
            raw = sentence.get("raw") if isinstance(sentence, dict) else None
            if not isinstance(raw, str):
                raise DatasetError(
                    f"{where} ({name}), sentences[{sentence_position}] has no 'raw' string."
                )
            builder.add_caption(name, raw)
    return {split: builder.build() for split, builder in builders.items() if builder.images}


def coco_split_of(path: Path) -> str | None:
    """Return the split that a COCO caption file name selects, or None.

    The file stem is split into words at every character that is not a letter, so
    ``captions_train2014.json`` gives the words ``captions`` and ``train``. The first word
    that is train, restval, val, valid, validation or test selects the split, with restval
    read as train.
    """
    for word in re.split(r"[^a-z]+", path.stem.lower()):
        if word in COCO_SPLIT_WORDS:
            return COCO_SPLIT_WORDS[word]
    return None


def _read_coco(folder: Path, files: dict[Path, dict], empty: _EmptyCaptions) -> dict[str, Split]:
    by_split: dict[str, Path] = {}
    for path in files:
        split = coco_split_of(path)
        if split is None:
            raise DatasetError(
                f"Cannot tell the split of the COCO caption file {path}: its name contains none "
                f"of the words {', '.join(COCO_SPLIT_WORDS)}. Rename it, for example to "
                "captions_train.json, captions_val.json or captions_test.json."
            )
        if split in by_split:
            raise DatasetError(
                f"Both {by_split[split].name} and {path.name} in {folder} are COCO caption files "
                f"for the {split} split. Keep one file per split."
            )
        by_split[split] = path

    return {
        split: _read_coco_split(by_split[split], files[by_split[split]], empty)
        for split in SPLITS
        if split in by_split
    }


def _read_coco_split(path: Path, data: dict, empty: _EmptyCaptions) -> Split:
    annotations = data["annotations"]
    if not isinstance(annotations, list):
        raise DatasetError(f"{path}: 'annotations' is not a list.")

    builder = _SplitBuilder(path.name, empty)
    names_by_id: dict[object, str] = {}
    for position, entry in enumerate(data["images"]):
        where = f"{path}, images[{position}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), (int, str)):
            raise DatasetError(f"{where} has no 'id' number or string.")
        file_name = entry.get("file_name")
        if not isinstance(file_name, str) or not file_name.strip():
            raise DatasetError(f"{where} has no 'file_name' string.")
        if entry["id"] in names_by_id:
            raise DatasetError(f"{where} repeats image id {entry['id']!r}.")
        names_by_id[entry["id"]] = file_name.strip()
        builder.add_image(file_name.strip())

    for position, annotation in enumerate(annotations):
        where = f"{path}, annotations[{position}]"
        if not isinstance(annotation, dict):
            raise DatasetError(f"{where} is not a JSON object.")
        image_id = annotation.get("image_id")
        name = names_by_id.get(image_id) if isinstance(image_id, (int, str)) else None
        if name is None:
            raise DatasetError(
                f"{where} refers to image_id {image_id!r}, "
                "which images[] does not list."
            )
        caption = annotation.get("caption")
        if not isinstance(caption, str):
            raise DatasetError(f"{where} has no 'caption' string.")
        builder.add_caption(name, caption)
    return builder.build()
