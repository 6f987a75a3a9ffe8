"""Multi-process training under torchrun (PyTorch DDP).

Under ``torchrun --nproc-per-node N -m rsitr_bench run ...`` every process takes a
contiguous share of each global batch, and the shares differ in size by at most one. The
InfoNCE loss is computed over features gathered from all processes, so it matches a
single-process run with the same global batch. DistributedDataParallel averages gradients.
Evaluation splits the images and captions into contiguous shares and gathers the embeddings
in their original order, so no sample is duplicated, unlike a padded DistributedSampler.
Without torchrun the shard and gather functions return their input unchanged.

Collective order: every process must call the collectives below in the same order, so every
process trains, validates and evaluates. Only the main process writes files, and nothing it
does alone may call a collective.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, TypeVar

import torch
import torch.distributed as dist
from torch import nn

_logger = logging.getLogger(__name__)

QUIET_LOGGERS = ("rsitr_bench", "methods")
"""Loggers set to WARNING on every process but the main one, so each message appears once."""


@dataclass(frozen=True)
class Context:
    """This process's global and local rank and the world size. Without torchrun, world_size is 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


_context = Context()
_single_process_depth = 0
T = TypeVar("T")


def current() -> Context:
    return _context


def is_main_process() -> bool:
    return _context.rank == 0


def setup(device: str) -> tuple[Context, str]:
    """Join the process group that torchrun describes in the environment, if any.

    Uses NCCL for CUDA devices and gloo otherwise. Processes other than rank 0 set the
    package loggers to WARNING. Returns the context and the device this process should use:
    ``cuda:<LOCAL_RANK>`` for CUDA, so ``--device cuda:N`` is not meant for torchrun.
    """
    global _context
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1 or _single_process_depth:
        return _context, device
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(
                f"LOCAL_RANK {local_rank} has no GPU: {torch.cuda.device_count()} are visible. "
                "Start torchrun with --nproc-per-node at most the number of GPUs, or use --device cpu."
            )
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    elif device == "auto":
        device = "cpu"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        atexit.register(teardown)
    _context = Context(rank=rank, world_size=world_size, local_rank=local_rank)
    if rank != 0:
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    _logger.info("Process %d of %d on %s", rank, world_size, device)
    return _context, device


@contextlib.contextmanager
def single_process() -> Iterator[None]:
    """Run the enclosed code as if there were no other process, for work that only rank 0 does."""
    global _context, _single_process_depth
    saved = _context
    _context = Context()
    _single_process_depth += 1
    try:
        yield
    finally:
        _single_process_depth -= 1
        _context = saved


def run_on_main_process_first(work: Callable[[], T]) -> T:
    """Run ``work`` alone on rank 0, then on the other ranks once rank 0 has finished.

    Meant for work whose result rank 0 caches, such as generated data or weights, so that
    the other ranks find it in the cache. Without torchrun it runs ``work`` once.
    """
    if not _context.enabled:
        return work()
    if _context.rank == 0:
        with single_process():
            result = work()
        dist.barrier()
        return result
    dist.barrier()
    with single_process():
        return work()


def teardown() -> None:
    """Leave the process group and reset the context. Calling it again does nothing harmful."""
    global _context
    if dist.is_initialized():
        dist.destroy_process_group()
    _context = Context()


def shard(indices: torch.Tensor) -> torch.Tensor:
    """Return this process's contiguous share of a global batch (sizes differ by at most one)."""
    if not _context.enabled:
        return indices
    return torch.tensor_split(indices, _context.world_size)[_context.rank]


def share_sizes(length: int, world_size: int) -> list[int]:
    """Return the row count of each process's share of ``length`` rows, as ``shard`` splits them."""
    base, extra = divmod(length, world_size)
    return [base + (1 if rank < extra else 0) for rank in range(world_size)]


def shard_bounds(length: int) -> tuple[int, int]:
    """Return [start, end) of this process's contiguous share of ``length`` rows."""
    if not _context.enabled:
        return 0, length
    sizes = share_sizes(length, _context.world_size)
    start = sum(sizes[: _context.rank])
    return start, start + sizes[_context.rank]


def _exchange_sizes(rows: int, device: torch.device) -> list[int]:
    """Return every process's row count, in rank order (one small all-gather)."""
    size = torch.tensor([rows], dtype=torch.long, device=device)
    sizes = [torch.zeros_like(size) for _ in range(_context.world_size)]
    dist.all_gather(sizes, size)
    return [int(value) for value in torch.cat(sizes).tolist()]


class _GatherRows(torch.autograd.Function):
    """All-gather along dim 0 whose backward returns this process's rows of the summed gradient.

    Every process computes the same loss from the gathered tensor, so the gradient of the
    local rows is the sum over processes of each one's gradient for those rows. The backward
    all-reduces the full gradient and keeps this process's rows. That is ``world_size`` times
    the single-process gradient, which DDP's averaging divides out again (see ``loss_scale``).
    """

    @staticmethod
    def forward(ctx: Any, local: torch.Tensor, sizes: list[int]) -> torch.Tensor:
        ctx.sizes = sizes
        return _gather_padded(local, sizes)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        grad = grad_output.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = sum(ctx.sizes[: _context.rank])
        return grad[start : start + ctx.sizes[_context.rank]], None


def _gather_padded(local: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """All-gather rows of differing counts: pad every share to the largest, then trim."""
    largest = max(sizes)
    padded = local.contiguous()
    if local.shape[0] < largest:
        padding = local.new_zeros((largest - local.shape[0], *local.shape[1:]))
        padded = torch.cat([padded, padding])
    parts = [torch.empty_like(padded) for _ in range(_context.world_size)]
    dist.all_gather(parts, padded)
    return torch.cat([part[:count] for part, count in zip(parts, sizes)])


def gather_rows(local: torch.Tensor, with_grad: bool = False, sizes: list[int] | None = None) -> torch.Tensor:
    """Concatenate every process's rows in rank order. The shares may differ in length.

    ``sizes`` (rows per process, in rank order) skips the all-gather that exchanges them.
    With ``with_grad`` the result stays in the autograd graph, see ``_GatherRows``.
    """
    if not _context.enabled:
        return local
    if local.ndim == 0:
        raise ValueError("gather_rows needs a tensor with a row dimension, got a 0-dimensional tensor")
    if sizes is None:
        sizes = _exchange_sizes(local.shape[0], local.device)
    if len(sizes) != _context.world_size or sizes[_context.rank] != local.shape[0]:
        raise ValueError(
            f"sizes {sizes} do not match world size {_context.world_size} and this process's "
            f"{local.shape[0]} rows at rank {_context.rank}"
        )
    if with_grad and local.requires_grad:
        return _GatherRows.apply(local, list(sizes))
    return _gather_padded(local, sizes)


def gather_output(output: Any) -> Any:
    """Gather the features of a ``StepOutput`` from all processes, keeping the autograd graph.

    ``image_features``, ``text_features`` and every extra with a row dimension are per-sample
    and gathered in rank order. 0-dimensional extras and ``logit_scale`` are the same on every
    process and stay as they are.
    """
    if not _context.enabled:
        return output
    sizes = _exchange_sizes(output.image_features.shape[0], output.image_features.device)

    def gather(value: torch.Tensor) -> torch.Tensor:
        return value if value.ndim == 0 else gather_rows(value, with_grad=True, sizes=sizes)

    return replace(
        output,
        image_features=gather(output.image_features),
        text_features=gather(output.text_features),
        extras={name: gather(value) for name, value in output.extras.items()},
    )


def gather_batch_labels(batch: Any) -> Any:
    """Return ``batch`` with the labels of all processes, for losses over the gathered features."""
    if not _context.enabled or batch.labels is None:
        return batch
    return replace(batch, labels=gather_rows(batch.labels))


def loss_scale() -> float:
    """Return the factor on the loss before backward, which is 1.

    Every process computes the same loss over the gathered batch. The backward of the
    gather (``_GatherRows``) sums the gradients from all processes, which multiplies each
    local feature's gradient by the world size. DDP divides by the world size when it
    averages, so the result equals the single-process gradient without an extra factor.
    Parameters that reach the loss without passing through the gather, such as the logit
    scale, get the full single-process gradient on every process, and the average keeps it.
    ``tests/test_distributed.py`` checks this against a single-process step.
    """
    return 1.0


def wrap_for_training(module: nn.Module, device: torch.device) -> nn.Module:
    """Wrap ``module`` in DistributedDataParallel under torchrun, or return it unchanged without torchrun."""
    if not _context.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    # Gradients as views of DDP's buckets save one copy of every trainable gradient.
    return DistributedDataParallel(module, device_ids=device_ids, gradient_as_bucket_view=True)

