"""One run from config to record: data, model, method, training, test, run record."""

from __future__ import annotations

import dataclasses
import logging
import random
import resource
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

import methods
from methods.base import Method, MethodContext
from rsitr_bench import distributed
from rsitr_bench.config import ConfigError, RunConfig, TrainConfig, update_dataclass
from rsitr_bench.data import load_dataset, decode_images, require_images
from rsitr_bench.data.dataset import RetrievalDataset, Split
from rsitr_bench.errors import TrainingFailed
from rsitr_bench.evaluate import EncodedSplit, evaluate_split
from rsitr_bench.models import check_pretrained, count_parameters, create_model, demo_checkpoint
from rsitr_bench.progress import NullProgress, Progress
from rsitr_bench.records import (
    RUNS_FOLDER,
    SCHEMA_VERSION,
    git_commit,
    run_key,
    versions,
    write_json_atomic,
)
from rsitr_bench.train import RunInterrupted, Trainer, autocast_context, load_checkpoint

_logger = logging.getLogger(__name__)

CHECKPOINTS_FOLDER = "checkpoints"


def make_run_config(
    method: str,
    dataset: str,
    run_values: dict[str, Any] | None = None,
    train_values: dict[str, Any] | None = None,
    method_values: dict[str, Any] | None = None,
) -> RunConfig:
    """Resolve a run's settings: defaults, then the method's training defaults, then the user's values.

    Every key is validated against its dataclass; the method's own settings are checked
    against the method's config class.
    """
    method_class, _ = methods.get_method_class(method)
    train = update_dataclass(TrainConfig(), dict(method_class.train_defaults), prefix="train.")
    train = update_dataclass(train, dict(train_values or {}), prefix="train.")
    train.validate()
    method_config = update_dataclass(method_class.config_class(), dict(method_values or {}))
    config = RunConfig(method=method, dataset=dataset, train=train, method_options=dataclasses.asdict(method_config))
    run_values = dict(run_values or {})
    for reserved in ("method", "dataset", "train", "method_options"):
        if reserved in run_values:
            raise ConfigError(f"Setting {reserved!r} cannot be set this way; pass it as its own option.")
    return update_dataclass(config, run_values)


BENCH_TABLES = ("run", "train", "methods", "sweep", "check", "report")


def validate_bench(bench: dict[str, Any]) -> None:
    """Reject unknown top-level tables and method tables of bench.toml, naming the closest valid one."""
    from rsitr_bench.config import unknown_key_message

    for key in bench:
        if key not in BENCH_TABLES:
            raise ConfigError(unknown_key_message(key, list(BENCH_TABLES)))
    for name in bench.get("methods", {}):
        methods.get_method_class(name)


def resolve_config(
    bench: dict[str, Any],
    method: str,
    dataset: str,
    run_overrides: dict[str, Any] | None = None,
    train_overrides: dict[str, Any] | None = None,
    method_overrides: dict[str, Any] | None = None,
) -> RunConfig:
    """Combine bench.toml and command-line values into a validated RunConfig.

    Precedence: built-in defaults < the method's training defaults < bench.toml [run],
    [train] and [methods.<name>] (whose nested ``train`` table applies to that method only)
    < the overrides passed here.
    """
    validate_bench(bench)
    run_values = dict(bench.get("run", {}))
    train_values = dict(bench.get("train", {}))
    method_values = dict(bench.get("methods", {}).get(method, {}))
    method_train = method_values.pop("train", {})
    if not isinstance(method_train, dict):
        raise ConfigError(f"[methods.{method}] train must be a table of training settings, got {method_train!r}.")
    train_values.update(method_train)
    run_values.update(run_overrides or {})
    train_values.update(train_overrides or {})
    method_values.update(method_overrides or {})
    return make_run_config(method, dataset, run_values, train_values, method_values)


def build_method(config: RunConfig) -> Method:
    method_class, _ = methods.get_method_class(config.method)
    method_config = update_dataclass(method_class.config_class(), config.method_options)
    return methods.create_method(config.method, method_config)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"Device {name!r} was requested but CUDA is not available; use --device cpu.")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def peak_memory_mb(device: torch.device) -> dict[str, float]:
    """Peak resident memory of this process and, on CUDA, peak allocated device memory."""
    peak = {"cpu_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        peak["cuda_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return peak


@dataclass
class RunResult:
    record: dict[str, Any]
    record_path: Path | None


def encode_split(split: Split, images: torch.Tensor, tokenizer) -> EncodedSplit:
    labels = torch.tensor(split.labels, dtype=torch.long) if split.labels is not None else None
    return EncodedSplit(
        images=images,
        tokens=tokenizer(split.captions),
        caption_image=torch.tensor(split.caption_image, dtype=torch.long),
        labels=labels,
    )


def describe_dataset(dataset: RetrievalDataset) -> dict[str, Any]:
    return {
        "name": dataset.name,
        "folder": str(dataset.root),
        "image_dir": str(dataset.image_dir),
        "format": dataset.format,
        "notes": list(dataset.notes),
        "classes": len(dataset.class_names) if dataset.class_names else 0,
        "splits": {
            name: {"images": split.num_images, "captions": split.num_captions}
            for name, split in dataset.splits.items()
        },
    }


def execute_run(
    config: RunConfig, resume: bool = False, progress: Progress | None = None, weights_path: Path | None = None
) -> RunResult:
    """Train and evaluate one configuration and write its run record.

    ``weights_path``, if given, receives the whole model's weights of the best epoch as
    safetensors.

    A numerical failure is recorded as a failed run and re-raised; an interrupt saves a
    checkpoint, records the run as interrupted and re-raises ``RunInterrupted``.
    """
    progress = progress or NullProgress()
    check_pretrained(config.model, config.pretrained)
    context, device_name = distributed.setup(config.device)
    if not distributed.is_main_process():
        progress = NullProgress()  # one set of progress bars, from the main process
    if config.pretrained == "demo":
        # Made once per cache folder; done before the clock starts, so wall_time_s is the run's own.
        demo_checkpoint(config.model, progress)
    started = time.time()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    device = resolve_device(device_name)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    config_dict = dataclasses.asdict(config)
    key = run_key(config_dict)
    output_dir = Path(config.output_dir)
    checkpoint_path = output_dir / CHECKPOINTS_FOLDER / key / "last.pt"
    resume_payload = _resume_payload(checkpoint_path, key, resume)
    run_id = resume_payload["run_id"] if resume_payload else f"{key}_{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
    record_path = output_dir / RUNS_FOLDER / f"{run_id}.json"

    method = build_method(config)
    dataset = load_dataset(
        config.dataset, data_root=config.resolved_data_root(), image_dir=config.image_dir,
        val_fraction=config.train.val_fraction, seed=config.seed,
    )
    for note in dataset.notes:
        _logger.info("Dataset %s: %s", dataset.name, note)
    require_images(dataset)

    seed_everything(config.seed)
    bundle = create_model(config.model, config.pretrained, device="cpu", progress=progress)
    model = bundle.model
    # The objects themselves are kept, not only their ids: peft re-registers some frozen
    # weights as new Parameter objects, and a freed id could be reused by a new LoRA weight.
    pretrained_parameters = list(model.parameters())
    splits_needed = ("train", "val", "test") if method.trains else ("test",)
    class_names = dataset.class_names if dataset.has_labels else None
    total_steps = _total_steps(dataset, config) if method.trains else 0
    method.apply(model, MethodContext(config.model, class_names, total_steps, config.seed, dataset.name))
    if method.trains:
        model.logit_scale.requires_grad_(config.train.learn_temperature and method.uses_temperature())
    method.check_trainable(model)
    model.to(device)
    method_params = sum(
        p.numel() for name, p in model.named_parameters() if p.requires_grad and name != "logit_scale"
    )
    trainable, total = count_parameters(model)

    encoded = {}
    for name in splits_needed:
        split = dataset.split(name)
        paths = [dataset.image_dir / image for image in split.images]
        images = _decode_with_progress(paths, bundle.image_size, f"decoding {name} images", progress)
        encoded[name] = encode_split(split, images, bundle.tokenizer)

    mean = torch.tensor(bundle.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(bundle.std, device=device).view(1, 3, 1, 1)
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "config_key": key,
        "status": "running",
        "method": config.method,
        "dataset": dataset.name,
        "seed": config.seed,
        "config": config_dict,
        "dataset_info": describe_dataset(dataset),
        "versions": versions(),
        "git_commit": git_commit(),
        "device": str(device),
        "world_size": context.world_size,
        "started_at": started_at,
        "params": {"trainable": trainable, "total": total, "method": method_params},
        "pretrained_checkpoint": bundle.checkpoint,
    }

    train_result = None
    try:
        if method.trains:
            trainer = Trainer(
                model, method, encoded["train"], encoded["val"], config.train, config.seed, device, mean, std,
                pretrained_parameters, checkpoint_path=checkpoint_path, progress=progress,
                checkpoint_extra={"run_id": run_id, "config_key": key},
            )
            train_result = trainer.fit(resume_from=resume_payload)
            method.load_trainable_state_dict(model, train_result.best_state)
        test_metrics, ranks = evaluate_split(
            model, method.encode_images, method.encode_texts, encoded["test"], mean, std, device,
            config.train.eval_batch_size, autocast_context(device, config.train.precision), progress,
        )
    except TrainingFailed as failure:
        record.update(status="failed", error={"reason": failure.reason, "epoch": failure.epoch, "step": failure.step})
        _finish(record, started, device, record_path)
        raise
    except RunInterrupted as interrupted:
        record.update(status="interrupted", error={"reason": f"stopped by {interrupted.signal_name}", "checkpoint": str(checkpoint_path)})
        _finish(record, started, device, record_path)
        raise

    # The caption-to-image map lets the report resample test images with their captions.
    ranks["caption_image"] = encoded["test"].caption_image.tolist()
    record.update(status="completed", metrics={"test": test_metrics}, ranks=ranks)
    record["test_split_note"] = next((note for note in dataset.notes if "Karpathy" in note), None)
    if train_result is not None:
        record["metrics"]["val_best"] = train_result.best_val_metrics
        record["train"] = {
            "best_epoch": train_result.best_epoch,
            "steps": train_result.steps,
            "resumed_from_epoch": train_result.resumed_from_epoch,
            "history": train_result.history,
        }
    _finish(record, started, device, record_path)
    if distributed.is_main_process():
        _remove_checkpoint(checkpoint_path)
        if weights_path is not None:
            from safetensors.torch import save_file

            save_file({name: tensor.contiguous() for name, tensor in model.state_dict().items()}, str(weights_path))
    return RunResult(record=record, record_path=record_path if distributed.is_main_process() else None)


def _remove_checkpoint(checkpoint_path: Path) -> None:
    """Delete a finished run's checkpoint and the folders it leaves empty."""
    checkpoint_path.unlink(missing_ok=True)
    for folder in (checkpoint_path.parent, checkpoint_path.parent.parent):
        try:
            folder.rmdir()
        except OSError:
            return  # not empty, because another run still has a checkpoint there


def _total_steps(dataset: RetrievalDataset, config: RunConfig) -> int:
    from rsitr_bench.train import steps_per_epoch

    return steps_per_epoch(dataset.split("train").num_images, config.train.batch_size) * config.train.epochs


def _decode_with_progress(paths: list[Path], size: int, description: str, progress: Progress) -> torch.Tensor:
    progress.start(description, len(paths))
    reported = 0

    def report(done: int, total: int) -> None:
        nonlocal reported
        progress.advance(done - reported)
        reported = done

    images = decode_images(paths, size, progress=report)
    progress.finish()
    return images


def _resume_payload(checkpoint_path: Path, key: str, resume: bool) -> dict[str, Any] | None:
    if not resume:
        return None
    if not checkpoint_path.is_file():
        _logger.warning("No checkpoint for %s at %s; starting from the beginning.", key, checkpoint_path)
        return None
    payload = load_checkpoint(checkpoint_path)
    if payload.get("config_key") != key:
        raise ConfigError(
            f"Checkpoint {checkpoint_path} belongs to run {payload.get('config_key')!r}, not {key!r}; "
            "delete it or resume with the settings it was made with."
        )
    return payload


def _finish(record: dict[str, Any], started: float, device: torch.device, record_path: Path) -> None:
    record["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record["wall_time_s"] = round(time.time() - started, 3)
    record["peak_memory"] = peak_memory_mb(device)
    if distributed.is_main_process():
        write_json_atomic(record_path, record)
