"""The regression check for CI: a few small runs compared with stored baseline metrics.

bench.toml's ``[check]`` table lists the runs. Each one runs with the built-in defaults and
its own settings only. The ``[run]``, ``[train]`` and ``[methods]`` tables do not apply, so
changing experiment defaults does not move the check. Each run's test metrics are
compared with the baseline file within an absolute tolerance in percentage points.

CPU runs with the same seed repeat their metrics exactly on one machine (the check's
end-to-end test relies on it). The tolerance allows for other CPUs and thread counts,
because they change the order of floating-point sums.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rsitr_bench.config import DATA_ROOT_ENV, ConfigError, RunConfig, TrainConfig, unknown_key_message
from rsitr_bench.errors import TrainingFailed, UserError
from rsitr_bench.metrics import METRIC_KEYS
from rsitr_bench.progress import NullProgress, Progress
from rsitr_bench.records import write_json_atomic

_logger = logging.getLogger(__name__)

CHECK_KEYS = ("runs", "tolerance", "baseline", "device")
DEFAULT_TOLERANCE_PP = 0.5
DEFAULT_BASELINE = "benchmarks/check_baseline.json"
DEFAULT_DEVICE = "cpu"
BASELINE_FORMAT = 1

ENTRY_KEYS = ("name", "method", "dataset", "train")
RUN_KEYS = tuple(f.name for f in dataclasses.fields(RunConfig) if f.name not in ("method", "dataset", "train", "method_options", "output_dir"))
TRAIN_KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig))
LOCATION_SETTINGS = ("output_dir", "device", "data_root", "image_dir", "dataset")
"""Config keys that differ between machines and are left out of the settings comparison."""


class CheckError(UserError):
    """An invalid [check] table or baseline file."""


@dataclass(frozen=True)
class CheckEntry:
    """One run of the check suite."""

    name: str
    method: str
    dataset: str
    run_values: dict[str, Any]
    train_values: dict[str, Any]
    method_values: dict[str, Any]


@dataclass(frozen=True)
class CheckSpec:
    """The ``[check]`` table."""

    entries: list[CheckEntry]
    tolerance: float
    """Absolute tolerance in percentage points."""
    baseline: Path
    device: str


def _parse_entry(index: int, entry: Any) -> CheckEntry:
    where = f"[check] runs[{index}]"
    if not isinstance(entry, dict):
        raise CheckError(f"Invalid {where} = {entry!r}: expected a table such as {{method = \"lora\", dataset = \"demo\"}}.")
    for key in ("method", "dataset"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise CheckError(f"Invalid {where}: {key!r} is missing or not a string. Every check run needs a method and a dataset.")
    train_table = entry.get("train") or {}
    if not isinstance(train_table, dict):
        raise CheckError(f"Invalid {where} train = {train_table!r}: expected a table of training settings, such as {{epochs = 1}}.")
    run_values: dict[str, Any] = {}
    train_values: dict[str, Any] = dict(train_table)
    method_values: dict[str, Any] = {}
    extras = []
    for key, value in entry.items():
        if key in ENTRY_KEYS:
            continue
        extras.append(f"{key}={value}")
        if key in RUN_KEYS:
            run_values[key] = value
        elif key in TRAIN_KEYS:
            train_values[key] = value
        else:
            # make_run_config rejects a key that is not a setting of the method.
            method_values[key] = value
    default_name = f"{entry['method']}/{entry['dataset']}" + (f" ({', '.join(extras)})" if extras else "")
    name = entry.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise CheckError(f"Invalid {where} name = {name!r}: expected a non-empty string.")
    return CheckEntry(name, entry["method"], entry["dataset"], run_values, train_values, method_values)


def parse_check_table(bench: dict[str, Any], base_dir: Path) -> CheckSpec:
    """Validate bench.toml's ``[check]`` table and return it as a CheckSpec.

    A relative baseline path is taken relative to ``base_dir``.
    """
    table = bench.get("check")
    if not isinstance(table, dict):
        raise CheckError(
            "bench.toml has no [check] table. Add one, e.g.\n"
            '[check]\nruns = [{method = "zeroshot", dataset = "demo"}, {method = "lora", dataset = "demo", epochs = 1}]'
        )
    for key in table:
        if key not in CHECK_KEYS:
            raise CheckError(unknown_key_message(f"check.{key}", [f"check.{k}" for k in CHECK_KEYS]))
    runs = table.get("runs")
    if not isinstance(runs, list) or not runs:
        raise CheckError(f"Invalid [check] runs = {runs!r}: expected a non-empty list of tables with method and dataset.")
    entries = [_parse_entry(i, entry) for i, entry in enumerate(runs)]

    names = [e.name for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CheckError(f"[check] runs has several entries named {', '.join(map(repr, duplicates))}. Give them distinct `name` values.")

    tolerance = table.get("tolerance", DEFAULT_TOLERANCE_PP)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0:
        raise CheckError(f"Invalid [check] tolerance = {tolerance!r}: expected a number >= 0 (percentage points).")
    baseline = table.get("baseline", DEFAULT_BASELINE)
    if not isinstance(baseline, str) or not baseline:
        raise CheckError(f"Invalid [check] baseline = {baseline!r}: expected a file path.")
    device = table.get("device", DEFAULT_DEVICE)
    if not isinstance(device, str):
        raise CheckError(f"Invalid [check] device = {device!r}: expected 'cpu', 'cuda', 'cuda:N' or 'auto'.")

    baseline_path = Path(baseline).expanduser()
    if not baseline_path.is_absolute():
        baseline_path = base_dir / baseline_path
    return CheckSpec(entries, float(tolerance), baseline_path, device)


def resolve_check_dataset(dataset: str, data_root: str | None) -> tuple[str | None, str | None]:
    """Return (dataset value for the run, None) or (None, reason to skip).

    ``demo`` and folder paths are used as given. Any other name is a folder under the data
    root (``--data-root`` or $RSITR_DATA_ROOT), e.g. ``rsicd`` or ``mini``. Without a data
    root the run is skipped.
    """
    from rsitr_bench.data.registry import DEMO_DATASET, KNOWN_DATASETS

    if dataset.lower() == DEMO_DATASET:
        return DEMO_DATASET, None
    if os.sep in dataset or "/" in dataset:
        return str(Path(dataset).expanduser()), None
    root = data_root or os.environ.get(DATA_ROOT_ENV)
    if not root:
        return None, f"dataset {dataset!r} needs a data root; set {DATA_ROOT_ENV} or pass --data-root to run it"
    if dataset.lower() in KNOWN_DATASETS:
        return dataset.lower(), None
    return str(Path(root).expanduser() / dataset), None


@dataclass
class EntryRun:
    """The outcome of running one check entry."""

    entry: CheckEntry
    record: dict[str, Any] | None = None
    skipped: str | None = None
    """Reason the entry did not run."""
    error: str | None = None
    """Reason the run failed."""


def run_check_suite(
    spec: CheckSpec,
    output_dir: Path,
    data_root: str | None = None,
    device: str | None = None,
    progress: Progress | None = None,
    on_finish: Callable[[EntryRun], None] | None = None,
) -> list[EntryRun]:
    """Run every entry of ``spec`` and write the run records under ``output_dir``.

    A failed or skipped entry is reported in its EntryRun, not raised. Only RunInterrupted
    (Ctrl-C or SIGTERM during training) propagates.
    """
    from rsitr_bench.run import execute_run, resolve_config
    from rsitr_bench.train import RunInterrupted

    progress = progress or NullProgress()
    outcomes = []
    for entry in spec.entries:
        dataset, skip_reason = resolve_check_dataset(entry.dataset, data_root)
        outcome = EntryRun(entry)
        if dataset is None:
            outcome.skipped = skip_reason
        else:
            run_values = {**entry.run_values, "output_dir": str(output_dir), "device": device or spec.device}
            if data_root:
                run_values["data_root"] = data_root
            try:
                config = resolve_config({}, entry.method, dataset, run_values, entry.train_values, entry.method_values)
                outcome.record = execute_run(config, progress=progress).record
            except RunInterrupted:
                raise
            except TrainingFailed as failure:
                outcome.error = f"training failed: {failure}"
            except UserError as error:
                outcome.error = str(error)
            except Exception as error:  # noqa: BLE001 - reported as this entry's failure with the traceback logged
                _logger.exception("Check run %s failed with an unexpected error", entry.name)
                outcome.error = f"{type(error).__name__}: {error}"
        outcomes.append(outcome)
        if on_finish is not None:
            on_finish(outcome)
    return outcomes


def comparable_settings(record: dict[str, Any]) -> dict[str, Any]:
    """Return a record's settings without the machine-specific ones, flattened to ``train.x`` and method keys."""
    config = record["config"]
    flat: dict[str, Any] = {"dataset": record["dataset"]}
    for key, value in config.items():
        if key in LOCATION_SETTINGS:
            continue
        if key == "train":
            flat.update({f"train.{k}": v for k, v in value.items()})
        elif key == "method_options":
            flat.update({f"method.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def baseline_entry(record: dict[str, Any]) -> dict[str, Any]:
    """Return what the baseline stores about one run."""
    return {
        "method": record["method"],
        "dataset": record["dataset"],
        "settings": comparable_settings(record),
        "metrics": {key: record["metrics"]["test"][key] for key in METRIC_KEYS},
        "params_trainable": record["params"]["trainable"],
        "wall_time_s": record.get("wall_time_s"),
    }


def load_baseline(path: Path) -> dict[str, Any]:
    """Read the baseline file, or raise CheckError saying how to create it."""
    if not path.is_file():
        raise CheckError(f"No check baseline at {path}. Create it with `rsitr-bench check --update`, then commit it.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckError(f"Check baseline {path} is not readable JSON ({error}). Recreate it with `rsitr-bench check --update`.") from error
    if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT or not isinstance(data.get("entries"), dict):
        raise CheckError(f"Check baseline {path} is not in format {BASELINE_FORMAT}. Recreate it with `rsitr-bench check --update`.")
    return data


def write_baseline(path: Path, outcomes: list[EntryRun], previous: dict[str, Any] | None) -> list[str]:
    """Write the baseline file from the runs in ``outcomes`` that completed.

    An entry of ``outcomes`` that was skipped or failed keeps its values from ``previous``,
    if it has any there, so a failed update never loses a baseline value. Entries of
    ``previous`` that are not in ``outcomes`` are dropped. Returns the names of the entries
    whose values were written from this run.
    """
    previous_entries = dict((previous or {}).get("entries", {}))
    entries: dict[str, Any] = {}
    updated = []
    for outcome in outcomes:
        name = outcome.entry.name
        if outcome.record is not None and not outcome.error:
            entries[name] = baseline_entry(outcome.record)
            updated.append(name)
        elif name in previous_entries:
            entries[name] = previous_entries[name]
    write_json_atomic(path, {
        "format": BASELINE_FORMAT,
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.machine(), "cpus": os.cpu_count()},
        "entries": entries,
    })
    return updated


@dataclass
class MetricChange:
    """One metric that moved beyond the tolerance."""

    metric: str
    baseline: float
    current: float

    @property
    def difference(self) -> float:
        """Current minus baseline, in percentage points."""
        return self.current - self.baseline

    def describe(self) -> str:
        return f"{self.metric} {self.baseline:.2f} -> {self.current:.2f} ({self.difference:+.2f} pp)"


@dataclass
class EntryVerdict:
    """The result of comparing one check run with the baseline."""

    entry: CheckEntry
    status: str
    """``passed``, ``regressed``, ``failed``, ``skipped`` or ``no baseline``."""
    regressions: list[MetricChange] = field(default_factory=list)
    improvements: list[MetricChange] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    max_abs_difference: float | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("passed", "skipped")


def _settings_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k, '(unset)')!r} -> {new.get(k, '(unset)')!r}" for k in keys if old.get(k) != new.get(k)]


def compare_with_baseline(outcome: EntryRun, baseline: dict[str, Any], tolerance: float) -> EntryVerdict:
    """Compare one run with its baseline entry.

    A metric more than ``tolerance`` percentage points below the baseline is a regression.
    Changed settings or trainable parameter counts fail the entry.
    """
    entry = outcome.entry
    if outcome.skipped:
        return EntryVerdict(entry, "skipped", messages=[outcome.skipped])
    if outcome.error or outcome.record is None:
        return EntryVerdict(entry, "failed", messages=[outcome.error or "no run record"])
    expected = baseline["entries"].get(entry.name)
    if expected is None:
        return EntryVerdict(entry, "no baseline", messages=["no baseline entry with this name. Run `rsitr-bench check --update` to add it"])

    current = baseline_entry(outcome.record)
    verdict = EntryVerdict(entry, "passed")
    changed = _settings_differences(expected["settings"], current["settings"])
    if changed:
        verdict.status = "failed"
        verdict.messages.append(
            "settings differ from the baseline (" + "; ".join(changed) + "). If the change is intended, run `rsitr-bench check --update`"
        )
        return verdict
    if expected["params_trainable"] != current["params_trainable"]:
        verdict.status = "failed"
        verdict.messages.append(f"trainable parameters {expected['params_trainable']:,} -> {current['params_trainable']:,}")

    differences = []
    for metric in METRIC_KEYS:
        change = MetricChange(metric, float(expected["metrics"][metric]), float(current["metrics"][metric]))
        differences.append(abs(change.difference))
        if change.difference < -tolerance:
            verdict.regressions.append(change)
        elif change.difference > tolerance:
            verdict.improvements.append(change)
    verdict.max_abs_difference = max(differences)
    if verdict.regressions and verdict.status == "passed":
        verdict.status = "regressed"
    return verdict
