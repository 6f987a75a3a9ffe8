"""The one training loop every method runs in.

AdamW with two learning rates (modules the method adds, pretrained weights it trains),
linear warm-up then cosine decay, gradient clipping, bf16 autocast on CUDA, validation each
epoch, and the best epoch chosen by validation mR. Checkpoints at every epoch end, and on
SIGINT or SIGTERM, hold everything needed to continue with identical results on CPU.

Data order: each epoch draws its image permutation and one caption per image from a
generator seeded with (seed, epoch), so the order does not depend on what ran before and a
resumed run gets the same batches.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from methods.base import Batch, Method
from rsitr_bench import distributed
from rsitr_bench.config import TrainConfig
from rsitr_bench.errors import CheckpointError, TrainingFailed
from rsitr_bench.evaluate import EncodedSplit, evaluate_split, normalize_images, stage_split, take_rows
from rsitr_bench.progress import NullProgress, Progress

_logger = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1


class RunInterrupted(Exception):
    """Raised after a signal, once the checkpoint that lets the run resume is saved."""

    def __init__(self, signal_name: str, checkpoint: Path):
        super().__init__(f"stopped by {signal_name}; checkpoint saved to {checkpoint}")
        self.signal_name = signal_name
        self.checkpoint = checkpoint


@dataclass
class TrainResult:
    best_epoch: int
    best_val_metrics: dict[str, float] | None
    history: list[dict[str, Any]]
    best_state: dict[str, torch.Tensor]
    steps: int
    resumed_from_epoch: int | None = None


@dataclass
class _Position:
    epoch: int = 0
    """Epochs fully completed."""
    step_in_epoch: int = 0
    """Batches of the current epoch already trained (non-zero only after an interrupt)."""
    global_step: int = 0
    best_epoch: int = -1
    best_val_metrics: dict[str, float] | None = None
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    loss_sums: dict[str, float] = field(default_factory=dict)
    """Sums of the loss terms over the batches of the current epoch trained so far."""


def autocast_context(device: torch.device, precision: str) -> Callable[[], contextlib.AbstractContextManager]:
    """Return a factory of the autocast context for ``precision`` ('auto', 'fp32', 'bf16')."""
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if not use_bf16:
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def build_optimizer(
    model: nn.Module, pretrained_parameters: list[nn.Parameter], config: TrainConfig
) -> tuple[torch.optim.Optimizer, dict[str, int]]:
    """Group trainable parameters by learning rate (new vs. pretrained) and weight decay.

    ``pretrained_parameters`` are the model's parameters before the method changed it. The
    list keeps them alive, so their ids cannot be reused by parameters the method created.
    """
    pretrained_ids = {id(p) for p in pretrained_parameters}
    groups: dict[tuple[str, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        is_new = id(parameter) not in pretrained_ids or name == "logit_scale"
        decay = parameter.ndim >= 2 and "logit_scale" not in name and "embedding" not in name
        groups.setdefault(("new" if is_new else "pretrained", decay), []).append(parameter)

    param_groups = []
    counts = {"new": 0, "pretrained": 0}
    for (kind, decay), parameters in sorted(groups.items()):
        lr = config.lr if kind == "new" else config.lr_pretrained
        param_groups.append(
            {"params": parameters, "lr": lr, "weight_decay": config.weight_decay if decay else 0.0, "name": f"{kind}"}
        )
        counts[kind] += sum(p.numel() for p in parameters)
    if not param_groups:
        raise RuntimeError("no trainable parameters to optimise")
    return torch.optim.AdamW(param_groups, betas=(0.9, 0.98), eps=1e-6), counts


def warmup_cosine(total_steps: int, warmup_ratio: float) -> Callable[[int], float]:
    warmup = int(total_steps * warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def steps_per_epoch(num_images: int, batch_size: int) -> int:
    """Batches per epoch; a last batch of one pair is dropped, since InfoNCE needs negatives."""
    full, rest = divmod(num_images, batch_size)
    return full + (1 if rest >= 2 else 0)


def epoch_order(num_images: int, caption_table: torch.Tensor, caption_counts: torch.Tensor, seed: int, epoch: int):
    """Return (image order, chosen caption per image) for one epoch, from (seed, epoch) alone."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(num_images, generator=generator)
    pick = (torch.rand(num_images, generator=generator) * caption_counts).long()
    captions = caption_table.gather(1, pick.view(-1, 1)).squeeze(1)
    return order, captions


def caption_table(caption_image: torch.Tensor, num_images: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return a [num_images, max_captions] table of caption indices and the count per image."""
    counts = torch.bincount(caption_image, minlength=num_images)
    if (counts == 0).any():
        missing = int((counts == 0).sum())
        raise ValueError(f"{missing} training images have no caption")
    table = torch.zeros(num_images, int(counts.max()), dtype=torch.long)
    filled = torch.zeros(num_images, dtype=torch.long)
    for caption_index, image_index in enumerate(caption_image.tolist()):
        table[image_index, filled[image_index]] = caption_index
        filled[image_index] += 1
    return table, counts


def _rng_state() -> dict[str, Any]:
    numpy_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write a checkpoint atomically: to a temporary file, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any failure means the checkpoint cannot be used
        raise CheckpointError(
            f"Checkpoint {path} could not be loaded ({error}). Delete it to start the run from the beginning."
        ) from error
    if payload.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"Checkpoint {path} has version {payload.get('version')!r}, expected {CHECKPOINT_VERSION}.")
    return payload


class _SignalCatcher:
    """Record SIGINT and SIGTERM instead of dying, so the loop can save and stop between steps."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_SignalCatcher":
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        self.received = signal.Signals(signum).name
        _logger.warning("Received %s; stopping after the current step and saving a checkpoint.", self.received)

    def __exit__(self, *exc_info: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class Trainer:
    """Trains ``model`` with ``method`` and keeps the state of the best validation epoch."""

    def __init__(
        self,
        model: nn.Module,
        method: Method,
        train_split: EncodedSplit,
        val_split: EncodedSplit,
        config: TrainConfig,
        seed: int,
        device: torch.device,
        mean: torch.Tensor,
        std: torch.Tensor,
        pretrained_parameters: list[nn.Parameter],
        checkpoint_path: Path | None = None,
        progress: Progress | None = None,
        checkpoint_extra: dict[str, Any] | None = None,
    ):
        self.model = model
        self.method = method
        self.train_split = train_split
        self.val_split = val_split
        self.config = config
        self.seed = seed
        self.device = device
        self.mean = mean
        self.std = std
        self.checkpoint_path = checkpoint_path
        self.checkpoint_extra = checkpoint_extra or {}
        self.progress = progress or NullProgress()
        self.autocast = autocast_context(device, config.precision)
        self.context = distributed.current()
        # On CUDA the splits stay on the GPU when they fit, else in pinned memory.
        self.train_split = stage_split(train_split, device)
        self.val_split = stage_split(val_split, device)

        num_images = train_split.images.shape[0]
        self.steps_per_epoch = steps_per_epoch(num_images, config.batch_size)
        if self.steps_per_epoch == 0:
            raise ValueError(f"the train split has {num_images} image(s); at least 2 are needed for InfoNCE")
        self.total_steps = self.steps_per_epoch * config.epochs
        self.caption_table, self.caption_counts = caption_table(train_split.caption_image, num_images)

        self.optimizer, self.parameter_counts = build_optimizer(model, pretrained_parameters, config)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_cosine(self.total_steps, config.warmup_ratio)
        )
        self.step_module = distributed.wrap_for_training(_StepModule(model, method), device)
        if config.compile and device.type == "cuda":
            # NOTE: peft's LoRA on nn.MultiheadAttention builds a new parametrized class every
            # forward, so dynamo hits its recompile limit there and runs those frames eagerly
            # (seen with peft 0.21 and torch 2.14 on CPU). Other methods compile fully.
            self.step_module = torch.compile(self.step_module)
        elif config.compile:
            _logger.warning("train.compile is ignored on %s: the training step is compiled on CUDA only.", device)
        self.trainable = [p for p in model.parameters() if p.requires_grad]

    # ------------------------------------------------------------------------------------

    def fit(self, resume_from: dict[str, Any] | None = None) -> TrainResult:
        position = _Position()
        resumed_from = None
        self.method.on_train_start(self.model)
        if resume_from is not None:
            position = self._restore(resume_from)
            resumed_from = position.epoch
            _logger.info("Resuming at epoch %d, step %d of %d", position.epoch + 1, position.step_in_epoch, self.steps_per_epoch)

        with _SignalCatcher() as signals:
            while position.epoch < self.config.epochs:
                epoch = position.epoch
                losses = self._train_epoch(position, signals)
                val_metrics = self._validate(epoch)
                record = {"epoch": epoch + 1, "train_loss": losses, "val": val_metrics}
                position.history.append(record)
                if position.best_val_metrics is None or val_metrics["mR"] > position.best_val_metrics["mR"]:
                    position.best_epoch = epoch + 1
                    position.best_val_metrics = val_metrics
                    position.best_state = self.method.trainable_state_dict(self.model)
                _logger.info(
                    "Epoch %d/%d: loss %.4f, val mR %.2f (best %.2f at epoch %d)",
                    epoch + 1, self.config.epochs, losses.get("loss", float("nan")), val_metrics["mR"],
                    position.best_val_metrics["mR"], position.best_epoch,
                )
                position.epoch += 1
                position.step_in_epoch = 0
                self._save(position)
                if signals.received is not None and position.epoch < self.config.epochs:
                    raise RunInterrupted(signals.received, self.checkpoint_path or Path("(no checkpoint path)"))

        if not position.best_state:
            position.best_state = self.method.trainable_state_dict(self.model)
        return TrainResult(
            best_epoch=position.best_epoch,
            best_val_metrics=position.best_val_metrics,
            history=position.history,
            best_state=position.best_state,
            steps=position.global_step,
            resumed_from_epoch=resumed_from,
        )

    def _batches(self, epoch: int, start: int) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        num_images = self.train_split.images.shape[0]
        order, captions = epoch_order(num_images, self.caption_table, self.caption_counts, self.seed, epoch)
        for step in range(start, self.steps_per_epoch):
            indices = order[step * self.config.batch_size : (step + 1) * self.config.batch_size]
            indices = distributed.shard(indices)
            yield step, indices, captions[indices]

    def _train_epoch(self, position: _Position, signals: _SignalCatcher) -> dict[str, float]:
        epoch = position.epoch
        sums = position.loss_sums
        self.model.train()
        self.progress.start(f"epoch {epoch + 1}/{self.config.epochs}", self.steps_per_epoch)
        self.progress.advance(position.step_in_epoch)
        for step, image_indices, caption_indices in self._batches(epoch, position.step_in_epoch):
            terms = self._train_step(image_indices, caption_indices, epoch, step, position.global_step)
            position.global_step += 1
            position.step_in_epoch = step + 1
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + value
            self.progress.advance()
            if signals.received is not None and position.step_in_epoch < self.steps_per_epoch:
                self.progress.finish()
                self._save(position)
                raise RunInterrupted(signals.received, self.checkpoint_path or Path("(no checkpoint path)"))
        self.progress.finish()
        position.loss_sums = {}
        return {name: total / self.steps_per_epoch for name, total in sums.items()}

    def _train_step(self, image_indices: torch.Tensor, caption_indices: torch.Tensor, epoch: int, step: int, global_step: int) -> dict[str, float]:
        split = self.train_split
        images = normalize_images(take_rows(split.images, image_indices, self.device), self.mean, self.std)
        tokens = take_rows(split.tokens, caption_indices, self.device)
        labels = take_rows(split.labels, image_indices, self.device) if split.labels is not None else None
        batch = Batch(images=images, tokens=tokens, labels=labels)

        with self.autocast():
            output = self.step_module(batch)
            output = distributed.gather_output(output)
            batch_for_loss = distributed.gather_batch_labels(batch)
            terms = self.method.loss(self.model, batch_for_loss, output)
        loss = terms["loss"]

        self.optimizer.zero_grad(set_to_none=True)
        (loss * distributed.loss_scale()).backward()
        if global_step == 0:
            self._check_gradients()
        norm = None
        if self.config.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(self.trainable, self.config.grad_clip)

        # One device-to-host copy per step for the loss terms and the gradient norm, since each
        # .item() makes the CPU wait for the GPU. A non-finite loss still stops the run before
        # the optimizer step, after its backward has run on every process alike.
        values = [torch.as_tensor(value).detach().to(loss.device).float().reshape(()) for value in terms.values()]
        if norm is not None:
            values.append(norm.detach().float())
        host_values = torch.stack(values).tolist()
        logged = dict(zip(terms, host_values))
        if not math.isfinite(logged["loss"]):
            raise TrainingFailed(f"non-finite loss ({logged['loss']})", epoch + 1, step + 1)
        if norm is not None and not math.isfinite(host_values[-1]):
            raise TrainingFailed(f"non-finite gradient norm ({host_values[-1]})", epoch + 1, step + 1)
        self.optimizer.step()
        self.scheduler.step()
        self.method.on_step_end(self.model, global_step)
        return logged

    def _check_gradients(self) -> None:
        """Fail loudly if a trainable parameter is not connected to the loss."""
        disconnected = [name for name, p in self.model.named_parameters() if p.requires_grad and p.grad is None]
        if disconnected:
            first_names = ", ".join(disconnected[:8])
            raise RuntimeError(
                f"{len(disconnected)} trainable parameters received no gradient in the first step ({first_names}); "
                f"method {self.method.name!r} marks them trainable but they never reach the loss"
            )

    def _validate(self, epoch: int) -> dict[str, float]:
        metrics, _ = evaluate_split(
            self.model, self.method.encode_images, self.method.encode_texts, self.val_split, self.mean, self.std,
            self.device, self.config.eval_batch_size, self.autocast, self.progress,
        )
        return metrics

    # Checkpoints ---------------------------------------------------------------------------

    def _save(self, position: _Position) -> None:
        if self.checkpoint_path is None or not distributed.is_main_process():
            return
        payload = {
            "version": CHECKPOINT_VERSION,
            "position": {
                "epoch": position.epoch,
                "step_in_epoch": position.step_in_epoch,
                "global_step": position.global_step,
                "best_epoch": position.best_epoch,
                "loss_sums": position.loss_sums,
            },
            "best_val_metrics": position.best_val_metrics,
            "history": position.history,
            "best_state": position.best_state,
            "trainable_state": self.method.trainable_state_dict(self.model),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": _rng_state(),
            **self.checkpoint_extra,
        }
        save_checkpoint(self.checkpoint_path, payload)

    def _restore(self, payload: dict[str, Any]) -> _Position:
        self.method.load_trainable_state_dict(self.model, payload["trainable_state"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        _set_rng_state(payload["rng"])
        saved = payload["position"]
        return _Position(
            epoch=saved["epoch"],
            step_in_epoch=saved["step_in_epoch"],
            global_step=saved["global_step"],
            best_epoch=saved["best_epoch"],
            loss_sums=saved["loss_sums"],
            best_val_metrics=payload["best_val_metrics"],
            best_state=payload["best_state"],
            history=payload["history"],
        )


class _StepModule(nn.Module):
    """Module whose forward is ``method.forward``, so that DistributedDataParallel wraps the step."""

    def __init__(self, model: nn.Module, method: Method):
        super().__init__()
        self.model = model
        self.method = method

    def forward(self, batch: Batch):
        return self.method.forward(self.model, batch)
