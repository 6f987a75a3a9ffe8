"""Full fine-tuning: every parameter trains."""

from __future__ import annotations

from torch import nn

from methods import register_method
from methods.base import Method, MethodContext


@register_method
class FullFineTune(Method):
    name = "full"
    description = "every parameter trains"
    train_defaults = {"lr": 1e-5, "lr_pretrained": 1e-5}

    def apply(self, model: nn.Module, context: MethodContext) -> None:
        model.requires_grad_(True)
