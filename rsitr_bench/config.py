"""Run settings: dataclasses with a help text per field, bench.toml loading, ``--set`` overrides.

One definition per setting drives validation of ``bench.toml``, the ``--set key=value``
overrides and the ``config`` block of the run record. Unknown keys are rejected with the
closest valid key; values are checked against the field's type.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsitr_bench.errors import ConfigError

DATA_ROOT_ENV = "RSITR_DATA_ROOT"


@dataclass
class TrainConfig:
    """Settings of the shared training loop. Methods may change the defaults."""

    epochs: int = field(default=5, metadata={"help": "number of training epochs"})
    batch_size: int = field(default=64, metadata={"help": "training batch size in image-caption pairs (global, over all processes)"})
    eval_batch_size: int = field(default=256, metadata={"help": "batch size for encoding images and captions at evaluation"})
    lr: float = field(
        default=1e-3,
        metadata={"help": "peak learning rate of the modules a method adds (adapters, LoRA, heads) and of the temperature"},
    )
    lr_pretrained: float = field(
        default=1e-5, metadata={"help": "peak learning rate of pretrained weights that a method trains"}
    )
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW weight decay on matrices; biases, norms and the temperature get none"})
    warmup_ratio: float = field(default=0.1, metadata={"help": "fraction of all steps with linear warm-up before cosine decay"})
    grad_clip: float = field(default=1.0, metadata={"help": "maximum global gradient norm; 0 disables clipping"})
    learn_temperature: bool = field(default=True, metadata={"help": "train CLIP's logit scale (the InfoNCE temperature)"})
    precision: str = field(
        default="auto", metadata={"help": "'auto' (bf16 autocast on CUDA, fp32 on CPU), 'fp32' or 'bf16'"}
    )
    val_fraction: float = field(
        default=0.1,
        metadata={"help": "fraction of train images held out for validation when a dataset has no val split"},
    )
    compile: bool = field(default=False, metadata={"help": "wrap the model in torch.compile (CUDA only)"})

    def validate(self) -> None:
        checks = [
            (self.epochs >= 0, "epochs", self.epochs, "an integer >= 0"),
            (self.batch_size >= 2, "batch_size", self.batch_size, "an integer >= 2 (InfoNCE needs negatives)"),
            (self.eval_batch_size >= 1, "eval_batch_size", self.eval_batch_size, "an integer >= 1"),
            (self.lr > 0, "lr", self.lr, "a number > 0"),
            (self.lr_pretrained > 0, "lr_pretrained", self.lr_pretrained, "a number > 0"),
            (self.weight_decay >= 0, "weight_decay", self.weight_decay, "a number >= 0"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio", self.warmup_ratio, "a number in [0, 1)"),
            (self.grad_clip >= 0, "grad_clip", self.grad_clip, "a number >= 0"),
            (self.precision in ("auto", "fp32", "bf16"), "precision", self.precision, "one of auto, fp32, bf16"),
            (0 < self.val_fraction < 1, "val_fraction", self.val_fraction, "a number in (0, 1)"),
        ]
        for ok, name, value, expected in checks:
            if not ok:
                raise ConfigError(f"Invalid train.{name} = {value!r}: expected {expected}.")


@dataclass
class RunConfig:
    """Everything that defines one run. Stored in full in the run record."""

    method: str = field(metadata={"help": "method name, see `rsitr-bench methods`"})
    dataset: str = field(metadata={"help": "dataset name (rsicd, rsitmd, ucm, sydney, demo) or folder path"})
    seed: int = field(default=0, metadata={"help": "random seed for data order, new modules and dropout"})
    data_root: str | None = field(
        default=None, metadata={"help": f"folder holding rsicd/, rsitmd/, ucm/, sydney/; default: ${DATA_ROOT_ENV}"}
    )
    image_dir: str | None = field(default=None, metadata={"help": "image folder; default: <dataset folder>/images"})
    model: str = field(default="rsitr-tiny", metadata={"help": "open_clip architecture name"})
    pretrained: str | None = field(
        default=None,
        metadata={"help": "open_clip pretrained tag (e.g. openai) or local .pt/.safetensors path; none: random init"},
    )
    output_dir: str = field(default="results", metadata={"help": "folder for run records and checkpoints"})
    device: str = field(default="auto", metadata={"help": "'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'"})
    train: TrainConfig = field(default_factory=TrainConfig)
    method_options: dict[str, Any] = field(default_factory=dict, metadata={"help": "the method's own settings"})

    def resolved_data_root(self) -> str | None:
        return self.data_root or os.environ.get(DATA_ROOT_ENV) or None


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check ``value`` against a field annotation, converting int to float where allowed."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        arguments = typing.get_args(annotation)
        if value is None and type(None) in arguments:
            return None
        for argument in arguments:
            if argument is type(None):
                continue
            try:
                return _coerce(value, argument, key)
            except ConfigError:
                continue
        raise ConfigError(f"Invalid value {value!r} for {key}: expected {_type_name(annotation)}.")
    if origin is list:
        (item_type,) = typing.get_args(annotation) or (Any,)
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"Invalid value {value!r} for {key}: expected a list of {_type_name(item_type)}.")
        return [_coerce(item, item_type, key) for item in value]
    if origin is dict or annotation is Any:
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"Invalid value {value!r} for {key}: expected true or false.")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"Invalid value {value!r} for {key}: expected an integer.")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"Invalid value {value!r} for {key}: expected a number.")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"Invalid value {value!r} for {key}: expected a string.")
    return value


def update_dataclass(instance: Any, values: dict[str, Any], prefix: str = "") -> Any:
    """Return a copy of ``instance`` with ``values`` applied, validating each key and type."""
    hints = typing.get_type_hints(type(instance))
    names = [f.name for f in dataclasses.fields(instance)]
    changes = {}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(unknown_key_message(f"{prefix}{key}", [f"{prefix}{name}" for name in names]))
        changes[key] = _coerce(value, hints[key], f"{prefix}{key}")
    return dataclasses.replace(instance, **changes)


def unknown_key_message(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"Unknown setting {key!r}.{hint} Valid settings: {', '.join(valid)}."


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse one ``key=value`` override; the value is read as TOML, or as a string if it is not TOML."""
    if "=" not in text:
        raise ConfigError(f"Invalid --set {text!r}: expected key=value, for example --set r=16.")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"Invalid --set {text!r}: the key is empty.")
    try:
        value = tomllib.loads(f"value = {raw.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key, value


def load_bench_toml(path: Path) -> dict[str, Any]:
    """Read bench.toml; the caller validates each table against its dataclass."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} not found.") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"Config file {path} is not valid TOML: {error}.") from error
