"""Linear probe: only the two final projections train."""

from __future__ import annotations

from torch import nn

from methods import register_method
from methods.base import Method, MethodContext


@register_method
class LinearProbe(Method):
    name = "linear"
    description = "trains only the image and text projections (visual.proj, text_projection)"
    train_defaults = {"lr": 1e-4}

    def apply(self, model: nn.Module, context: MethodContext) -> None:
        model.requires_grad_(False)
        projections = [model.visual.proj, model.text_projection]
        if any(projection is None for projection in projections):
            raise ValueError(
                f"model {context.model_name!r} has no visual.proj or text_projection, so the linear "
                "probe has nothing to train; use an open_clip CLIP architecture such as ViT-B-32"
            )
        for projection in projections:
            projection.requires_grad_(True)
