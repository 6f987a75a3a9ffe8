"""The experiment grid of bench.toml's ``[sweep]`` table: planning, sharding and running it.

The grid is every (dataset, seed, method) combination, in that nesting order, so that a
partial sweep already contains paired runs of all methods for the first seeds. Every method
runs with the same seeds, so comparisons between methods can be paired by seed.

A run is skipped when the results folder contains a completed record with the same config key
(method, dataset, seed and the hash of the resolved settings). A run whose checkpoint is in
the results folder (left by an interrupted run) is resumed from it.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rsitr_bench.config import ConfigError, RunConfig, unknown_key_message
from rsitr_bench.errors import TrainingFailed, UserError
from rsitr_bench.progress import NullProgress, Progress
from rsitr_bench.records import RUNS_FOLDER, SCHEMA_VERSION, read_records, run_key, write_json_atomic

_logger = logging.getLogger(__name__)

SWEEP_KEYS = ("methods", "datasets", "seeds", "reference")
SHARD_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class SweepSpec:
    """The ``[sweep]`` table: which methods, datasets and seeds to run, and the reference method."""

    methods: list[str]
    datasets: list[str]
    seeds: list[int]
    reference: str | None


def _string_list(table: dict[str, Any], key: str) -> list[str]:
    value = table.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"Invalid [sweep] {key} = {value!r}: expected a non-empty list of names, e.g. {key} = [\"a\", \"b\"].")
    duplicates = sorted({v for v in value if value.count(v) > 1})
    if duplicates:
        raise ConfigError(f"Invalid [sweep] {key}: {', '.join(duplicates)} listed more than once. List each name once.")
    return list(value)


def parse_sweep_table(bench: dict[str, Any]) -> SweepSpec:
    """Validate and return bench.toml's ``[sweep]`` table."""
    table = bench.get("sweep")
    if not isinstance(table, dict):
        raise ConfigError(
            "bench.toml has no [sweep] table. Add one with methods, datasets and seeds, e.g.\n"
            '[sweep]\nmethods = ["zeroshot", "lora"]\ndatasets = ["rsitmd"]\nseeds = [0, 1, 2, 3, 4]\nreference = "zeroshot"'
        )
    for key in table:
        if key not in SWEEP_KEYS:
            raise ConfigError(unknown_key_message(f"sweep.{key}", [f"sweep.{k}" for k in SWEEP_KEYS]))
    methods = _string_list(table, "methods")
    datasets = _string_list(table, "datasets")
    seeds = table.get("seeds")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise ConfigError(f"Invalid [sweep] seeds = {seeds!r}: expected a non-empty list of integers >= 0, e.g. seeds = [0, 1, 2, 3, 4].")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"Invalid [sweep] seeds = {seeds!r}: a seed is listed more than once. List each seed once.")
    reference = table.get("reference")
    if reference is not None and (not isinstance(reference, str) or reference not in methods):
        raise ConfigError(f"Invalid [sweep] reference = {reference!r}: expected one of the sweep's methods ({', '.join(methods)}).")
    return SweepSpec(methods, datasets, list(seeds), reference)


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``i/n`` (1-based: ``1/4`` to ``4/4``) into (i, n)."""
    match = SHARD_PATTERN.match(text)
    if not match:
        raise ConfigError(f"Invalid --shard {text!r}: expected i/n with 1 <= i <= n, e.g. --shard 1/4.")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise ConfigError(f"Invalid --shard {text!r}: expected i/n with 1 <= i <= n (shards are numbered from 1), e.g. --shard 1/{max(count, 1)}.")
    return index, count


def grid(spec: SweepSpec) -> list[tuple[str, int, str]]:
    """Return the grid as (dataset, seed, method) in its fixed order."""
    return [(dataset, seed, method) for dataset in spec.datasets for seed in spec.seeds for method in spec.methods]


def shard_indices(total: int, shard: tuple[int, int] | None) -> list[int]:
    """Return the grid positions of shard ``(i, n)``: every n-th position starting at i - 1.

    Round-robin keeps the shares within one run of each other in size and mixes datasets
    and methods in every share. The shares of 1/n ... n/n are disjoint and cover the grid.
    """
    if shard is None:
        return list(range(total))
    index, count = shard
    return list(range(index - 1, total, count))


@dataclass
class PlannedRun:
    """One grid cell with its resolved settings and what the sweep will do with it."""

    position: int
    """0-based position in the whole grid (not in the shard)."""
    dataset: str
    seed: int
    method: str
    config: RunConfig
    key: str
    action: str
    """``run``, ``resume`` (a checkpoint exists) or ``skip`` (a completed record exists)."""
    existing_record: Path | None = None


def completed_records(output_dir: Path) -> dict[str, Path]:
    """Map config key to the record file of each completed run under ``output_dir``."""
    records, unreadable = read_records(output_dir)
    for item in unreadable:
        _logger.warning("Ignoring unreadable run record %s: %s", item.path, item.reason)
    completed: dict[str, Path] = {}
    for record in records:
        if record.data["status"] != "completed":
            continue
        key = record.data.get("config_key") or run_key(record.data["config"])
        completed[key] = record.path
    return completed


def checkpoint_path(config: RunConfig, key: str) -> Path:
    """Return where execute_run keeps the latest checkpoint of the run ``key``."""
    from rsitr_bench.run import CHECKPOINTS_FOLDER

    return Path(config.output_dir) / CHECKPOINTS_FOLDER / key / "last.pt"


def plan_sweep(
    bench: dict[str, Any],
    spec: SweepSpec,
    run_overrides: dict[str, Any] | None = None,
    shard: tuple[int, int] | None = None,
) -> list[PlannedRun]:
    """Resolve every run of the grid (or of one shard) and decide to run, resume or skip it.

    ``run_overrides`` contains command-line run settings (output_dir, device, data_root).
    Invalid settings raise ConfigError before anything runs.
    """
    from rsitr_bench.data import resolve_dataset_folder
    from rsitr_bench.data.registry import DEMO_DATASET
    from rsitr_bench.run import resolve_config

    cells = grid(spec)
    data_root = (run_overrides or {}).get("data_root") or bench.get("run", {}).get("data_root")
    for dataset in spec.datasets:
        # A missing folder or data root fails here, before any run, instead of failing every run of it.
        if dataset.lower() != DEMO_DATASET:
            resolve_dataset_folder(dataset, data_root)
    planned: list[PlannedRun] = []
    completed: dict[str, Path] | None = None
    for position in shard_indices(len(cells), shard):
        dataset, seed, method = cells[position]
        overrides = dict(run_overrides or {})
        overrides["seed"] = seed
        config = resolve_config(bench, method, dataset, overrides)
        key = run_key(dataclasses.asdict(config))
        if completed is None:
            completed = completed_records(Path(config.output_dir))
        if key in completed:
            action, existing = "skip", completed[key]
        elif checkpoint_path(config, key).is_file():
            action, existing = "resume", None
        else:
            action, existing = "run", None
        planned.append(PlannedRun(position, dataset, seed, method, config, key, action, existing))
    return planned


@dataclass
class RunOutcome:
    """The outcome of one planned run."""

    planned: PlannedRun
    status: str
    """``completed``, ``skipped`` or ``failed``."""
    record: dict[str, Any] | None = None
    record_path: Path | None = None
    error: str | None = None


def _record_failure(planned: PlannedRun, error: BaseException) -> Path:
    """Write a failed-run record for an error that stopped a run before it wrote its own record."""
    config = dataclasses.asdict(planned.config)
    now = datetime.now(timezone.utc)
    run_id = f"{planned.key}_{now:%Y%m%dT%H%M%SZ}"
    path = Path(planned.config.output_dir) / RUNS_FOLDER / f"{run_id}.json"
    write_json_atomic(path, {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "config_key": planned.key,
        "status": "failed",
        "method": planned.method,
        "dataset": Path(planned.dataset).name.lower(),
        "seed": planned.seed,
        "config": config,
        "error": {"reason": f"{type(error).__name__}: {error}", "epoch": None, "step": None},
        "finished_at": now.isoformat(timespec="seconds"),
    })
    return path


def run_planned(
    planned: PlannedRun,
    progress: Progress | None = None,
) -> RunOutcome:
    """Execute one planned run and record a failure instead of raising it.

    ``RunInterrupted`` (Ctrl-C or SIGTERM during training, raised after the checkpoint is
    saved) and ``KeyboardInterrupt`` outside training propagate so that the sweep stops.
    """
    from rsitr_bench.run import execute_run
    from rsitr_bench.train import RunInterrupted

    if planned.action == "skip":
        return RunOutcome(planned, "skipped", record_path=planned.existing_record)
    progress = progress or NullProgress()
    resume = checkpoint_path(planned.config, planned.key).is_file()
    try:
        result = execute_run(planned.config, resume=resume, progress=progress)
    except RunInterrupted:
        raise
    except TrainingFailed as failure:
        # execute_run has written the failed record.
        _logger.error("Run %s failed: %s", planned.key, failure)
        return RunOutcome(planned, "failed", error=str(failure))
    except UserError as error:
        _logger.error("Run %s failed: %s", planned.key, error)
        path = _record_failure(planned, error)
        return RunOutcome(planned, "failed", record_path=path, error=str(error))
    except Exception as error:  # noqa: BLE001 - any other error fails this run only; the traceback is logged
        _logger.exception("Run %s failed with an unexpected error", planned.key)
        path = _record_failure(planned, error)
        return RunOutcome(planned, "failed", record_path=path, error=f"{type(error).__name__}: {error}")
    return RunOutcome(planned, "completed", record=result.record, record_path=result.record_path)


def run_sweep(
    plan: list[PlannedRun],
    progress: Progress | None = None,
    on_start: Callable[[PlannedRun], None] | None = None,
    on_finish: Callable[[RunOutcome], None] | None = None,
) -> list[RunOutcome]:
    """Run every planned run in order. A failed run is recorded and the sweep continues."""
    outcomes = []
    for planned in plan:
        if on_start is not None:
            on_start(planned)
        outcome = run_planned(planned, progress)
        outcomes.append(outcome)
        if on_finish is not None:
            on_finish(outcome)
    return outcomes
