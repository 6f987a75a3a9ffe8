"""What a method may do to the model and the training step.

The training loop reaches a method only through ``Method``. It calls ``apply`` once on the
created model, asks ``forward`` for features and ``loss`` for the loss terms at every step,
calls the step hooks, and saves ``trainable_state_dict``. A method never reads files.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class MethodConfig:
    """Base class of every method's settings. Each field needs ``metadata={"help": ...}``."""


@dataclass
class MethodContext:
    """Facts about the run that a method may use when it modifies the model."""

    model_name: str
    class_names: list[str] | None
    """Scene classes of the training split, or None when the dataset has no labels."""
    total_steps: int
    seed: int
    dataset_name: str = ""
    """Name of the training dataset, for messages."""


@dataclass
class Batch:
    """One training or evaluation batch, already on the model's device."""

    images: torch.Tensor
    """Normalised float images [B, 3, H, W]."""
    tokens: torch.Tensor
    """Token ids [B, context_length], one caption per image."""
    labels: torch.Tensor | None = None
    """Scene class per image, -1 where unknown, or None without labels."""


@dataclass
class StepOutput:
    """Output of ``Method.forward``. Methods may put more per-sample tensors into ``extras``."""

    image_features: torch.Tensor
    text_features: torch.Tensor
    logit_scale: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


def info_nce(image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of matched pairs, with CLIP's temperature."""
    logits = logit_scale * image_features @ text_features.t()
    targets = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2


class Method:
    """Base class of every method. Subclasses set the class attributes and override hooks."""

    name: ClassVar[str]
    config_class: ClassVar[type[MethodConfig]] = MethodConfig
    description: ClassVar[str] = ""
    trains: ClassVar[bool] = True
    """False for evaluation-only methods such as zero-shot."""
    train_defaults: ClassVar[dict[str, Any]] = {}
    """Overrides of the shared training settings (for example a smaller learning rate)."""

    def __init__(self, config: MethodConfig | None = None):
        self.config = config if config is not None else self.config_class()

    # Model surgery ---------------------------------------------------------------------

    def apply(self, model: nn.Module, context: MethodContext) -> None:
        """Choose trainable parameters and insert modules. The default freezes everything."""
        model.requires_grad_(False)

    def uses_temperature(self) -> bool:
        """Return whether the loss uses CLIP's logit scale. The loop keeps it frozen if not."""
        return True

    def check_trainable(self, model: nn.Module) -> None:
        """Raise if the method's wrapping left it with nothing to train. Called after ``apply``."""
        if self.trains and not any(p.requires_grad for p in model.parameters()):
            raise RuntimeError(f"method {self.name!r} left no trainable parameter in the model")

    # Training step ---------------------------------------------------------------------

    def forward(self, model: nn.Module, batch: Batch) -> StepOutput:
        """Encode one batch; the default uses the model's own encoders."""
        return StepOutput(
            image_features=model.encode_image(batch.images, normalize=True),
            text_features=model.encode_text(batch.tokens, normalize=True),
            logit_scale=model.logit_scale.exp(),
        )

    def loss(self, model: nn.Module, batch: Batch, output: StepOutput) -> dict[str, torch.Tensor]:
        """Return named loss terms; the loop optimises ``"loss"`` and logs the rest."""
        loss = info_nce(output.image_features, output.text_features, output.logit_scale)
        return {"loss": loss, "info_nce": loss.detach()}

    def on_train_start(self, model: nn.Module) -> None:
        """Called once before the first step, after the optimizer is built."""

    def on_step_end(self, model: nn.Module, step: int) -> None:
        """Called after each optimizer step (an EMA teacher updates here)."""

    # Evaluation ------------------------------------------------------------------------

    def encode_images(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        return model.encode_image(images, normalize=True)

    def encode_texts(self, model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
        return model.encode_text(tokens, normalize=True)

    # Checkpoints -----------------------------------------------------------------------

    def trainable_state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """Return the method's own state: trainable parameters plus ``extra_state``."""
        state = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
        for name, tensor in self.extra_state().items():
            state[f"method_extra.{name}"] = tensor.detach().clone()
        return state

    def load_trainable_state_dict(self, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
        """Restore what ``trainable_state_dict`` returned."""
        parameters = dict(model.named_parameters())
        extra = {}
        for name, tensor in state.items():
            if name.startswith("method_extra."):
                extra[name[len("method_extra."):]] = tensor
                continue
            if name not in parameters:
                raise KeyError(f"checkpoint parameter {name!r} does not exist in the model")
            with torch.no_grad():
                parameters[name].copy_(tensor)
        self.load_extra_state(extra)

    def extra_state(self) -> dict[str, torch.Tensor]:
        """Tensors the method keeps outside the model, such as EMA teacher weights."""
        return {}

    def load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        if state:
            raise KeyError(f"method {self.name!r} keeps no extra state, got {sorted(state)[:5]}")


def config_fields(config_class: type[MethodConfig]) -> list[dataclasses.Field]:
    return list(dataclasses.fields(config_class))
