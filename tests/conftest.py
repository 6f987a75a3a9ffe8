"""Shared fixtures: the real data folder and writers for small dataset folders."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

REAL_DATA_ENV = "RSITR_DATA_ROOT"


@pytest.fixture
def real_data_root() -> Path:
    """Return the real data folder named by $RSITR_DATA_ROOT, or skip the test without it."""
    value = os.environ.get(REAL_DATA_ENV)
    if not value:
        pytest.skip(f"{REAL_DATA_ENV} is not set; point it at the real data folder to run this test")
    root = Path(value).expanduser()
    missing = [name for name in ("rsicd", "mini") if not (root / name).is_dir()]
    if missing:
        pytest.fail(
            f"{REAL_DATA_ENV}={value} does not contain the folders {', '.join(missing)}/. "
            "Point it at the real data folder that contains rsicd/, rsitmd/, ucm/, sydney/ and mini/."
        )
    return root


TextWriter = Callable[..., Path]


@pytest.fixture
def write_text() -> TextWriter:
    """Return a function that writes lines to a file with a chosen line end and optional BOM."""

    def write(path: Path, lines: Sequence[str], newline: str = "\n", bom: bool = False) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(line + newline for line in lines)
        path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
        return path

    return write


@pytest.fixture
def write_split(write_text: TextWriter) -> Callable[..., None]:
    """Return a function that writes one precomp split as ``<split>_caps.txt`` and
    ``<split>_filename.txt`` lines."""

    def write(
        folder: Path,
        split: str,
        names: Sequence[str],
        captions: Sequence[str],
        suffix: str = "",
    ) -> None:
        write_text(folder / f"{split}_caps{suffix}.txt", captions)
        write_text(folder / f"{split}_filename{suffix}.txt", names)

    return write


@pytest.fixture
def write_json() -> Callable[[Path, object], Path]:
    """Return a function that writes a JSON file."""

    def write(path: Path, data: object) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data), encoding="utf-8")
        return path

    return write



@pytest.fixture(autouse=True)
def isolated_working_directory(tmp_path_factory, monkeypatch) -> Path:
    """Run each test in an empty folder, so the repository's bench.toml and results/ never apply."""
    folder = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(folder)
    return folder
