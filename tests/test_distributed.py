"""Multi-process training and evaluation with the gloo backend on CPU.

Every test starts real processes that meet over 127.0.0.1: ``torch.multiprocessing.spawn``
for the unit tests, ``python -m torch.distributed.run`` for the end-to-end run. Children run
with one intra-op thread, so two processes fit on two cores.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from rsitr_bench.metrics import METRIC_KEYS
from synthetic import write_dataset

WORLD_SIZE = 2
TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _loopback_environment() -> dict[str, str]:
    """Environment that keeps gloo on the loopback interface and each child on one thread."""
    environment = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    if Path("/sys/class/net/lo").exists():
        environment["GLOO_SOCKET_IFNAME"] = "lo"
    return environment


def _join_group(rank: int, world_size: int, port: int) -> None:
    """Set the variables torchrun would set and join through ``distributed.setup``."""
    os.environ.update(_loopback_environment())
    os.environ.update(
        {"MASTER_PORT": str(port), "WORLD_SIZE": str(world_size), "RANK": str(rank), "LOCAL_RANK": str(rank)}
    )
    torch.set_num_threads(1)
    from rsitr_bench import distributed

    context, device = distributed.setup("cpu")
    assert (context.rank, context.world_size, device) == (rank, world_size, "cpu")


# --- gather_rows and encode_share ---------------------------------------------------------


def _rows(start: int, count: int) -> torch.Tensor:
    """Rows whose values name their global index, so order mistakes show."""
    index = torch.arange(start, start + count, dtype=torch.float64)
    return torch.stack([index, 10 * index, -index], dim=1)


def _gather_worker(rank: int, world_size: int, port: int) -> None:
    _join_group(rank, world_size, port)
    from rsitr_bench import distributed
    from rsitr_bench.evaluate import encode_share

    try:
        # Uneven shares of 5 rows over 2 processes: 3 and 2, as shard() splits them.
        start, end = distributed.shard_bounds(5)
        assert torch.equal(distributed.shard(torch.arange(5)), torch.arange(start, end))
        gathered = distributed.gather_rows(_rows(start, end - start))
        assert torch.equal(gathered, _rows(0, 5)), gathered

        # The given sizes skip the size exchange and must match it.
        sizes = distributed.share_sizes(5, world_size)
        assert torch.equal(distributed.gather_rows(_rows(start, end - start), sizes=sizes), _rows(0, 5))

        # One row over two processes leaves rank 1 with an empty share.
        start, end = distributed.shard_bounds(1)
        assert end - start == (1 if rank == 0 else 0)
        assert torch.equal(distributed.gather_rows(_rows(start, end - start)), _rows(0, 1))

        # Integer labels, as gather_batch_labels sends them.
        labels = torch.arange(7)[slice(*distributed.shard_bounds(7))]
        assert torch.equal(distributed.gather_rows(labels), torch.arange(7))

        # The autograd gather: every process computes the same loss from the gathered rows, so
        # each local row's gradient is world_size times its single-process gradient.
        start, end = distributed.shard_bounds(5)
        local = _rows(start, end - start).requires_grad_(True)
        weights = torch.linspace(-1.0, 2.0, 15, dtype=torch.float64).view(5, 3)
        (distributed.gather_rows(local, with_grad=True) * weights).sum().backward()
        assert torch.equal(local.grad, world_size * weights[start:end]), local.grad

        # gather_output gathers per-sample extras and leaves 0-dimensional ones alone.
        from methods.base import StepOutput

        output = StepOutput(
            image_features=local, text_features=local * 2, logit_scale=torch.tensor(5.0),
            extras={"per_sample": local[:, :1], "scalar": torch.tensor(3.0)},
        )
        gathered_output = distributed.gather_output(output)
        assert torch.equal(gathered_output.text_features, _rows(0, 5) * 2)
        assert torch.equal(gathered_output.extras["per_sample"], _rows(0, 5)[:, :1])
        assert gathered_output.extras["scalar"].item() == 3.0
        assert gathered_output.logit_scale.item() == 5.0

        # encode_share keeps the original order, also for a share that is empty.
        def encode(batch: torch.Tensor) -> torch.Tensor:
            return batch.float() * 2

        for count in (5, 1):
            inputs = torch.arange(count * 2).view(count, 2)
            assert torch.equal(encode_share(encode, inputs, 2, torch.device("cpu")), inputs.float() * 2)
    finally:
        distributed.teardown()


def test_gather_rows_uneven_shares() -> None:
    mp.spawn(_gather_worker, args=(WORLD_SIZE, _free_port()), nprocs=WORLD_SIZE, join=True)


# --- gradients of one DDP step against one single-process step ---------------------------

GLOBAL_BATCH = 7  # uneven shares: 4 and 3


def _one_step_gradients(method_name: str) -> tuple[dict[str, torch.Tensor], float]:
    """Train one step of ``method_name`` on rsitr-tiny over a batch of GLOBAL_BATCH synthetic pairs.

    Returns the gradients after the step (clipping off, so they are the raw gradients) and the
    step's loss. Under a process group this is the DDP step with gathered features.
    """
    import methods
    from methods.base import MethodContext
    from rsitr_bench.evaluate import EncodedSplit
    from rsitr_bench.models import create_model
    from rsitr_bench.run import make_run_config
    from rsitr_bench.train import Trainer

    config = make_run_config(
        method_name, "synthetic", {"device": "cpu"},
        {"epochs": 1, "batch_size": GLOBAL_BATCH, "grad_clip": 0.0, "warmup_ratio": 0.0, "precision": "fp32"},
    )
    torch.manual_seed(0)
    bundle = create_model("rsitr-tiny")
    model = bundle.model
    pretrained = list(model.parameters())
    method = methods.create_method(method_name)
    method.apply(model, MethodContext("rsitr-tiny", None, 0, 0))
    model.logit_scale.requires_grad_(config.train.learn_temperature)

    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (GLOBAL_BATCH, 3, 64, 64), dtype=torch.uint8, generator=generator)
    tokens = torch.randint(1, 49000, (GLOBAL_BATCH, 32), generator=generator)
    tokens[:, -1] = 49407
    labels = torch.tensor([0, 1, 2, 0, 1, -1, 2])
    split = EncodedSplit(images, tokens, torch.arange(GLOBAL_BATCH), labels)
    mean = torch.tensor(bundle.mean).view(1, 3, 1, 1)
    std = torch.tensor(bundle.std).view(1, 3, 1, 1)
    trainer = Trainer(model, method, split, split, config.train, 0, torch.device("cpu"), mean, std, pretrained)
    result = trainer.fit()
    gradients = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    return gradients, result.history[0]["train_loss"]["loss"]


GRADIENT_METHODS = ("full", "lora")


def _gradient_worker(rank: int, world_size: int, port: int, output: str) -> None:
    _join_group(rank, world_size, port)
    from rsitr_bench import distributed

    try:
        for method_name in GRADIENT_METHODS:
            gradients, loss = _one_step_gradients(method_name)
            torch.save({"gradients": gradients, "loss": loss}, Path(output) / f"{method_name}_rank{rank}.pt")
    finally:
        distributed.teardown()


def test_ddp_gradients_match_single_process(tmp_path: Path) -> None:
    mp.spawn(_gradient_worker, args=(WORLD_SIZE, _free_port(), str(tmp_path)), nprocs=WORLD_SIZE, join=True)
    for method_name in GRADIENT_METHODS:
        ranks = [torch.load(tmp_path / f"{method_name}_rank{rank}.pt") for rank in range(WORLD_SIZE)]
        single_gradients, single_loss = _one_step_gradients(method_name)

        assert ranks[0]["loss"] == pytest.approx(single_loss, rel=1e-6), method_name
        assert ranks[1]["loss"] == ranks[0]["loss"], method_name
        assert set(ranks[0]["gradients"]) == set(single_gradients), method_name
        assert "logit_scale" in single_gradients, method_name
        for name, single in single_gradients.items():
            # DDP leaves the same averaged gradient on every process.
            assert torch.equal(ranks[0]["gradients"][name], ranks[1]["gradients"][name]), (method_name, name)
            # Float sums run in another order over two processes, so the gradients are equal
            # within rounding relative to each tensor's largest entry.
            tolerance = 1e-5 * single.abs().max().item() + 1e-12
            torch.testing.assert_close(
                ranks[0]["gradients"][name], single, rtol=1e-4, atol=tolerance,
                msg=lambda text, name=name: f"{method_name} {name}: {text}",
            )
        scale = max(g.abs().max().item() for g in single_gradients.values())
        assert scale > 1e-4, f"{method_name}: the gradients are too small for the comparison to mean anything"


# --- torchrun end to end -----------------------------------------------------------------


def _run_command(arguments: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess:
    completed = subprocess.run(
        [sys.executable, *arguments], capture_output=True, text=True, env=environment, timeout=TIMEOUT_S
    )
    assert completed.returncode == 0, f"{arguments[:4]} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    return completed


def _only_record(output_dir: Path) -> dict:
    records = sorted((output_dir / "runs").glob("*.json"))
    assert len(records) == 1, records
    return json.loads(records[0].read_text())


def test_torchrun_matches_single_process(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "data")
    environment = {**os.environ, **_loopback_environment()}
    run_arguments = [
        "-m", "rsitr_bench", "run", "--method", "lora", "--dataset", str(dataset), "--epochs", "2",
        "--batch-size", "8", "--device", "cpu",
    ]
    distributed_run = _run_command(
        [
            "-m", "torch.distributed.run", "--nproc-per-node", str(WORLD_SIZE), "--master-addr", "127.0.0.1",
            "--master-port", str(_free_port()), *run_arguments, "--output-dir", str(tmp_path / "ddp"),
        ],
        environment,
    )
    _run_command([*run_arguments, "--output-dir", str(tmp_path / "single")], environment)

    ddp = _only_record(tmp_path / "ddp")
    single = _only_record(tmp_path / "single")
    assert ddp["world_size"] == WORLD_SIZE
    assert single["world_size"] == 1
    assert ddp["status"] == "completed"
    assert not list((tmp_path / "ddp" / "checkpoints").rglob("*.pt"))

    # Only rank 0 prints the table and logs at INFO.
    assert distributed_run.stdout.count("Run record:") == 1
    assert distributed_run.stderr.count("Epoch 2/2") == 1

    # Same global batch, data order and initial weights: the runs differ only in the order
    # of float sums (all-reduce, gathered features), so ranks may flip on near-ties.
    for direction in ("i2t", "t2i"):
        ddp_ranks, single_ranks = ddp["ranks"][direction], single["ranks"][direction]
        assert len(ddp_ranks) == len(single_ranks)
        equal = sum(a == b for a, b in zip(ddp_ranks, single_ranks))
        assert equal >= 0.9 * len(single_ranks), (direction, ddp_ranks, single_ranks)
        one_query = 100.0 / len(single_ranks)
        for key in METRIC_KEYS:
            if key.startswith(direction):
                assert abs(ddp["metrics"]["test"][key] - single["metrics"]["test"][key]) <= 2 * one_query + 1e-9, key
    for ddp_epoch, single_epoch in zip(ddp["train"]["history"], single["train"]["history"]):
        assert ddp_epoch["train_loss"]["loss"] == pytest.approx(single_epoch["train_loss"]["loss"], rel=1e-5)
