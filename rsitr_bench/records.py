"""Run records: one JSON file per run under ``<output-dir>/runs/``.

A record is written atomically: to a temporary file in the same folder, flushed and
fsynced, then renamed over the target. A reader therefore never reads a half-written record.
Each run has its own file name, so concurrent writers do not overwrite each other's files.

Keys other tools rely on: ``status`` (completed, failed, interrupted), ``metrics.test``
with ``i2t_R@1`` ... ``t2i_R@10`` and ``mR`` in percent, and ``ranks.i2t`` / ``ranks.t2i``,
the 0-based rank of the first correct item per test query.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
RUNS_FOLDER = "runs"
STATUSES = ("completed", "failed", "interrupted", "running")
MACHINE_SETTINGS = ("output_dir", "data_root", "image_dir", "device")


def config_hash(config: dict[str, Any]) -> str:
    """Hash the settings that define an experiment.

    Where the run stores its output and finds its files (``output_dir``, ``data_root``,
    ``image_dir``) and which device it runs on do not count, so a sweep moved to another
    machine or folder recognises its finished runs.
    """
    relevant = {key: value for key, value in config.items() if key not in MACHINE_SETTINGS}
    text = json.dumps(relevant, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def run_key(config: dict[str, Any]) -> str:
    """Stable name of a configuration: method, dataset, seed and the config hash."""
    dataset = Path(str(config["dataset"])).name or "dataset"
    method = str(config["method"]).replace(":", "-")
    safe_dataset = "".join(c if c.isalnum() or c in "-_" else "-" for c in dataset)
    return f"{method}_{safe_dataset}_seed{config['seed']}_{config_hash(config)}"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` so that readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, allow_nan=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def git_commit(start: Path | None = None) -> str | None:
    """Return the commit of the checkout the code runs from, with ``-dirty`` if it has changes."""
    folder = start or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def versions() -> dict[str, str]:
    import open_clip
    import peft
    import torch

    import rsitr_bench

    return {
        "rsitr_bench": rsitr_bench.__version__,
        "torch": torch.__version__,
        "open_clip": open_clip.__version__,
        "peft": peft.__version__,
        "python": ".".join(map(str, __import__("sys").version_info[:3])),
    }


@dataclass
class LoadedRecord:
    path: Path
    data: dict[str, Any]


@dataclass
class UnreadableRecord:
    path: Path
    reason: str


def read_records(output_dir: Path) -> tuple[list[LoadedRecord], list[UnreadableRecord]]:
    """Read every record under ``<output_dir>/runs``; unreadable files are returned, not raised."""
    folder = output_dir / RUNS_FOLDER
    records: list[LoadedRecord] = []
    unreadable: list[UnreadableRecord] = []
    if not folder.is_dir():
        return records, unreadable
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            unreadable.append(UnreadableRecord(path, f"not valid JSON ({error})"))
            continue
        problem = _schema_problem(data)
        if problem:
            unreadable.append(UnreadableRecord(path, problem))
            continue
        records.append(LoadedRecord(path, data))
    return records, unreadable


def _schema_problem(data: Any) -> str | None:
    if not isinstance(data, dict):
        return "not a JSON object"
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        return f"schema_version {version!r}, expected {SCHEMA_VERSION}"
    for key in ("run_id", "status", "method", "dataset", "seed", "config"):
        if key not in data:
            return f"missing key {key!r}"
    if data["status"] not in STATUSES:
        return f"unknown status {data['status']!r}"
    if data["status"] == "completed":
        test = data.get("metrics", {}).get("test")
        if not isinstance(test, dict) or "mR" not in test:
            return "completed but has no metrics.test.mR"
    return None
