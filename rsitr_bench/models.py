"""open_clip model creation: architecture names, pretrained tags and local checkpoints.

``--pretrained`` takes either an open_clip pretrained tag (``openai``, ``laion2b_s34b_b79k``),
which open_clip downloads or finds in its cache, or the path of a local ``.pt``, ``.pth``,
``.bin`` or ``.safetensors`` file, as GeoRSCLIP and RemoteCLIP publish them. Local
checkpoints load with ``torch.load(weights_only=True)`` or safetensors, so a file whose
pickle would run code is rejected before anything runs.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import pickle
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import open_clip
import torch
from torch import nn

from rsitr_bench.errors import CheckpointError, UserError

_logger = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).parent / "model_configs"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")
# Keys under which training scripts (open_clip's own, GeoRSCLIP's, timm's) nest the weights.
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module")
_MAX_LISTED_KEYS = 8

open_clip.add_model_config(CONFIG_DIR)


@dataclass
class ModelBundle:
    """A model with what the harness needs to feed it."""

    model: nn.Module
    tokenizer: Callable[[list[str]], torch.Tensor]
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    name: str
    pretrained: str | None
    checkpoint: dict[str, str] | None = None
    """Path and SHA-256 of the local checkpoint file the weights came from, if any."""


def is_checkpoint_path(pretrained: str) -> bool:
    """Tell a local checkpoint path from an open_clip pretrained tag."""
    return pretrained.endswith(CHECKPOINT_SUFFIXES) or "/" in pretrained or Path(pretrained).is_file()


def create_model(
    name: str, pretrained: str | None = None, device: str | torch.device = "cpu", progress: Any = None
) -> ModelBundle:
    """Create an open_clip model and load its weights.

    ``pretrained`` is None or ``"none"`` (random initialisation from the current torch
    seed), ``"demo"`` (rsitr-tiny only: weights pretrained on a generated corpus, made on
    first use), an open_clip pretrained tag, or a local checkpoint path.
    """
    _require_known_model(name)
    if pretrained in (None, "", "none"):
        pretrained = None
        if name != "rsitr-tiny":
            _logger.warning("%s starts from random weights; pass --pretrained with a tag or checkpoint for real use.", name)

    checkpoint = None
    if pretrained == "demo":
        checkpoint = demo_checkpoint(name, progress)
    elif pretrained and is_checkpoint_path(pretrained):
        checkpoint = Path(pretrained)

    if pretrained and checkpoint is None:
        model = _create_with_tag(name, pretrained)
    else:
        model = _create_quietly(name)
        if checkpoint is not None:
            load_into(model, load_state_dict(checkpoint), source=str(checkpoint))

    model.to(device)
    preprocess = open_clip.get_model_preprocess_cfg(model)
    size = preprocess["size"]
    image_size = size[0] if isinstance(size, (tuple, list)) else int(size)
    return ModelBundle(
        model=model,
        tokenizer=open_clip.get_tokenizer(name),
        image_size=image_size,
        mean=tuple(preprocess["mean"]),
        std=tuple(preprocess["std"]),
        name=name,
        pretrained=pretrained,
        checkpoint={"path": str(checkpoint), "sha256": _sha256(checkpoint)} if checkpoint is not None else None,
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_pretrained(name: str, pretrained: str | None) -> None:
    """Raise early, before any data is loaded, for an unknown model, tag or a missing checkpoint file."""
    _require_known_model(name)
    if pretrained in (None, "", "none", "demo"):
        if pretrained == "demo":
            _require_demo_model(name)
        return
    if is_checkpoint_path(pretrained):
        _require_checkpoint_file(Path(pretrained))
    else:
        _require_known_tag(name, pretrained)


def demo_checkpoint(name: str, progress: Any = None) -> Path:
    """Return the path of the ``demo`` weights of ``name``, pretraining them on first use."""
    _require_demo_model(name)
    from rsitr_bench import distributed
    from rsitr_bench.demo_model import ensure_demo_checkpoint

    # Pretraining on first use must not change the random streams of the caller's run.
    # Under torchrun, rank 0 pretrains alone and the other ranks read its cached weights.
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        checkpoint = distributed.run_on_main_process_first(lambda: ensure_demo_checkpoint(progress=progress))
    random.setstate(python_state)
    np.random.set_state(numpy_state)
    return checkpoint


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read tensors from a checkpoint file without running any code stored in it.

    Unwraps ``{"state_dict": ...}`` style containers and strips the ``module.`` prefix that
    DistributedDataParallel adds to every key.
    """
    _require_checkpoint_file(path)

    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            raw: Any = load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as error:
            raise CheckpointError(f"Checkpoint {path} is not a readable safetensors file: {error}") from error
    else:
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            raise CheckpointError(
                f"Checkpoint {path} was rejected: it contains Python objects other than tensors, "
                "and loading it would run code stored in the file. Re-save only the state dict "
                "(torch.save(model.state_dict(), path)) or convert it to safetensors."
            ) from error
        except (RuntimeError, OSError, EOFError) as error:
            raise CheckpointError(f"Checkpoint {path} could not be read: {error}") from error

    return _unwrap(raw, path)


def _unwrap(raw: Any, path: Path) -> dict[str, torch.Tensor]:
    while isinstance(raw, dict):
        nested = [key for key in _WRAPPER_KEYS if isinstance(raw.get(key), dict)]
        has_tensors = any(isinstance(value, torch.Tensor) for value in raw.values())
        if nested and not has_tensors:
            raw = raw[nested[0]]
            continue
        break

    if not isinstance(raw, dict) or not raw:
        raise CheckpointError(f"Checkpoint {path} contains no state dict (found {type(raw).__name__}).")

    state_dict = {key: value for key, value in raw.items() if isinstance(value, torch.Tensor)}
    if all(key.startswith("module.") for key in state_dict):
        state_dict = {key[len("module."):]: value for key, value in state_dict.items()}
    return state_dict


def load_into(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state_dict`` into ``model`` and raise if any key or shape does not fit."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = sorted(
        f"{key} {tuple(state_dict[key].shape)} != {tuple(expected[key].shape)}"
        for key in set(expected) & set(state_dict)
        if state_dict[key].shape != expected[key].shape
    )
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"Checkpoint {source} does not fit the model architecture: "
            f"{_describe_keys('missing keys', missing)}; {_describe_keys('unexpected keys', unexpected)}; "
            f"{_describe_keys('shape mismatches', mismatched)}. Pass the --model this checkpoint was trained with."
        )
    model.load_state_dict(state_dict, strict=True)


def _describe_keys(label: str, keys: list[str]) -> str:
    if not keys:
        return f"no {label}"
    listed = ", ".join(keys[:_MAX_LISTED_KEYS])
    more = f" and {len(keys) - _MAX_LISTED_KEYS} more" if len(keys) > _MAX_LISTED_KEYS else ""
    return f"{len(keys)} {label} ({listed}{more})"


def _require_known_model(name: str) -> None:
    known = open_clip.list_models()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=5)
        hint = f" Close matches: {', '.join(close)}." if close else ""
        raise UserError(
            f"Unknown model {name!r}.{hint} Run `python -c 'import open_clip; print(open_clip.list_models())'` "
            "for the full list; rsitr-tiny is the small CPU model."
        )


def _create_quietly(name: str) -> nn.Module:
    # open_clip warns on the root logger when it initialises randomly, which is intended here.
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.ERROR)
    try:
        return open_clip.create_model(name, pretrained=None)
    finally:
        root.setLevel(previous)


def _require_demo_model(name: str) -> None:
    if name != "rsitr-tiny":
        raise UserError(
            f"The 'demo' weights exist only for rsitr-tiny, not {name!r}. Pass an open_clip pretrained tag "
            "(such as openai), a local checkpoint path, or 'none' for random weights."
        )


def _require_checkpoint_file(path: Path) -> None:
    if not path.is_file():
        raise CheckpointError(
            f"Checkpoint {path} not found. Pass the path of a .pt or .safetensors file, "
            "or an open_clip pretrained tag such as 'openai'."
        )


def _require_known_tag(name: str, tag: str) -> None:
    tags = open_clip.list_pretrained_tags_by_model(name)
    if tag not in tags:
        listed = ", ".join(tags) if tags else "none"
        raise UserError(
            f"Unknown pretrained tag {tag!r} for model {name!r}; open_clip lists: {listed}. "
            "A local checkpoint path (.pt or .safetensors) works too."
        )


def _create_with_tag(name: str, tag: str) -> nn.Module:
    _require_known_tag(name, tag)
    try:
        return open_clip.create_model(name, pretrained=tag, weights_only=True)
    except Exception as error:  # noqa: BLE001 - hub and network errors come in many types
        raise CheckpointError(
            f"Could not load pretrained weights {name}/{tag}: {str(error).rstrip('.')}. Without network access, "
            "download the checkpoint on another machine and pass its local path with --pretrained."
        ) from error


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """Return (trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
