"""Listings for ``rsitr-bench methods`` and ``rsitr-bench datasets``."""

from __future__ import annotations

import logging
from typing import Any

import torch

import methods
from methods.base import MethodContext
from rsitr_bench.data import KNOWN_DATASETS, count_labelled_images, load_published_splits, missing_images
from rsitr_bench.errors import UserError
from rsitr_bench.models import create_model

_logger = logging.getLogger(__name__)

# A family is listed with one representative variant so that its parameter count is shown.
_FAMILY_EXAMPLES = {"peft:": "peft:ia3"}
LISTED_CLASSES = ["class_a", "class_b"]
"""Scene classes given to methods with a classification head; a run counts its dataset's classes."""


def method_table(model_name: str) -> list[dict[str, Any]]:
    """Return name, trainable parameter count on ``model_name`` and description per method.

    Each method is applied to a fresh randomly initialised model. The count excludes CLIP's
    logit scale, because the loop trains it on top of every training method by default.
    """
    rows = []
    # Random weights are the point here, so create_model's warning about them is silenced.
    models_logger = logging.getLogger("rsitr_bench.models")
    previous_level = models_logger.level
    models_logger.setLevel(logging.ERROR)
    try:
        for name in methods.method_names():
            rows.append(_method_row(name, model_name))
    finally:
        models_logger.setLevel(previous_level)
    return rows


def _method_row(name: str, model_name: str) -> dict[str, Any]:
    example = _FAMILY_EXAMPLES.get(name.replace("<type>", ""), name)
    method_class, _ = methods.get_method_class(example)
    torch.manual_seed(0)
    model = create_model(model_name).model
    method = methods.create_method(example)
    context = MethodContext(model_name, class_names=LISTED_CLASSES, total_steps=100, seed=0)
    try:
        method.apply(model, context)
        count = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and n != "logit_scale")
        params = f"{count:,}"
    except (UserError, ValueError, RuntimeError) as error:
        _logger.warning("Could not apply %s to %s: %s", example, model_name, error)
        params = "n/a"
    label = name if example == name else f"{name} (e.g. {example})"
    return {"name": label, "params": params, "description": method_class.description}


def dataset_table(names: list[str] | None, data_root: str | None) -> tuple[list[dict[str, Any]], list[str]]:
    """Count images, captions, missing images and labelled images per published split.

    ``images`` counts every image the split file lists; ``uncaptioned`` counts those whose
    captions are all empty, which training and evaluation leave out.
    """
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for name in names or list(KNOWN_DATASETS):
        dataset = load_published_splits(name, data_root)
        missing = missing_images(dataset)
        for split_name, split in dataset.splits.items():
            labelled = sum(1 for label in (split.labels or []) if label >= 0)
            rows.append({
                "dataset": dataset.name, "split": split_name, "images": split.listed_images,
                "uncaptioned": len(split.uncaptioned_images), "captions": split.num_captions,
                "missing": len(missing[split_name]), "labelled": labelled,
            })
        notes.extend(f"{dataset.name}: {note}" for note in dataset.notes)
        notes.append(f"{dataset.name}: images are read from {dataset.image_dir}")
    return rows, notes
