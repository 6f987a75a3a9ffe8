"""Interrupted runs resume exactly; failed runs are recorded; records survive concurrent writers."""

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

import methods
from methods.base import Method, MethodConfig
from rsitr_bench.errors import TrainingFailed
from rsitr_bench.records import read_records, write_json_atomic
from rsitr_bench.run import execute_run, make_run_config
from synthetic import write_dataset

EPOCHS = 4


@pytest.fixture(scope="module")
def dataset_folder(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("synthetic"), train=32)


def _command(dataset: Path, output_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "rsitr_bench", "run", "--method", "lora", "--dataset", str(dataset),
        "--epochs", str(EPOCHS), "--batch-size", "4", "--seed", "7", "--device", "cpu",
        "--output-dir", str(output_dir), *extra,
    ]


def _environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


def _completed_record(output_dir: Path) -> dict:
    records, unreadable = read_records(output_dir)
    assert unreadable == []
    completed = [record.data for record in records if record.data["status"] == "completed"]
    assert len(completed) == 1
    return completed[0]


@pytest.fixture(scope="module")
def uninterrupted(dataset_folder, tmp_path_factory) -> dict:
    output_dir = tmp_path_factory.mktemp("uninterrupted")
    # cwd: a folder without bench.toml, since module fixtures run before the per-test folder is set.
    result = subprocess.run(_command(dataset_folder, output_dir), env=_environment(), capture_output=True, text=True,
                            timeout=600, cwd=output_dir)
    assert result.returncode == 0, result.stderr
    return _completed_record(output_dir)


def _wait_for_checkpoint(output_dir: Path, process: subprocess.Popen, timeout: float = 300) -> Path:
    deadline = time.monotonic() + timeout
    while True:
        found = list((output_dir / "checkpoints").glob("*/last.pt"))
        if found:
            return found[0]
        assert process.poll() is None, "the run ended before writing its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.02)


def _assert_same_results(resumed: dict, reference: dict) -> None:
    assert resumed["metrics"] == reference["metrics"]
    assert resumed["ranks"] == reference["ranks"]
    assert resumed["train"]["history"] == reference["train"]["history"]
    assert resumed["train"]["best_epoch"] == reference["train"]["best_epoch"]


def test_resume_after_sigkill_matches_uninterrupted(dataset_folder, tmp_path, uninterrupted):
    process = subprocess.Popen(_command(dataset_folder, tmp_path), env=_environment(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = _wait_for_checkpoint(tmp_path, process)
    time.sleep(0.3)  # into the second epoch
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL

    saved = torch.load(checkpoint, weights_only=True)
    assert 1 <= saved["position"]["epoch"] < EPOCHS
    assert not any(record.data["status"] == "completed" for record in read_records(tmp_path)[0])

    result = subprocess.run(_command(dataset_folder, tmp_path, "--resume"), env=_environment(),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    resumed = _completed_record(tmp_path)
    assert resumed["train"]["resumed_from_epoch"] == saved["position"]["epoch"]
    _assert_same_results(resumed, uninterrupted)
    assert not checkpoint.exists()


def test_sigterm_saves_checkpoint_and_resumes(dataset_folder, tmp_path, uninterrupted):
    process = subprocess.Popen(_command(dataset_folder, tmp_path), env=_environment(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoint = _wait_for_checkpoint(tmp_path, process)
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    output = " ".join((stdout + stderr).split())
    assert "Resume it with" in output
    assert "--resume" in output

    records, _ = read_records(tmp_path)
    assert [record.data["status"] for record in records] == ["interrupted"]
    assert records[0].data["error"]["checkpoint"] == str(checkpoint)

    result = subprocess.run(_command(dataset_folder, tmp_path, "--resume"), env=_environment(),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    resumed = _completed_record(tmp_path)
    assert resumed["run_id"] == records[0].data["run_id"]
    _assert_same_results(resumed, uninterrupted)


def test_resume_without_checkpoint_starts_fresh(dataset_folder, tmp_path):
    config = make_run_config("lora", str(dataset_folder), {"output_dir": str(tmp_path), "device": "cpu"}, {"epochs": 1, "batch_size": 8})
    record = execute_run(config, resume=True).record
    assert record["status"] == "completed"
    assert record["train"]["resumed_from_epoch"] is None


@dataclass
class _NanConfig(MethodConfig):
    fail_at_step: int = field(default=2, metadata={"help": "1-based step whose loss becomes NaN"})


class _NanAtStep(Method):
    """A method whose loss turns NaN at a chosen step, for the numerical-failure path."""

    name = "test_nan_at_step"
    config_class = _NanConfig

    def __init__(self, config=None):
        super().__init__(config)
        self.steps = 0

    def apply(self, model, context):
        model.requires_grad_(False)
        model.text_projection.requires_grad_(True)

    def loss(self, model, batch, output):
        terms = super().loss(model, batch, output)
        self.steps += 1
        if self.steps == self.config.fail_at_step:
            terms["loss"] = terms["loss"] * float("nan")
        return terms


@pytest.fixture
def nan_method():
    methods.load_builtin_methods()
    methods.register_method(_NanAtStep)
    yield _NanAtStep.name
    methods._REGISTRY.pop(_NanAtStep.name)


def test_non_finite_loss_records_failed_run(nan_method, dataset_folder, tmp_path):
    config = make_run_config(nan_method, str(dataset_folder), {"output_dir": str(tmp_path), "device": "cpu"},
                             {"epochs": 2, "batch_size": 8}, {"fail_at_step": 3})
    with pytest.raises(TrainingFailed) as failure:
        execute_run(config)
    assert failure.value.step == 3
    assert failure.value.epoch == 1

    records, unreadable = read_records(tmp_path)
    assert unreadable == []
    assert len(records) == 1
    record = records[0].data
    assert record["status"] == "failed"
    assert record["error"]["epoch"] == 1
    assert record["error"]["step"] == 3
    assert "non-finite loss" in record["error"]["reason"]
    assert "metrics" not in record


def _write_many(folder: str, writer: int, count: int) -> None:
    for index in range(count):
        payload = {"writer": writer, "index": index, "padding": "x" * 20_000}
        write_json_atomic(Path(folder) / f"w{writer}_{index}.json", payload)
        # Both writers also replace one shared file, the worst case for a torn write.
        write_json_atomic(Path(folder) / "shared.json", payload)


def test_concurrent_writers_lose_nothing(tmp_path):
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_many, args=(str(tmp_path), writer, 40)) for writer in range(2)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=120)
        assert process.exitcode == 0

    for writer in range(2):
        for index in range(40):
            data = json.loads((tmp_path / f"w{writer}_{index}.json").read_text())
            assert data["writer"] == writer
            assert data["index"] == index
    shared = json.loads((tmp_path / "shared.json").read_text())
    assert shared["index"] == 39
    assert not list(tmp_path.glob(".*.tmp"))
