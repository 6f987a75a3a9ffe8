"""Tests for the embedded demo dataset: layout, determinism, caching and caption truth."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rsitr_bench.data import demo
from rsitr_bench.data.dataset import SPLITS
from rsitr_bench.errors import DatasetError

SMALL_SIZES = {"train": 24, "val": 12, "test": 12}
FILE_NAME = re.compile(r"^([a-z]+)_([1-9][0-9]*)\.png$")

# Words that a caption may use only when the scene contains an element of that kind.
KIND_WORDS = {
    "plane": {"plane", "planes", "airplane", "airplanes", "aircraft"},
    "boat": {"boat", "boats", "ship", "ships"},
    "tank": {"tank", "tanks"},
    "car": {"car", "cars", "vehicle", "vehicles"},
    "building": {"building", "buildings", "house", "houses", "roof", "roofs", "terminal"},
    "tree": {"tree", "trees", "forest"},
    "river": {"river"},
    "runway": {"runway"},
    "road": {"road", "roads", "path", "trail", "crossroads", "t-junction", "intersection"},
    "lake": {"lake", "pond"},
    "sea": {"sea", "waves"},
    "sand": {"beach", "sand", "sandy"},
    "pier": {"pier", "piers"},
    "water": {"water"},
    "field": {"crops", "farmland"},
    "ball_field": {"baseball", "infield", "infields"},
    "parking_lot": {"parking"},
    "bridge": {"bridge"},
    "clearing": {"clearing", "meadow"},
}
COUNTED_NOUNS = {
    "plane": {"plane", "planes", "airplane", "airplanes"},
    "boat": {"boat", "boats", "ship", "ships"},
    "tank": {"tank", "tanks"},
}
NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
}


def checksums(folder: Path) -> dict[str, str]:
    """Return the SHA-256 of every file under ``folder``, keyed by relative path."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def generate_in_subprocess(cache_dir: Path, hash_seed: str) -> Path:
    """Generate a small demo dataset in a fresh interpreter with its own hash seed."""
    script = (
        "import sys\n"
        "from rsitr_bench.data import demo\n"
        f"demo.SPLIT_SIZES.update({SMALL_SIZES!r})\n"
        "demo.ensure_demo(sys.argv[1])\n"
    )
    repo_root = Path(__file__).resolve().parents[1]
    python_path = os.pathsep.join(filter(None, [str(repo_root), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": python_path}
    subprocess.run([sys.executable, "-c", script, str(cache_dir)], check=True, env=env)
    return cache_dir / demo.DEMO_DIR_NAME


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo.ensure_demo(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def planned() -> list[demo.DemoImage]:
    return demo.plan_demo()


@pytest.fixture
def small_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "SPLIT_SIZES", dict(SMALL_SIZES))


@pytest.fixture
def write_calls(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Record the folder of every dataset generation."""
    calls: list[Path] = []
    original = demo._write_dataset

    def counting_write(folder: Path, *args: object, **kwargs: object) -> None:
        calls.append(folder)
        original(folder, *args, **kwargs)

    monkeypatch.setattr(demo, "_write_dataset", counting_write)
    return calls


def test_split_sizes_meet_minimum() -> None:
    assert demo.SPLIT_SIZES["train"] >= 500
    assert demo.SPLIT_SIZES["val"] >= 100
    assert demo.SPLIT_SIZES["test"] >= 100
    assert len(demo.SCENE_CLASSES) >= 8


def test_layout_and_sizes(demo_folder: Path) -> None:
    assert demo_folder.name == demo.DEMO_DIR_NAME
    assert demo.is_complete_demo(demo_folder)

    all_names: list[str] = []
    for split in SPLITS:
        names = read_lines(demo_folder / f"{split}_filename.txt")
        captions = read_lines(demo_folder / f"{split}_caps.txt")
        assert len(names) == demo.SPLIT_SIZES[split]
        assert len(captions) == demo.CAPTIONS_PER_IMAGE * len(names)

        scenes = []
        for name in names:
            match = FILE_NAME.match(name)
            assert match is not None, name
            scenes.append(match.group(1))
        assert sorted(set(scenes)) == sorted(demo.SCENE_CLASSES)
        all_names.extend(names)

    assert len(set(all_names)) == len(all_names)
    image_files = sorted(path.name for path in (demo_folder / demo.IMAGE_DIR_NAME).iterdir())
    assert image_files == sorted(all_names)


def test_images_are_64px_rgb_png(demo_folder: Path) -> None:
    for path in sorted((demo_folder / demo.IMAGE_DIR_NAME).iterdir()):
        with Image.open(path) as image:
            assert image.format == "PNG", path.name
            assert image.size == (demo.IMAGE_SIZE, demo.IMAGE_SIZE), path.name
            assert image.mode == "RGB", path.name
            image.load()


def test_files_match_plan(demo_folder: Path, planned: list[demo.DemoImage]) -> None:
    for split in SPLITS:
        entries = [entry for entry in planned if entry.split == split]
        names = read_lines(demo_folder / f"{split}_filename.txt")
        captions = read_lines(demo_folder / f"{split}_caps.txt")
        assert names == [entry.file_name for entry in entries]
        assert captions == [caption for entry in entries for caption in entry.captions]


def test_generation_identical_across_processes(tmp_path: Path) -> None:
    first = generate_in_subprocess(tmp_path / "first", "1")
    second = generate_in_subprocess(tmp_path / "second", "2")

    first_sums = checksums(first)
    assert len(first_sums) == sum(SMALL_SIZES.values()) + 2 * len(SPLITS) + 1
    assert first_sums == checksums(second)


def test_generation_identical_in_process(
    tmp_path: Path, small_sizes: None, demo_folder: Path
) -> None:
    folder = demo.ensure_demo(tmp_path)
    full = checksums(demo_folder)
    # Images depend only on their class and number, so the small dataset's images are the
    # first images of each class in the full dataset.
    for name, digest in checksums(folder).items():
        if name.startswith(demo.IMAGE_DIR_NAME + "/"):
            assert full[name] == digest, name


def test_second_call_does_not_regenerate(
    tmp_path: Path, small_sizes: None, write_calls: list[Path]
) -> None:
    folder = demo.ensure_demo(tmp_path)
    manifest_mtime = (folder / demo.MANIFEST_NAME).stat().st_mtime_ns
    assert len(write_calls) == 1

    again = demo.ensure_demo(tmp_path)

    assert again == folder
    assert len(write_calls) == 1
    assert (folder / demo.MANIFEST_NAME).stat().st_mtime_ns == manifest_mtime


def test_leftover_temp_folders(tmp_path: Path, small_sizes: None) -> None:
    old_temp = tmp_path / f".{demo.DEMO_DIR_NAME}.tmp-crashed"
    (old_temp / demo.IMAGE_DIR_NAME).mkdir(parents=True)
    (old_temp / "train_caps.txt").write_text("a half written caption", encoding="utf-8")
    two_hours_ago = time.time() - 2 * 3600
    os.utime(old_temp, (two_hours_ago, two_hours_ago))
    running_temp = tmp_path / f".{demo.DEMO_DIR_NAME}.tmp-running"
    running_temp.mkdir()

    folder = demo.ensure_demo(tmp_path)

    assert demo.is_complete_demo(folder)
    assert not old_temp.exists()
    assert running_temp.exists()


def test_folder_without_manifest_regenerated(
    tmp_path: Path, small_sizes: None, write_calls: list[Path]
) -> None:
    clean = demo.ensure_demo(tmp_path / "clean")
    folder = demo.ensure_demo(tmp_path / "broken")
    (folder / demo.MANIFEST_NAME).unlink()
    for path in sorted((folder / demo.IMAGE_DIR_NAME).iterdir())[:5]:
        path.unlink()
    assert not demo.is_complete_demo(folder)

    again = demo.ensure_demo(tmp_path / "broken")

    assert again == folder
    assert len(write_calls) == 3
    assert checksums(again) == checksums(clean)
    assert sorted(path.name for path in (tmp_path / "broken").iterdir()) == [demo.DEMO_DIR_NAME]


def test_changed_caption_file_regenerated(tmp_path: Path, small_sizes: None) -> None:
    folder = demo.ensure_demo(tmp_path)
    expected = checksums(folder)
    with open(folder / "test_caps.txt", "a", encoding="utf-8") as handle:
        handle.write("an extra caption .\n")
    assert not demo.is_complete_demo(folder)

    demo.ensure_demo(tmp_path)

    assert checksums(folder) == expected


def test_losing_race_uses_winner(
    tmp_path: Path, small_sizes: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / demo.DEMO_DIR_NAME
    original = demo._write_dataset
    winner_inodes: list[int] = []

    def write_and_lose_race(folder: Path, *args: object, **kwargs: object) -> None:
        original(folder, *args, **kwargs)
        rival = tmp_path / "rival"
        rival.mkdir()
        original(rival)
        os.rename(rival, target)
        winner_inodes.append((target / demo.MANIFEST_NAME).stat().st_ino)

    monkeypatch.setattr(demo, "_write_dataset", write_and_lose_race)

    folder = demo.ensure_demo(tmp_path)

    assert folder == target
    assert (target / demo.MANIFEST_NAME).stat().st_ino == winner_inodes[0]
    assert sorted(path.name for path in tmp_path.iterdir()) == [demo.DEMO_DIR_NAME]


@pytest.mark.parametrize("cache_exists", [True, False])
def test_unwritable_cache_raises(tmp_path: Path, cache_exists: bool) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    cache_dir = locked if cache_exists else locked / "cache"
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("chmod does not stop writes for this user, such as root")
        with pytest.raises(DatasetError) as raised:
            demo.ensure_demo(cache_dir)
    finally:
        locked.chmod(0o755)

    message = str(raised.value)
    assert str(cache_dir) in message
    assert demo.CACHE_ENV_VAR in message


def test_cache_root_is_file_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")

    with pytest.raises(DatasetError) as raised:
        demo.ensure_demo(blocker / "cache")

    assert str(blocker / "cache") in str(raised.value)
    assert demo.CACHE_ENV_VAR in str(raised.value)


def test_permission_error_raises_dataset_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cover the read-only cache folder where chmod cannot, as for root."""

    def raise_permission_error(*args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(demo.tempfile, "mkdtemp", raise_permission_error)

    with pytest.raises(DatasetError) as raised:
        demo.ensure_demo(tmp_path)

    assert str(tmp_path) in str(raised.value)
    assert "Permission denied" in str(raised.value)
    assert demo.CACHE_ENV_VAR in str(raised.value)


def test_cache_root_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(demo.CACHE_ENV_VAR, str(tmp_path / "from-env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert demo.demo_cache_root(tmp_path / "argument") == tmp_path / "argument"
    assert demo.demo_cache_root() == tmp_path / "from-env"

    monkeypatch.delenv(demo.CACHE_ENV_VAR)
    assert demo.demo_cache_root() == tmp_path / "xdg" / "rsitr-bench"

    monkeypatch.delenv("XDG_CACHE_HOME")
    assert demo.demo_cache_root() == tmp_path / "home" / ".cache" / "rsitr-bench"


def test_env_cache_dir_used(
    tmp_path: Path, small_sizes: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(demo.CACHE_ENV_VAR, str(tmp_path / "from-env"))

    folder = demo.ensure_demo()

    assert folder == tmp_path / "from-env" / demo.DEMO_DIR_NAME
    assert demo.is_complete_demo(folder)


def test_captions_name_only_present_elements(planned: list[demo.DemoImage]) -> None:
    for entry in planned:
        kinds = set(entry.scene.kinds())
        for caption in entry.captions:
            words = set(caption.split())
            for kind, kind_words in KIND_WORDS.items():
                if kind in kinds:
                    continue
                assert not words & kind_words, f"{entry.file_name} has no {kind}: {caption!r}"
            if "building" not in kinds:
                assert "roofed" not in caption, f"{entry.file_name}: {caption!r}"


def test_caption_numbers_match_counts(planned: list[demo.DemoImage]) -> None:
    for entry in planned:
        for kind, nouns in COUNTED_NOUNS.items():
            elements = entry.scene.of_kind(kind)
            if len(elements) != 1:
                continue
            for caption in entry.captions:
                words = caption.split()
                for i, word in enumerate(words):
                    if word not in NUMBER_WORDS:
                        continue
                    # The number counts the next noun, unless a clause boundary comes first.
                    for following in words[i + 1 : i + 5]:
                        if following in NUMBER_WORDS or following in ("and", "with", "is", "are"):
                            break
                        if following in nouns:
                            assert NUMBER_WORDS[word] == elements[0].count, (
                                f"{entry.file_name} has {elements[0].count} {kind}: {caption!r}"
                            )
                            break


def test_count_words_are_true() -> None:
    rng = np.random.default_rng(0)
    for n in range(1, 40):
        for _ in range(50):
            word = demo._count(rng, n)
            if word in NUMBER_WORDS:
                assert NUMBER_WORDS[word] == n
            elif word == "a":
                assert n == 1
            elif word == "a few":
                assert 2 <= n <= 4
            elif word == "several":
                assert 3 <= n <= 7
            elif word in ("many", "lots of"):
                assert n >= 7
            else:
                assert word == "some", (n, word)
                assert n >= 2, (n, word)


def test_caption_style(planned: list[demo.DemoImage]) -> None:
    for entry in planned:
        assert len(entry.captions) == demo.CAPTIONS_PER_IMAGE
        assert len(set(entry.captions)) == demo.CAPTIONS_PER_IMAGE, entry.file_name
        for caption in entry.captions:
            assert caption.endswith(" ."), caption
            assert caption == caption.lower(), caption
            assert "  " not in caption, caption
            assert not re.search(r"\ba [aeiou]", caption), caption


def test_captions_place_elements_in_region(planned: list[demo.DemoImage]) -> None:
    placed = re.compile(
        r"\b(tanks|planes|airplanes|lake|pond) (?:is |are |lies |parked near the runway )?"
        r"((?:in|at|on) the [a-z ]+?)(?= and | \.)"
    )
    kinds = {
        "tanks": "tank",
        "planes": "plane",
        "airplanes": "plane",
        "lake": "lake",
        "pond": "lake",
    }
    checked = 0
    for entry in planned:
        for caption in entry.captions:
            for match in placed.finditer(caption):
                element = entry.scene.first(kinds[match.group(1)])
                assert element is not None and element.region is not None, caption
                assert match.group(2) in demo._WHERE[element.region], (
                    f"{entry.file_name} has its {element.kind} {element.region}: {caption!r}"
                )
                checked += 1
    assert checked > 100
