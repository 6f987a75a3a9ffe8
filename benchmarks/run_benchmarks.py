#!/usr/bin/env python
"""Benchmarks of rsitr-bench, written to BENCHMARKS.md.

Run from the repository root, in the project's virtual environment:

    python benchmarks/run_benchmarks.py [--quick] [--device cpu|cuda] [--model rsitr-tiny]

Sections:

1. Training throughput of the harness loop (``rsitr_bench.train.Trainer``, validation not
   counted) against a minimal PyTorch loop written here, for the same model, batch,
   optimizer groups, precision and method. The two loops run interleaved, and the ratio is
   the median of the per-repeat ratios.
2. Evaluation of an RSICD-sized test set (1,093 images, 5,465 captions, synthetic): encoding
   plus ranking, and ranking alone (``retrieval_metrics`` on a random similarity matrix).
3. Image loading: a first ``decode_images`` call over real and generated image files, then
   a second one served from the decode cache, with ``decode_count`` before and after.
4. Peak memory per method, measured in one child process per method.
5. On CUDA only: ViT-B-32 at batch 128 with bf16 autocast, optionally torch.compile, with an
   MFU estimate.

All data are synthetic except the optional real image folder. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

import methods  # noqa: E402
from methods.base import Batch, Method, MethodContext  # noqa: E402
from rsitr_bench.data import decode_count, decode_images  # noqa: E402
from rsitr_bench.evaluate import EncodedSplit, evaluate_split  # noqa: E402
from rsitr_bench.metrics import retrieval_metrics  # noqa: E402
from rsitr_bench.models import create_model  # noqa: E402
from rsitr_bench.records import versions  # noqa: E402
from rsitr_bench.run import make_run_config  # noqa: E402
from rsitr_bench.train import Trainer, _Position, autocast_context  # noqa: E402

TRAIN_RATIO_TARGET = 0.95
RANKING_TARGET_S = 1.0
RSICD_TEST_IMAGES = 1093
RSICD_TEST_CAPTIONS = 5465

# Dense (no sparsity) bf16 tensor-core peak of each GPU, in FLOP/s, from NVIDIA's published
# specification sheets. These are estimates: clocks, power limits and the board variant
# (SXM or PCIe) change the real peak. Keys are matched as substrings of the device name, so
# longer, more specific keys come first.
PEAK_BF16_FLOPS = {
    "GH200": 989e12,
    "H200": 989e12,
    "H100 PCIe": 756e12,
    "H100": 989e12,
    "B200": 2250e12,
    "A100": 312e12,
    "A10G": 70e12,
    "A10": 125e12,
    "L40S": 362e12,
    "L40": 181e12,
    "L4": 121e12,
    "RTX 4090": 165e12,
    "RTX 3090": 71e12,
    "A6000": 155e12,
}


# --- helpers -----------------------------------------------------------------------------


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def synthetic_split(
    num_images: int, captions_per_image: int, image_size: int, context_length: int, seed: int
) -> EncodedSplit:
    """Return random uint8 images and random token ids (each caption ends with an EOT token)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (num_images, 3, image_size, image_size), dtype=torch.uint8, generator=generator)
    num_captions = num_images * captions_per_image
    tokens = torch.randint(1, 49000, (num_captions, context_length), generator=generator)
    tokens[:, -1] = 49407  # open_clip pools the text at the largest token id, its EOT token
    caption_image = torch.arange(num_images).repeat_interleave(captions_per_image)
    return EncodedSplit(images=images, tokens=tokens, caption_image=caption_image)


@dataclass
class Setup:
    """A model with a method applied, and everything a training loop needs besides data."""

    model: nn.Module
    method: Method
    config: Any
    pretrained_parameters: list[nn.Parameter]
    mean: torch.Tensor
    std: torch.Tensor
    image_size: int
    context_length: int


def build_setup(
    model_name: str, method_name: str, batch_size: int, device: torch.device, precision: str, compile_model: bool = False,
    seed: int = 0,
) -> Setup:
    """Create a randomly initialised model, apply the method as ``execute_run`` does, move it to ``device``."""
    train_values = {"batch_size": batch_size, "epochs": 1000, "precision": precision, "compile": compile_model}
    run_config = make_run_config(method_name, "synthetic", {"model": model_name, "seed": seed}, train_values)
    method_class, _ = methods.get_method_class(method_name)
    method = methods.create_method(method_name, method_class.config_class())
    torch.manual_seed(seed)
    bundle = create_model(model_name, None, device="cpu")
    model = bundle.model
    pretrained_parameters = list(model.parameters())
    method.apply(model, MethodContext(model_name, None, 0, seed))
    model.logit_scale.requires_grad_(run_config.train.learn_temperature)
    method.check_trainable(model)
    model.to(device)
    mean = torch.tensor(bundle.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(bundle.std, device=device).view(1, 3, 1, 1)
    context_length = int(getattr(model, "context_length", 77))
    return Setup(model, method, run_config.train, pretrained_parameters, mean, std, bundle.image_size, context_length)


class HarnessLoop:
    """The harness's training loop: ``Trainer._train_epoch``, without validation or checkpoints."""

    name = "harness"

    def __init__(self, setup: Setup, split: EncodedSplit, device: torch.device):
        val_split = EncodedSplit(split.images[:2], split.tokens[:2], torch.arange(2))
        self.trainer = Trainer(
            setup.model, setup.method, split, val_split, setup.config, 0, device, setup.mean, setup.std,
            setup.pretrained_parameters,
        )
        setup.method.on_train_start(setup.model)
        self.epoch = 0
        self.samples_per_epoch = self.trainer.steps_per_epoch * setup.config.batch_size
        self.device = device

    def run_epoch(self) -> tuple[float, float]:
        """Train one epoch and return its (wall, CPU) time in seconds."""
        position = _Position(epoch=self.epoch)
        no_signal = SimpleNamespace(received=None)
        synchronize(self.device)
        start, cpu_start = time.perf_counter(), time.process_time()
        self.trainer._train_epoch(position, no_signal)
        synchronize(self.device)
        self.epoch += 1
        return time.perf_counter() - start, time.process_time() - cpu_start


class PlainLoop:
    """A minimal PyTorch training loop with the harness's optimizer groups and LR schedule."""

    name = "plain"

    def __init__(self, setup: Setup, split: EncodedSplit, device: torch.device):
        self.setup = setup
        self.device = device
        config = setup.config
        self.batch_size = config.batch_size
        self.images = split.images.to(device)
        self.tokens = split.tokens.to(device)
        self.steps = split.images.shape[0] // self.batch_size
        self.samples_per_epoch = self.steps * self.batch_size

        pretrained_ids = {id(p) for p in setup.pretrained_parameters}
        groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
        for name, parameter in setup.model.named_parameters():
            if parameter.requires_grad:
                is_new = id(parameter) not in pretrained_ids or name == "logit_scale"
                decay = parameter.ndim >= 2 and "logit_scale" not in name and "embedding" not in name
                groups.setdefault((is_new, decay), []).append(parameter)
        self.parameters = [p for parameters in groups.values() for p in parameters]

        self.optimizer = torch.optim.AdamW(
            [
                {
                    "params": parameters,
                    "lr": config.lr if is_new else config.lr_pretrained,
                    "weight_decay": config.weight_decay if decay else 0.0,
                }
                for (is_new, decay), parameters in groups.items()
            ],
            betas=(0.9, 0.98),
            eps=1e-6,
        )
        # Linear warm-up, then cosine decay, over as many steps as the harness plans.
        total = max(1, self.steps * config.epochs)
        warmup = int(total * config.warmup_ratio)

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)

        use_bf16 = config.precision == "bf16" or (config.precision == "auto" and device.type == "cuda")
        self.autocast = (
            (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if use_bf16 else contextlib.nullcontext
        )
        self.generator = torch.Generator().manual_seed(1)
        self.global_step = 0

    def run_epoch(self) -> tuple[float, float]:
        """Train one epoch and return its (wall, CPU) time in seconds."""
        setup, model, method = self.setup, self.setup.model, self.setup.method
        model.train()
        synchronize(self.device)
        start, cpu_start = time.perf_counter(), time.process_time()
        order = torch.randperm(self.images.shape[0], generator=self.generator).to(self.device)
        for step in range(self.steps):
            indices = order[step * self.batch_size : (step + 1) * self.batch_size]
            images = (self.images[indices].float().div_(255.0) - setup.mean) / setup.std
            batch = Batch(images=images, tokens=self.tokens[indices])
            with self.autocast():
                output = method.forward(model, batch)
                loss = method.loss(model, batch, output)["loss"]
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if setup.config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.parameters, setup.config.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            method.on_step_end(model, self.global_step)
            self.global_step += 1
        synchronize(self.device)
        return time.perf_counter() - start, time.process_time() - cpu_start


def train_step_flops(setup: Setup, split: EncodedSplit, device: torch.device) -> float:
    """Count the FLOPs of one forward and backward pass per sample with FlopCounterMode.

    Counts matrix multiplications and attention, the operations that dominate a transformer,
    and leaves out elementwise work and the optimizer.
    """
    from torch.utils.flop_counter import FlopCounterMode

    batch_size = setup.config.batch_size
    images = (split.images[:batch_size].to(device).float() / 255.0 - setup.mean) / setup.std
    batch = Batch(images=images, tokens=split.tokens[:batch_size].to(device))
    autocast = autocast_context(device, setup.config.precision)
    counter = FlopCounterMode(display=False)
    with counter:
        with autocast():
            output = setup.method.forward(setup.model, batch)
            loss = setup.method.loss(setup.model, batch, output)["loss"]
        loss.backward()
    setup.model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch_size


# --- 1. training throughput --------------------------------------------------------------


@dataclass
class TrainComparison:
    method: str
    model: str
    batch_size: int
    steps_per_epoch: int
    repeats: int
    harness_samples_per_s: list[float] = field(default_factory=list)
    plain_samples_per_s: list[float] = field(default_factory=list)
    harness_samples_per_cpu_s: list[float] = field(default_factory=list)
    plain_samples_per_cpu_s: list[float] = field(default_factory=list)
    flops_per_sample: float | None = None

    @property
    def ratios(self) -> list[float]:
        """Harness over plain samples per wall-clock second, one per repeat."""
        return [h / p for h, p in zip(self.harness_samples_per_s, self.plain_samples_per_s)]

    @property
    def median_ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def median_cpu_ratio(self) -> float:
        """Median ratio of samples per CPU second of this process, less sensitive to other load."""
        return statistics.median(h / p for h, p in zip(self.harness_samples_per_cpu_s, self.plain_samples_per_cpu_s))

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "ratios": self.ratios,
            "median_ratio": self.median_ratio,
            "median_cpu_ratio": self.median_cpu_ratio,
        }


def compare_training(
    model_name: str, method_name: str, batch_size: int, steps: int, repeats: int, warmup: int,
    device: torch.device, precision: str, compile_model: bool = False,
) -> TrainComparison:
    """Time the harness loop and the plain loop in alternating epochs (ABBA order)."""
    harness_setup = build_setup(model_name, method_name, batch_size, device, precision, compile_model)
    plain_setup = build_setup(model_name, method_name, batch_size, device, precision)
    split = synthetic_split(batch_size * steps, 1, harness_setup.image_size, harness_setup.context_length, seed=1)
    loops = [HarnessLoop(harness_setup, split, device), PlainLoop(plain_setup, split, device)]
    result = TrainComparison(method_name, model_name, batch_size, steps, repeats)
    result.flops_per_sample = train_step_flops(plain_setup, split, device)
    for _ in range(warmup):
        for loop in loops:
            loop.run_epoch()
    for repeat in range(repeats):
        timings: dict[str, float] = {}
        cpu_timings: dict[str, float] = {}
        for loop in loops if repeat % 2 == 0 else reversed(loops):
            wall_s, cpu_s = loop.run_epoch()
            timings[loop.name] = loop.samples_per_epoch / wall_s
            cpu_timings[loop.name] = loop.samples_per_epoch / cpu_s
        result.harness_samples_per_s.append(timings["harness"])
        result.plain_samples_per_s.append(timings["plain"])
        result.harness_samples_per_cpu_s.append(cpu_timings["harness"])
        result.plain_samples_per_cpu_s.append(cpu_timings["plain"])
        print(
            f"  {method_name} repeat {repeat + 1}/{repeats}: harness {timings['harness']:.1f} samples/s, "
            f"plain {timings['plain']:.1f} samples/s",
            flush=True,
        )
    return result


# --- 2. evaluation ------------------------------------------------------------------------


def bench_evaluation(model_name: str, device: torch.device, batch_size: int, repeats: int) -> dict[str, Any]:
    """Time encoding plus ranking of an RSICD-sized test set, and ranking alone."""
    setup = build_setup(model_name, "full", 2, device, "auto")
    captions_per_image = RSICD_TEST_CAPTIONS // RSICD_TEST_IMAGES
    split = synthetic_split(RSICD_TEST_IMAGES, captions_per_image, setup.image_size, setup.context_length, seed=2)
    autocast = autocast_context(device, setup.config.precision)

    synchronize(device)
    start = time.perf_counter()
    evaluate_split(
        setup.model, setup.method.encode_images, setup.method.encode_texts, split, setup.mean, setup.std,
        device, batch_size, autocast,
    )
    synchronize(device)
    total_s = time.perf_counter() - start

    generator = torch.Generator().manual_seed(3)
    similarity = torch.rand(RSICD_TEST_IMAGES, RSICD_TEST_CAPTIONS, generator=generator)
    ranking_times = []
    for _ in range(repeats):
        start = time.perf_counter()
        retrieval_metrics(similarity, split.caption_image)
        ranking_times.append(time.perf_counter() - start)
    return {
        "model": model_name,
        "images": RSICD_TEST_IMAGES,
        "captions": int(split.tokens.shape[0]),
        "eval_batch_size": batch_size,
        "encode_and_rank_s": total_s,
        "ranking_s": statistics.median(ranking_times),
        "ranking_runs_s": ranking_times,
    }


# --- 3. image loading ---------------------------------------------------------------------


def write_png_files(folder: Path, count: int, size: tuple[int, int], seed: int) -> list[Path]:
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        path = folder / f"synthetic_{index:04d}.png"
        Image.fromarray(pixels, mode="RGB").save(path)
        paths.append(path)
    return paths


def bench_image_cache(real_images: Path | None, synthetic_count: int, image_size: int, repeats: int) -> dict[str, Any]:
    """Decode real and generated files once, then read them again from the decode cache."""
    with tempfile.TemporaryDirectory(prefix="rsitr-bench-images-") as folder:
        paths = write_png_files(Path(folder), synthetic_count, (320, 240), seed=4)
        real = sorted(p for p in real_images.iterdir() if p.is_file()) if real_images else []
        paths = real + paths

        count_start = decode_count()
        start = time.perf_counter()
        decode_images(paths, image_size)
        first_s = time.perf_counter() - start
        count_after_first = decode_count()

        cached_times = []
        for _ in range(repeats):
            start = time.perf_counter()
            decode_images(paths, image_size)
            cached_times.append(time.perf_counter() - start)
        count_after_cached = decode_count()

    cached_s = statistics.median(cached_times)
    return {
        "real_files": len(real),
        "real_folder": str(real_images) if real_images else None,
        "synthetic_files": synthetic_count,
        "image_size": image_size,
        "first_call_s": first_s,
        "first_call_images_per_s": len(paths) / first_s,
        "cached_call_s": cached_s,
        "cached_images_per_s": len(paths) / cached_s,
        "cached_calls": repeats,
        "decoded_in_first_call": count_after_first - count_start,
        "decoded_in_cached_calls": count_after_cached - count_after_first,
        "files": len(paths),
    }


# --- 4. peak memory -----------------------------------------------------------------------


def peak_rss_mb() -> float:
    """Return this process's peak resident memory in MB.

    Reads VmHWM from /proc/self/status where it exists. ``ru_maxrss`` is the fallback, but on
    Linux it keeps the parent's peak across fork and exec, so a child started by a large
    parent reports at least the parent's peak.
    """
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 2**20)


def memory_child(method_name: str, model_name: str, batch_size: int, steps: int, device_name: str, precision: str) -> None:
    """Run in a child process: train ``steps`` steps (or only build the model) and print peak memory as JSON."""
    device = torch.device(device_name)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    result: dict[str, Any] = {"method": method_name}
    if method_name == "model-only":
        setup = build_setup(model_name, "full", batch_size, device, precision)
    else:
        setup = build_setup(model_name, method_name, batch_size, device, precision)
        split = synthetic_split(batch_size * steps, 1, setup.image_size, setup.context_length, seed=5)
        loop = HarnessLoop(setup, split, device)
        loop.run_epoch()
        result["trainable_params"] = sum(p.numel() for p in setup.model.parameters() if p.requires_grad)
    result["peak_rss_mb"] = peak_rss_mb()
    if device.type == "cuda":
        result["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    print("RESULT " + json.dumps(result), flush=True)


def bench_memory(
    method_names: list[str], model_name: str, batch_size: int, steps: int, device: torch.device, precision: str,
    threads: int,
) -> list[dict[str, Any]]:
    """Measure each method's peak memory in a fresh child process."""
    results = []
    environment = dict(os.environ, OMP_NUM_THREADS=str(threads))
    for method_name in ["model-only", *method_names]:
        command = [
            sys.executable, str(Path(__file__).resolve()), "--memory-child", method_name, "--model", model_name,
            "--batch-size", str(batch_size), "--memory-steps", str(steps), "--device", str(device),
            "--precision", precision, "--threads", str(threads),
        ]
        completed = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=REPOSITORY)
        lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
        if completed.returncode != 0 or not lines:
            raise RuntimeError(
                f"memory measurement for {method_name} failed with exit code {completed.returncode}:\n{completed.stderr[-2000:]}"
            )
        results.append(json.loads(lines[-1][len("RESULT "):]))
        print(f"  {method_name}: peak RSS {results[-1]['peak_rss_mb']:.0f} MB", flush=True)
    return results


# --- machine description and report -------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def memory_total_gb() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    return None


def describe_machine(device: torch.device) -> dict[str, Any]:
    machine: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": memory_total_gb(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "load_average_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    if device.type == "cuda":
        machine["gpu"] = torch.cuda.get_device_name(device)
        machine["gpu_memory_gb"] = torch.cuda.get_device_properties(device).total_memory / 2**30
    return machine


def peak_bf16_flops(device_name: str) -> tuple[str, float] | None:
    """Return the first PEAK_BF16_FLOPS entry whose key occurs in ``device_name``, or None."""
    for key, flops in PEAK_BF16_FLOPS.items():
        if key in device_name:
            return key, flops
    return None


def format_load(load: tuple[float, ...] | None) -> str:
    return ", ".join(f"{value:.2f}" for value in load) if load else "unknown"


def verdict(met: bool) -> str:
    return "met" if met else "not met"


def render_report(results: dict[str, Any]) -> str:
    """Render BENCHMARKS.md from the collected results."""
    machine, train, evaluation, cache, memory = (
        results["machine"], results["train"], results["evaluation"], results["image_cache"], results["memory"],
    )
    lines = [
        "# Benchmarks",
        "",
        "Written by `benchmarks/run_benchmarks.py`; rerun it to refresh this page. Every figure",
        "below comes from the one run described here.",
        "",
        "## Run",
        "",
        f"- Command: `{results['command']}`",
        f"- Date (UTC): {results['date']}, duration {results['duration_s']:.0f} s",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, "
        + (f"{machine['memory_gb']:.1f} GB memory" if machine["memory_gb"] else "memory unknown")
        + f", {machine['platform']}",
        f"- Device: {results['device']}" + (f" ({machine['gpu']}, {machine['gpu_memory_gb']:.0f} GB)" if "gpu" in machine else ""),
        f"- torch threads: {machine['torch_threads']}",
        f"- Load average (1, 5, 15 min) at start: {format_load(machine['load_average_start'])}, "
        f"at end: {format_load(results['load_average_end'])}. Other processes sharing the CPU make the absolute figures noisy.",
        "  The training ratio compares loops timed in alternating epochs, which cancels most of that noise.",
        "- Versions: " + ", ".join(f"{name} {value}" for name, value in results["versions"].items()),
        "",
        "## Targets",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
    ]
    for comparison in train:
        lines.append(
            f"| harness training throughput >= {TRAIN_RATIO_TARGET:.2f} x plain loop ({comparison['method']}, "
            f"{comparison['model']}, {results['device']}) | {comparison['median_ratio']:.3f} | "
            f"{verdict(comparison['median_ratio'] >= TRAIN_RATIO_TARGET)} |"
        )
    lines.append(
        f"| ranking {evaluation['images']:,} x {evaluation['captions']:,} < {RANKING_TARGET_S:.0f} s | "
        f"{evaluation['ranking_s']:.3f} s | {verdict(evaluation['ranking_s'] < RANKING_TARGET_S)} |"
    )
    lines.append(
        f"| no image decoded twice | {cache['decoded_in_cached_calls']} decodes in {cache['cached_calls']} cached calls "
        f"over {cache['files']} files | {verdict(cache['decoded_in_cached_calls'] == 0)} |"
    )
    if results["device"] == "cpu" and any(c["model"] != "rsitr-tiny" for c in train):
        lines.append("")
        lines.append("The training target is defined for rsitr-tiny on CPU, but this run used another model.")

    lines += [
        "",
        "## Training throughput",
        "",
        "Samples per second of training only (no validation), on synthetic uint8 images and random",
        "tokens, one caption per image. The harness column runs `Trainer._train_epoch`: epoch-seeded",
        "data order, batch assembly and normalisation, the method's forward and loss, backward,",
        "gradient clipping, AdamW with the harness's parameter groups, the LR schedule and the loss",
        "bookkeeping. The plain column is a minimal loop in the benchmark script that does the same",
        "model work. Both start from the same random weights. Each repeat times one epoch of each",
        "loop, in ABBA order, and warm-up epochs are left out. Ratio = median of per-repeat ratios.",
        "",
        "| method | model | batch | steps/epoch | repeats | harness samples/s (median) | plain samples/s (median) | ratio (median) | ratio per CPU second (median) | ratios | GFLOP/sample (fwd+bwd) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in train:
        lines.append(
            f"| {c['method']} | {c['model']} | {c['batch_size']} | {c['steps_per_epoch']} | {c['repeats']} | "
            f"{statistics.median(c['harness_samples_per_s']):.1f} | {statistics.median(c['plain_samples_per_s']):.1f} | "
            f"{c['median_ratio']:.3f} | {c['median_cpu_ratio']:.3f} | {', '.join(f'{r:.2f}' for r in c['ratios'])} | "
            f"{c['flops_per_sample'] / 1e9:.3f} |"
        )
    lines += [
        "",
        "The verdict uses the wall-clock ratio. The ratio per CPU second divides samples by the CPU",
        "time of the benchmark process instead, which other processes on the machine disturb less.",
        "",
        "GFLOP/sample is counted by `torch.utils.flop_counter.FlopCounterMode` over one forward and",
        "backward pass (matrix multiplications and attention only).",
        "",
        "## Evaluation",
        "",
        f"Synthetic RSICD-sized test set: {evaluation['images']:,} images and {evaluation['captions']:,} captions,",
        f"model {evaluation['model']}, evaluation batch {evaluation['eval_batch_size']}.",
        "",
        "| step | time |",
        "|---|---|",
        f"| encode all images and captions, then rank (`evaluate_split`) | {evaluation['encode_and_rank_s']:.2f} s |",
        f"| rank only (`retrieval_metrics` on a random {evaluation['images']}x{evaluation['captions']} similarity), median of {len(evaluation['ranking_runs_s'])} | {evaluation['ranking_s']:.3f} s |",
        "",
        "## Image loading",
        "",
        f"{cache['files']} files: {cache['real_files']} real images"
        + (f" from `{cache['real_folder']}`" if cache["real_folder"] else " (no real folder given)")
        + f" and {cache['synthetic_files']} generated 320x240 PNG files, decoded to {cache['image_size']}x{cache['image_size']}.",
        "",
        "| call | time | images/s | images decoded (`decode_count` delta) |",
        "|---|---|---|---|",
        f"| first `decode_images` call | {cache['first_call_s']:.3f} s | {cache['first_call_images_per_s']:.0f} | {cache['decoded_in_first_call']} |",
        f"| later calls, from the cache (median of {cache['cached_calls']}) | {cache['cached_call_s']:.4f} s | "
        f"{cache['cached_images_per_s']:.0f} | {cache['decoded_in_cached_calls']} over all {cache['cached_calls']} calls |",
        "",
        "## Peak memory",
        "",
        f"One child process per method trains {results['memory_steps']} steps at batch {results['memory_batch_size']} "
        f"with {results['memory_model']}. `model-only` creates the model and trains nothing, as a baseline.",
        "Peak RSS is the child's VmHWM (`/proc/self/status`), so it includes the Python interpreter and the torch",
        "libraries. `ru_maxrss` is not used on Linux because a child inherits its parent's peak through it.",
        "",
        "| method | trainable params | peak RSS (MB) | CUDA max allocated (MB) |",
        "|---|---|---|---|",
    ]
    for row in memory:
        params = f"{row['trainable_params']:,}" if "trainable_params" in row else "-"
        cuda = f"{row['cuda_max_allocated_mb']:.0f}" if "cuda_max_allocated_mb" in row else "-"
        lines.append(f"| {row['method']} | {params} | {row['peak_rss_mb']:.0f} | {cuda} |")

    lines += ["", "## GPU", ""]
    gpu = results.get("gpu")
    if gpu is None:
        lines += [
            f"Not run on this machine: the run used device {results['device']}. Run",
            "`python benchmarks/run_benchmarks.py --device cuda` on a CUDA machine for ViT-B-32 at",
            "batch 128 with bf16 autocast, pinned-memory copies, device-resident image caches and",
            "an MFU estimate. Add `--compile` to time torch.compile as well.",
        ]
    else:
        peak = gpu.get("peak_flops")
        lines += [
            f"{gpu['model']} at batch {gpu['batch_size']}, precision {gpu['precision']}, on {gpu['device_name']}.",
            "MFU = (FLOPs per sample x samples/s) / peak bf16 FLOP/s. FLOPs per sample come from",
            "FlopCounterMode over one forward and backward pass. Autograd skips the weight-gradient",
            "products of frozen weights, so adapter methods count fewer FLOPs than full fine-tuning.",
            (
                f"Peak: {peak['flops'] / 1e12:.0f} TFLOP/s for '{peak['key']}' from NVIDIA's dense bf16 "
                "specification, an estimate."
                if peak
                else "No peak FLOP/s is known for this GPU, so MFU is not estimated."
            ),
            "",
            f"CUDA max allocated comes from one child process per method training {gpu['memory_steps']} steps without "
            f"compile; the model alone takes {gpu['model_only_cuda_mb']:.0f} MB.",
            "",
            "| method | compile | harness samples/s | plain samples/s | ratio | GFLOP/sample | MFU (estimate) | CUDA max allocated (MB) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in gpu["rows"]:
            mfu = f"{row['mfu']:.1%}" if row.get("mfu") is not None else "-"
            lines.append(
                f"| {row['method']} | {row['compile']} | {row['harness_samples_per_s']:.1f} | "
                f"{row['plain_samples_per_s']:.1f} | {row['ratio']:.3f} | {row['flops_per_sample'] / 1e9:.2f} | {mfu} | "
                f"{row['cuda_max_allocated_mb']:.0f} |"
            )
    lines.append("")
    return "\n".join(lines)


# --- GPU section --------------------------------------------------------------------------


def bench_gpu(args: argparse.Namespace, device: torch.device, method_names: list[str]) -> dict[str, Any]:
    """Time the GPU section and return throughput, harness/plain ratio, MFU estimate and CUDA memory per method.

    The defaults are ViT-B-32 at batch 128 with bf16 autocast.
    """
    device_name = torch.cuda.get_device_name(device)
    peak = peak_bf16_flops(device_name)
    memory = {
        row["method"]: row
        for row in bench_memory(
            method_names, args.gpu_model, args.gpu_batch_size, args.memory_steps, device, "bf16", torch.get_num_threads()
        )
    }
    rows = []
    variants = [False, True] if args.compile else [False]
    for method_name in method_names:
        for compile_model in variants:
            comparison = compare_training(
                args.gpu_model, method_name, args.gpu_batch_size, args.gpu_steps, args.repeats, args.warmup + 1,
                device, "bf16", compile_model=compile_model,
            )
            harness = statistics.median(comparison.harness_samples_per_s)
            mfu = comparison.flops_per_sample * harness / peak[1] if peak else None
            rows.append(
                {
                    "method": method_name,
                    "compile": compile_model,
                    "harness_samples_per_s": harness,
                    "plain_samples_per_s": statistics.median(comparison.plain_samples_per_s),
                    "ratio": comparison.median_ratio,
                    "flops_per_sample": comparison.flops_per_sample,
                    "mfu": mfu,
                    "cuda_max_allocated_mb": memory[method_name]["cuda_max_allocated_mb"],
                }
            )
            torch.cuda.empty_cache()
    return {
        "model": args.gpu_model,
        "batch_size": args.gpu_batch_size,
        "memory_steps": args.memory_steps,
        "model_only_cuda_mb": memory["model-only"]["cuda_max_allocated_mb"],
        "precision": "bf16",
        "device_name": device_name,
        "peak_flops": {"key": peak[0], "flops": peak[1]} if peak else None,
        "rows": rows,
    }


# --- main ---------------------------------------------------------------------------------


def available_methods(requested: list[str] | None) -> list[str]:
    """Return the requested methods, or full, lora and adapter where registered."""
    if requested:
        return requested
    known = set(methods.method_names())
    return [name for name in ("full", "lora", "adapter") if name in known]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and steps, for a smoke test (about 1 minute)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--model", default="rsitr-tiny", help="open_clip model for the CPU sections (default: rsitr-tiny)")
    parser.add_argument("--methods", default=None, help="comma-separated methods (default: full, lora, and adapter when registered)")
    parser.add_argument("--batch-size", type=int, default=32, help="training batch size of the CPU sections (default: 32)")
    parser.add_argument("--steps", type=int, default=None, help="training steps per timed epoch (default: 3, quick: 2)")
    parser.add_argument("--repeats", type=int, default=None, help="timed epochs per loop (default: 11, quick: 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed warm-up epochs per loop (default: 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    parser.add_argument("--precision", default="auto", help="auto, fp32 or bf16 for the CPU sections (default: auto)")
    parser.add_argument("--eval-batch-size", type=int, default=256, help="batch size for encoding (default: 256)")
    parser.add_argument(
        "--real-images", type=Path, default=None,
        help="folder of real image files for the image-loading section (default: $RSITR_DATA_ROOT/mini/images if it exists)",
    )
    parser.add_argument("--synthetic-images", type=int, default=None, help="number of 320x240 PNG files to generate (default: 200, quick: 50)")

    parser.add_argument("--memory-steps", type=int, default=3, help="training steps per memory child (default: 3)")

    parser.add_argument("--gpu-model", default="ViT-B-32", help="model of the GPU section (default: ViT-B-32)")
    parser.add_argument("--gpu-batch-size", type=int, default=128, help="training batch size of the GPU section (default: 128)")
    parser.add_argument("--gpu-steps", type=int, default=20, help="steps per timed epoch in the GPU section (default: 20)")
    parser.add_argument("--compile", action="store_true", help="also time train.compile=true in the GPU section")

    parser.add_argument("--output", type=Path, default=REPOSITORY / "BENCHMARKS.md", help="report path (default: BENCHMARKS.md)")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results as JSON to this path")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    args.steps = args.steps or (2 if args.quick else 3)
    args.repeats = args.repeats or (5 if args.quick else 11)
    if args.synthetic_images is None:
        args.synthetic_images = 50 if args.quick else 200
    if args.real_images is None and os.environ.get("RSITR_DATA_ROOT"):
        candidate = Path(os.environ["RSITR_DATA_ROOT"]) / "mini" / "images"
        args.real_images = candidate if candidate.is_dir() else None
    if args.real_images is not None and not args.real_images.is_dir():
        parser.error(f"--real-images {args.real_images} is not a folder. Pass a folder of image files or leave it out")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device} was requested but CUDA is not available. Use --device cpu.")
    if args.memory_child:
        memory_child(args.memory_child, args.model, args.batch_size, args.memory_steps, str(device), args.precision)
        return

    started = time.time()
    method_names = available_methods(args.methods.split(",") if args.methods else None)
    command = "python benchmarks/run_benchmarks.py " + " ".join(sys.argv[1:] if argv is None else argv)
    results: dict[str, Any] = {
        "command": command.strip(),
        "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)),
        "device": str(device),
        "machine": describe_machine(device),
        "versions": versions(),
    }
    threads = torch.get_num_threads()

    print(f"Training throughput ({args.model}, batch {args.batch_size}, methods {', '.join(method_names)})", flush=True)
    results["train"] = []
    for method_name in method_names:
        comparison = compare_training(
            args.model, method_name, args.batch_size, args.steps, args.repeats, args.warmup, device, args.precision
        )
        results["train"].append(comparison.as_dict())
        print(f"  {method_name}: median ratio {comparison.median_ratio:.3f}", flush=True)

    print("Evaluation (RSICD-sized, synthetic)", flush=True)
    results["evaluation"] = bench_evaluation(args.model, device, args.eval_batch_size, repeats=3 if args.quick else 5)
    print(
        f"  encode and rank {results['evaluation']['encode_and_rank_s']:.2f} s, rank only "
        f"{results['evaluation']['ranking_s']:.3f} s",
        flush=True,
    )

    print("Image loading", flush=True)
    image_size = build_setup(args.model, "full", 2, torch.device("cpu"), "fp32").image_size
    results["image_cache"] = bench_image_cache(args.real_images, args.synthetic_images, image_size, repeats=5)
    print(
        f"  first call {results['image_cache']['first_call_images_per_s']:.0f} images/s, cached "
        f"{results['image_cache']['cached_images_per_s']:.0f} images/s, decodes in cached calls: "
        f"{results['image_cache']['decoded_in_cached_calls']}",
        flush=True,
    )

    print("Peak memory per method", flush=True)
    results["memory"] = bench_memory(
        method_names, args.model, args.batch_size, args.memory_steps, device, args.precision, threads
    )
    results["memory_steps"] = args.memory_steps
    results["memory_batch_size"] = args.batch_size
    results["memory_model"] = args.model

    results["gpu"] = None
    if device.type == "cuda":
        print(f"GPU section ({args.gpu_model}, batch {args.gpu_batch_size}, bf16)", flush=True)
        results["gpu"] = bench_gpu(args, device, method_names)

    results["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    results["duration_s"] = time.time() - started
    args.output.write_text(render_report(results), encoding="utf-8")
    print(f"Wrote {args.output} in {results['duration_s']:.0f} s", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
        print(f"Wrote {args.json}", flush=True)


if __name__ == "__main__":
    main()
