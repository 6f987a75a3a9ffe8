"""The pretrained weights ``--model rsitr-tiny --pretrained demo``, made on first use.

Real users start from a pretrained CLIP. The demo mimics that without any download. The
harness pretrains rsitr-tiny by full fine-tuning on a generated corpus, made by the demo
dataset's scene generator with another seed and half of its scene classes, so it shares no
image with the demo dataset. The weights are cached as safetensors next to the demo dataset. The run record of that pretraining is kept beside the weights.
Pretraining takes about a minute on 2 CPU cores (an estimate from this machine kind) and
is deterministic for a given torch build on CPU.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from rsitr_bench.data.demo import GENERATOR_VERSION, demo_cache_root, ensure_pretraining_corpus
from rsitr_bench.errors import DatasetError
from rsitr_bench.progress import Progress

_logger = logging.getLogger(__name__)

DEMO_MODEL = "rsitr-tiny"
DEMO_TAG = "demo"
CHECKPOINT_VERSION = 1
PRETRAINING_SETTINGS = {"epochs": 8, "batch_size": 64, "lr_pretrained": 5e-4, "warmup_ratio": 0.1}
"""Full fine-tuning from random weights, so the learning rate is that of training from scratch."""


def demo_checkpoint_path(cache_dir: Path | str | None = None) -> Path:
    name = f"{DEMO_MODEL}-{DEMO_TAG}-v{CHECKPOINT_VERSION}-data-v{GENERATOR_VERSION}.safetensors"
    return demo_cache_root(cache_dir) / name


def ensure_demo_checkpoint(cache_dir: Path | str | None = None, progress: Progress | None = None) -> Path:
    """Return the demo model's weights, pretraining them first if the cache has none."""
    path = demo_checkpoint_path(cache_dir)
    if path.is_file():
        return path

    # Imported here: the run module imports the model factory, which imports this module.
    from rsitr_bench.run import execute_run, make_run_config

    corpus = ensure_pretraining_corpus(cache_dir)
    _logger.info("Pretraining the demo model %s on %s (first use only)", DEMO_MODEL, corpus)
    config = make_run_config(
        "full",
        str(corpus),
        {"model": DEMO_MODEL, "pretrained": None, "seed": 0, "device": "cpu",
         "output_dir": str(path.parent / f"{path.stem}-pretraining")},
        dict(PRETRAINING_SETTINGS),
    )
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        result = execute_run(config, progress=progress, weights_path=temporary)
        os.replace(temporary, path)
    except OSError as error:
        raise DatasetError(
            f"cannot write the demo model to {path}: {error.strerror or error}. Set RSITR_CACHE_DIR to a writable folder."
        ) from error
    finally:
        temporary.unlink(missing_ok=True)
    _logger.info(
        "Demo model ready: %s (validation mR %.2f on the pretraining corpus)",
        path, result.record["metrics"]["val_best"]["mR"],
    )
    return path
