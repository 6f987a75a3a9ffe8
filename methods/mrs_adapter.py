"""PE-RSITR's MRS-Adapter: one adapter shared by every block of both encoders.

Known from the paper (Yuan, Zhan and Xiong, IEEE TGRS 2023) and its public code
(github.com/ZhanYang-nwpu/PE-RSITR):

- One adapter instance serves all 12 blocks of both ViT-B/32 encoders: modality-specific
  down-projections (image 768 -> 64, text 512 -> 64), ReLU, dropout 0.5, then an
  up-projection split into a modality-specific part (64 -> 704 image, 64 -> 448 text) and a
  64 -> 64 part shared by both modalities, concatenated in that order back to the width.
  Up weights and all biases start at zero. It has 161,088 parameters.
- The adapter reads the post-attention residual stream x, the tensor that ``ln_2`` then
  normalises for the MLP, and its output is added unscaled to the MLP output:
  ``x + mlp(ln_2(x)) + adapter(x)``.
- HMMC loss: a bidirectional hardest-negative hinge triplet (VSE++ max violation, margin
  0.2) over cosine similarities of image and text embeddings, plus per modality the same
  hinge between each embedding and a copy from a second forward pass with dropout p = 0.2 on
  the transformer input (text: token plus positional embeddings; image: patch, class and
  positional embeddings after ``ln_pre``). Every term has weight 1 and is summed over the
  batch. Training: Adam, lr 2e-4, x0.7 every 20 epochs, 30 epochs, batch 16.

Harness choices: the input dropout is a forward pre-hook on each encoder's transformer that
is active only inside the second pass of ``MrsAdapter.forward``, so evaluation runs without
it. The loop's AdamW with warm-up and cosine decay replaces the step schedule, keeping lr
2e-4 and no weight decay. InfoNCE is the default loss so that the adapter can be compared
with the other methods under one objective, and ``loss = "hmmc"`` selects the paper's loss.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass, field
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from methods import register_method
from methods.adapter import encoder_blocks, encoder_transformer, insert_adapter, zero_init_
from methods.base import Batch, Method, MethodConfig, MethodContext, StepOutput, info_nce
from rsitr_bench.errors import ConfigError

_logger = logging.getLogger(__name__)

LOSSES = ("info_nce", "hmmc")
MODULE_NAME = "mrs_adapter"
"""Attribute of the CLIP model that contains the shared adapter, so its parameter names start with it."""


class MultimodalSharedAdapter(nn.Module):
    """The MRS-Adapter: modality-specific down-projections and a partly shared up-projection.

    Parameter count for image width W_i, text width W_t, bottleneck b and shared width s:

    - down: (W_i·b + b) + (W_t·b + b)
    - up: (b·(W_i − s) + W_i − s) + (b·(W_t − s) + W_t − s)
    - shared up: b·s + s

    ViT-B-32 (768, 512, 64, 64): 49,216 + 32,832 + 45,760 + 29,120 + 4,160 = 161,088.
    rsitr-tiny (128, 128, 64, 64): 8,256 + 8,256 + 4,160 + 4,160 + 4,160 = 28,992.
    """

    def __init__(self, widths: dict[str, int], bottleneck_dim: int, shared_dim: int, dropout: float):
        super().__init__()
        self.down = nn.ModuleDict({modality: nn.Linear(width, bottleneck_dim) for modality, width in widths.items()})
        self.activation = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.up = nn.ModuleDict(
            {modality: nn.Linear(bottleneck_dim, width - shared_dim) for modality, width in widths.items()}
        )
        self.up_shared = nn.Linear(bottleneck_dim, shared_dim)
        # Down weights keep nn.Linear's Kaiming-uniform init, as the public code does.
        for layer in self.down.values():
            nn.init.zeros_(layer.bias)
        for layer in [*self.up.values(), self.up_shared]:
            zero_init_(layer)

    def forward(self, x: torch.Tensor, modality: str) -> torch.Tensor:
        hidden = self.dropout(self.activation(self.down[modality](x)))
        return torch.cat([self.up[modality](hidden), self.up_shared(hidden)], dim=-1)


def hardest_negative_triplet(anchors: torch.Tensor, positives: torch.Tensor, margin: float) -> torch.Tensor:
    """Return the bidirectional max-violation hinge loss (VSE++), summed over the batch.

    ``anchors[i]`` and ``positives[i]`` form a matched pair, and rows are L2-normalised, so
    ``anchors @ positives.T`` contains cosine similarities. Each anchor contributes the hinge
    of its hardest negative among the positives, and each positive the hinge of its hardest
    negative among the anchors.
    """
    scores = anchors @ positives.t()
    matched = scores.diag()
    off_diagonal = ~torch.eye(scores.shape[0], dtype=torch.bool, device=scores.device)
    cost_anchor = (margin + scores - matched.view(-1, 1)).clamp(min=0) * off_diagonal
    cost_positive = (margin + scores - matched.view(1, -1)).clamp(min=0) * off_diagonal
    return cost_anchor.max(dim=1).values.sum() + cost_positive.max(dim=0).values.sum()


@dataclass
class MrsAdapterConfig(MethodConfig):
    bottleneck_dim: int = field(default=64, metadata={"help": "adapter hidden width (PE-RSITR: 64)"})
    shared_dim: int = field(
        default=64, metadata={"help": "output channels of the up-projection shared by both modalities (PE-RSITR: 64)"}
    )
    dropout: float = field(default=0.5, metadata={"help": "dropout probability inside the adapter (PE-RSITR: 0.5)"})
    loss: str = field(
        default="info_nce",
        metadata={
            "help": "'info_nce' (the harness's default, shared with the other methods) or 'hmmc' (PE-RSITR's "
            "hinge triplet loss, which does not use CLIP's temperature, so the temperature stays frozen)"
        },
    )
    margin: float = field(default=0.2, metadata={"help": "HMMC hinge margin on cosine similarity (PE-RSITR: 0.2)"})
    input_dropout: float = field(
        default=0.2,
        metadata={"help": "HMMC: dropout probability on the transformer input of the augmented pass (PE-RSITR: 0.2)"},
    )


def validate_mrs_config(config: MrsAdapterConfig) -> None:
    """Raise ConfigError naming the first invalid mrs_adapter setting and its valid values."""
    if config.loss not in LOSSES:
        raise ConfigError(f"Invalid mrs_adapter loss {config.loss!r}: choose one of {', '.join(LOSSES)}.")
    if config.bottleneck_dim < 1 or config.shared_dim < 1:
        raise ConfigError(
            f"Invalid mrs_adapter bottleneck_dim {config.bottleneck_dim} or shared_dim {config.shared_dim}: "
            "expected integers >= 1."
        )
    for name in ("dropout", "input_dropout"):
        value = getattr(config, name)
        if not 0 <= value < 1:
            raise ConfigError(f"Invalid mrs_adapter {name} {value}: expected a probability in [0, 1).")
    if config.margin < 0:
        raise ConfigError(f"Invalid mrs_adapter margin {config.margin}: expected a number >= 0.")


@register_method
class MrsAdapter(Method):
    name = "mrs_adapter"
    config_class = MrsAdapterConfig
    description = "PE-RSITR's MRS-Adapter: one adapter shared by all blocks of both encoders"
    train_defaults = {"lr": 2e-4, "weight_decay": 0.0}

    def __init__(self, config: MrsAdapterConfig | None = None):
        super().__init__(config)
        validate_mrs_config(self.config)
        self._input_dropout_active = False

    def apply(self, model: nn.Module, context: MethodContext) -> None:
        config = self.config
        model.requires_grad_(False)
        transformers = {modality: encoder_transformer(model, modality) for modality in ("image", "text")}
        widths = {modality: transformer.width for modality, transformer in transformers.items()}
        if min(widths.values()) <= config.shared_dim:
            raise ConfigError(
                f"Invalid mrs_adapter shared_dim {config.shared_dim}: it must be smaller than both encoder "
                f"widths {widths}. Lower shared_dim."
            )

        adapter = MultimodalSharedAdapter(widths, config.bottleneck_dim, config.shared_dim, config.dropout)
        reference = model.visual.transformer.resblocks[0].mlp.c_fc.weight
        adapter.to(device=reference.device, dtype=reference.dtype)
        model.add_module(MODULE_NAME, adapter)
        for modality in widths:
            branch = functools.partial(adapter, modality=modality)
            for block in encoder_blocks(model, modality):
                insert_adapter(block, branch, "parallel", scale=1.0, branch_input="residual_stream")

        if config.loss == "hmmc":
            for transformer in transformers.values():
                transformer.register_forward_pre_hook(self._drop_input)
        _logger.info(
            "Inserted one shared MRS-Adapter into %d blocks: %d trainable parameters",
            sum(len(transformer.resblocks) for transformer in transformers.values()),
            sum(p.numel() for p in adapter.parameters()),
        )

    def uses_temperature(self) -> bool:
        return self.config.loss != "hmmc"

    # HMMC ------------------------------------------------------------------------------

    def _drop_input(self, module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...] | None:
        """Apply input dropout during the augmented pass only. Registered as a forward pre-hook on each transformer."""
        if not self._input_dropout_active:
            return None
        return (F.dropout(args[0], p=self.config.input_dropout, training=True), *args[1:])

    @contextlib.contextmanager
    def input_dropout(self) -> Iterator[None]:
        """Turn on the HMMC input dropout for the encoder calls inside the ``with`` block."""
        self._input_dropout_active = True
        try:
            yield
        finally:
            self._input_dropout_active = False

    def forward(self, model: nn.Module, batch: Batch) -> StepOutput:
        output = super().forward(model, batch)
        if self.config.loss == "hmmc":
            with self.input_dropout():
                output.extras["image_features_augmented"] = model.encode_image(batch.images, normalize=True)
                output.extras["text_features_augmented"] = model.encode_text(batch.tokens, normalize=True)
        return output

    def loss(self, model: nn.Module, batch: Batch, output: StepOutput) -> dict[str, torch.Tensor]:
        if self.config.loss == "info_nce":
            loss = info_nce(output.image_features, output.text_features, output.logit_scale)
            return {"loss": loss, "info_nce": loss.detach()}

        margin = self.config.margin
        terms = {
            "cross_modal": hardest_negative_triplet(output.image_features, output.text_features, margin),
            "intra_image": hardest_negative_triplet(
                output.image_features, output.extras["image_features_augmented"], margin
            ),
            "intra_text": hardest_negative_triplet(
                output.text_features, output.extras["text_features_augmented"], margin
            ),
        }
        loss = terms["cross_modal"] + terms["intra_image"] + terms["intra_text"]
        return {"loss": loss, **{name: value.detach() for name, value in terms.items()}}
