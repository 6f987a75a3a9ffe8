"""Bottleneck adapters on the MLP of every transformer block, the same design in both encoders.

Known from the papers and their public code:

- Houlsby et al. ("Parameter-Efficient Transfer Learning for NLP", ICML 2019) insert a
  bottleneck (down-projection, non-linearity, up-projection, skip connection around it) in
  series after each feed-forward sub-layer.
- AdaptFormer (Chen et al., NeurIPS 2022, github.com/ShoufaChen/AdaptFormer) adds the
  bottleneck in parallel to each MLP and multiplies its output by s = 0.1. Its public code
  uses ReLU, dropout 0.1 inside the bottleneck, a zero up-projection and zero biases, and
  feeds the branch the residual stream x itself, not the MLP's layer-normed input.

Harness choices: one adapter per block in each chosen encoder, with bottleneck 64. By default
the parallel branch reads ``ln_2(x)``, the same input as the MLP, and ``branch_input =
"residual_stream"`` selects AdaptFormer's code variant. The serial adapter has no scale.
PE-RSITR (TGRS 2023) reports 0.17M trainable parameters for its Adapter and AdaptFormer
baselines on ViT-B/32 but does not give their configuration. Bottleneck 64 in all 24 blocks
of ViT-B-32 gives 1,982,976 (formula on ``BottleneckAdapter``).

The helpers here (``encoder_blocks``, ``insert_adapter``) also serve the MRS-Adapter.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from methods import register_method
from methods.base import Method, MethodConfig, MethodContext
from rsitr_bench.errors import ConfigError

_logger = logging.getLogger(__name__)

ENCODERS = ("image", "text")
PLACEMENTS = ("parallel", "serial")
BRANCH_INPUTS = ("mlp_input", "residual_stream")
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU}


def encoder_transformer(model: nn.Module, encoder: str) -> nn.Module:
    """Return the open_clip ``Transformer`` of the image or text encoder."""
    transformer = model.visual.transformer if encoder == "image" else getattr(model, "transformer", None)
    if transformer is None or not hasattr(transformer, "resblocks"):
        raise ValueError(
            f"the {encoder} encoder of {type(model).__name__} has no open_clip transformer with resblocks. "
            "Adapters need an open_clip CLIP model with ViT image and transformer text towers, such as ViT-B-32"
        )
    return transformer


def encoder_blocks(model: nn.Module, encoder: str) -> list[nn.Module]:
    """Return the residual blocks of one encoder, checking that each has ``ln_2`` and an ``nn.Sequential`` mlp."""
    blocks = list(encoder_transformer(model, encoder).resblocks)
    for index, block in enumerate(blocks):
        if not isinstance(getattr(block, "mlp", None), nn.Sequential) or not hasattr(block, "ln_2"):
            raise ValueError(
                f"block {index} of the {encoder} encoder ({type(block).__name__}) has no ln_2 and "
                "nn.Sequential mlp. Adapters support open_clip's ResidualAttentionBlock layout only"
            )
    return blocks


def zero_init_(layer: nn.Linear) -> None:
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)


class AdaptedMLP(nn.Module):
    """A block's MLP with an adapter branch added in parallel or in series.

    The MLP's own layers stay registered under their names (``c_fc``, ``gelu``, ``c_proj``),
    so their state-dict keys and open_clip's ``mlp.c_fc`` look-ups are unchanged. A branch
    that is an ``nn.Module`` is registered as ``adapter``. Any other callable, such as a
    view of an adapter shared by many blocks, is kept as a plain attribute so that the
    shared weights appear once in the model's state dict.
    """

    def __init__(
        self,
        mlp: nn.Sequential,
        branch: Callable[[torch.Tensor], torch.Tensor],
        placement: str,
        scale: float,
        branch_input: str,
    ):
        super().__init__()
        self.layer_names = [name for name, _ in mlp.named_children()]
        for name, layer in mlp.named_children():
            self.add_module(name, layer)
        self.adapter = branch
        self.placement = placement
        self.scale = scale
        self.branch_input = branch_input
        self._residual: torch.Tensor | None = None

    def capture_residual(self, module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        """Store the residual stream that the branch reads. Registered as a forward pre-hook on the block's ``ln_2``."""
        self._residual = args[0]

    def run_mlp(self, hidden: torch.Tensor) -> torch.Tensor:
        for name in self.layer_names:
            hidden = getattr(self, name)(hidden)
        return hidden

    def forward(self, normed: torch.Tensor) -> torch.Tensor:
        output = self.run_mlp(normed)
        if self.placement == "serial":
            return output + self.adapter(output)
        if self.branch_input == "mlp_input":
            return output + self.scale * self.adapter(normed)

        residual, self._residual = self._residual, None
        if residual is None or residual.shape != normed.shape:
            raise RuntimeError(
                "the adapter branch found no residual stream from ln_2 with the shape of the MLP input. The "
                "block's forward must call mlp(ln_2(x)), as open_clip 3.3's ResidualAttentionBlock does. "
                "Use branch_input='mlp_input' for other blocks"
            )
        return output + self.scale * self.adapter(residual)


def insert_adapter(
    block: nn.Module,
    branch: Callable[[torch.Tensor], torch.Tensor],
    placement: str,
    scale: float = 1.0,
    branch_input: str = "mlp_input",
) -> AdaptedMLP:
    """Replace ``block.mlp`` by an ``AdaptedMLP`` with ``branch``.

    A parallel branch that reads the residual stream also gets a pre-hook on ``ln_2``.
    """
    adapted = AdaptedMLP(block.mlp, branch, placement, scale, branch_input)
    if placement == "parallel" and branch_input == "residual_stream":
        block.ln_2.register_forward_pre_hook(adapted.capture_residual)
    block.mlp = adapted
    return adapted


class BottleneckAdapter(nn.Module):
    """Down-projection, activation, dropout and an up-projection that starts at zero.

    Parameters for width d and bottleneck b: d·b + b (down) + b·d + d (up) = 2·d·b + b + d.
    On ViT-B-32 with b = 64 in all blocks: 12 × 99,136 (d = 768) + 12 × 66,112 (d = 512)
    = 1,982,976. On rsitr-tiny (d = 128, 4 + 4 blocks): 8 × 16,576 = 132,608.
    """

    def __init__(self, width: int, bottleneck_dim: int, activation: str, dropout: float):
        super().__init__()
        self.down = nn.Linear(width, bottleneck_dim)
        self.activation = ACTIVATIONS[activation]()
        self.dropout = nn.Dropout(dropout)
        self.up = nn.Linear(bottleneck_dim, width)
        # The down weight keeps nn.Linear's Kaiming-uniform init, as AdaptFormer's code does.
        nn.init.zeros_(self.down.bias)
        zero_init_(self.up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.dropout(self.activation(self.down(x))))


@dataclass
class AdapterConfig(MethodConfig):
    bottleneck_dim: int = field(default=64, metadata={"help": "bottleneck width of each adapter in features (64 is AdaptFormer's default)"})
    placement: str = field(
        default="parallel",
        metadata={
            "help": "'parallel' adds the branch to the MLP output, scaled by `scale` (AdaptFormer). "
            "'serial' applies it to the MLP output with a skip connection (Houlsby)"
        },
    )
    scale: float = field(
        default=0.1,
        metadata={"help": "multiplier of the parallel branch output (AdaptFormer's s = 0.1), unused by 'serial'"},
    )
    branch_input: str = field(
        default="mlp_input",
        metadata={
            "help": "what the parallel branch reads: 'mlp_input' (ln_2(x), the harness's default) or "
            "'residual_stream' (x before ln_2, as AdaptFormer's public code does)"
        },
    )
    activation: str = field(
        default="relu", metadata={"help": "bottleneck non-linearity: 'relu' (AdaptFormer) or 'gelu'"}
    )
    dropout: float = field(
        default=0.1,
        metadata={
            "help": "dropout probability after the activation (AdaptFormer's 0.1, which the harness also "
            "uses for 'serial')"
        },
    )
    encoders: list[str] = field(
        default_factory=lambda: ["image", "text"],
        metadata={"help": "encoders that get adapters: 'image', 'text' or both"},
    )


def validate_adapter_config(config: AdapterConfig) -> None:
    """Raise ConfigError naming the first invalid adapter setting and its valid values."""
    choices = [
        ("placement", config.placement, PLACEMENTS),
        ("branch_input", config.branch_input, BRANCH_INPUTS),
        ("activation", config.activation, tuple(ACTIVATIONS)),
    ]
    for name, value, allowed in choices:
        if value not in allowed:
            raise ConfigError(f"Invalid adapter {name} {value!r}: choose one of {', '.join(allowed)}.")
    if config.bottleneck_dim < 1:
        raise ConfigError(f"Invalid adapter bottleneck_dim {config.bottleneck_dim}: expected an integer >= 1.")
    if not 0 <= config.dropout < 1:
        raise ConfigError(f"Invalid adapter dropout {config.dropout}: expected a probability in [0, 1).")
    unknown = [name for name in config.encoders if name not in ENCODERS]
    if unknown or not config.encoders:
        raise ConfigError(
            f"Invalid adapter encoders {config.encoders}: choose one or both of {', '.join(ENCODERS)}."
        )


@register_method
class Adapter(Method):
    name = "adapter"
    config_class = AdapterConfig
    description = "bottleneck adapter on every block's MLP, same design in both encoders (AdaptFormer or Houlsby)"

    def __init__(self, config: AdapterConfig | None = None):
        super().__init__(config)
        validate_adapter_config(self.config)

    def apply(self, model: nn.Module, context: MethodContext) -> None:
        config = self.config
        model.requires_grad_(False)
        for encoder in config.encoders:
            width = encoder_transformer(model, encoder).width
            for block in encoder_blocks(model, encoder):
                adapter = BottleneckAdapter(width, config.bottleneck_dim, config.activation, config.dropout)
                reference = next(block.mlp.parameters())
                adapter.to(device=reference.device, dtype=reference.dtype)
                insert_adapter(block, adapter, config.placement, config.scale, config.branch_input)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        _logger.info(
            "Inserted %s adapters (bottleneck %d) into the %s encoder(s): %d trainable parameters",
            config.placement, config.bottleneck_dim, "+".join(config.encoders), trainable,
        )
