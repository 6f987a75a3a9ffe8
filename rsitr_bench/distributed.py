"""Multi-process training under torchrun (PyTorch DDP).

Under ``torchrun --nproc-per-node N -m rsitr_bench run ...`` every process takes an equal
contiguous share of each global batch, the InfoNCE loss is computed over features gathered
from all processes (so it matches a single-process run with the same global batch), and
gradients are averaged by DistributedDataParallel. Evaluation splits the images and captions
into contiguous shares and gathers the embeddings in their original order, so no sample is
duplicated, unlike a padded DistributedSampler. Without torchrun every function here is the
identity.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace

import torch
import torch.distributed as dist
from torch import nn

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


_context = Context()


def current() -> Context:
    return _context


def is_main_process() -> bool:
    return _context.rank == 0


def setup(device: str) -> tuple[Context, str]:
    """Join the process group that torchrun describes in the environment, if any.

    Returns the context and the device this process should use.
    """
    global _context
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return _context, device
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    _context = Context(rank=rank, world_size=world_size, local_rank=local_rank)
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    elif device == "auto":
        device = "cpu"
    _logger.info("Process %d of %d on %s", rank, world_size, device)
    return _context, device


def teardown() -> None:
    global _context
    if dist.is_initialized():
        dist.destroy_process_group()
    _context = Context()


def shard(indices: torch.Tensor) -> torch.Tensor:
    """Return this process's contiguous share of a global batch (sizes differ by at most one)."""
    if not _context.enabled:
        return indices
    return torch.tensor_split(indices, _context.world_size)[_context.rank]


def shard_bounds(length: int) -> tuple[int, int]:
    """Return [start, end) of this process's contiguous share of ``length`` rows."""
    if not _context.enabled:
        return 0, length
    sizes = [len(part) for part in torch.tensor_split(torch.arange(length), _context.world_size)]
    start = sum(sizes[: _context.rank])
    return start, start + sizes[_context.rank]


def gather_rows(local: torch.Tensor, with_grad: bool = False) -> torch.Tensor:
    """Concatenate every process's rows in rank order; shares may differ in length by one."""
    if not _context.enabled:
        return local
    size = torch.tensor([local.shape[0]], device=local.device)
    sizes = [torch.zeros_like(size) for _ in range(_context.world_size)]
    dist.all_gather(sizes, size)
    sizes = [int(s.item()) for s in sizes]
    largest = max(sizes)
    padded = local
    if local.shape[0] < largest:
        padding = local.new_zeros((largest - local.shape[0], *local.shape[1:]))
        padded = torch.cat([local, padding])
    if with_grad:
        from torch.distributed.nn.functional import all_gather

        parts = all_gather(padded)
    else:
        parts = [torch.empty_like(padded) for _ in range(_context.world_size)]
        dist.all_gather(parts, padded)
    return torch.cat([part[:n] for part, n in zip(parts, sizes)])


def gather_output(output):
    """Gather image and text features from all processes, keeping the autograd graph."""
    if not _context.enabled:
        return output
    return replace(
        output,
        image_features=gather_rows(output.image_features, with_grad=True),
        text_features=gather_rows(output.text_features, with_grad=True),
        extras={name: gather_rows(value, with_grad=True) for name, value in output.extras.items()},
    )


def gather_batch_labels(batch):
    if not _context.enabled or batch.labels is None:
        return batch
    return replace(batch, labels=gather_rows(batch.labels))


def loss_scale() -> float:
    """Factor on the loss before backward.

    Every process computes the same loss over the gathered batch. The backward of the
    autograd all-gather sums the gradients from all processes, which multiplies each local
    feature's gradient by the world size, and DDP then divides by it when it averages, so
    the result equals the single-process gradient and no extra factor is needed.
    """
    return 1.0


def wrap_for_training(module: nn.Module, device: torch.device) -> nn.Module:
    if not _context.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids)
