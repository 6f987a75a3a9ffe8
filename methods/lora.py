"""LoRA through the peft library, on open_clip's attention and MLP layers.

open_clip's blocks use ``nn.MultiheadAttention`` with one fused ``in_proj_weight``, which
LoRA cannot target by parameter name, and an adapter on ``out_proj`` alone is never run
because the attention forward reads ``out_proj.weight`` directly. peft (0.13 and newer) can
target the ``nn.MultiheadAttention`` module itself, which adapts the fused q/k/v and the
output projection, so ``targets`` names the ``attn`` modules. The MLP's ``c_fc`` and
``c_proj`` are plain Linear layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from peft import LoraConfig, inject_adapter_in_model
from torch import nn

from methods import register_method
from methods.base import Method, MethodConfig, MethodContext

_TARGET_PATTERNS = {
    "attn": r"attn",
    "mlp": r"mlp\.(c_fc|c_proj)",
}
_ENCODER_PREFIXES = {
    "image": r"visual\.transformer",
    "text": r"transformer",
}


@dataclass
class LoraMethodConfig(MethodConfig):
    r: int = field(default=8, metadata={"help": "LoRA rank"})
    alpha: float = field(default=16.0, metadata={"help": "LoRA scaling numerator; the update is scaled by alpha / r"})
    dropout: float = field(default=0.0, metadata={"help": "dropout on the LoRA input (probability)"})
    targets: list[str] = field(
        default_factory=lambda: ["attn"],
        metadata={"help": "layers to adapt in every block: 'attn' (fused q/k/v and output projection), 'mlp' (c_fc, c_proj)"},
    )
    encoders: list[str] = field(
        default_factory=lambda: ["image", "text"],
        metadata={"help": "encoders to adapt: 'image', 'text' or both"},
    )


def lora_target_regex(targets: list[str], encoders: list[str]) -> str:
    """Build the full-match regex of module names that peft adapts."""
    unknown = [name for name in targets if name not in _TARGET_PATTERNS] + [
        name for name in encoders if name not in _ENCODER_PREFIXES
    ]
    if unknown or not targets or not encoders:
        raise ValueError(
            f"invalid LoRA targets {targets} or encoders {encoders}: targets are chosen from "
            f"{sorted(_TARGET_PATTERNS)} and encoders from {sorted(_ENCODER_PREFIXES)}, at least one each"
        )
    prefixes = "|".join(_ENCODER_PREFIXES[name] for name in encoders)
    layers = "|".join(_TARGET_PATTERNS[name] for name in targets)
    return rf"^({prefixes})\.resblocks\.\d+\.({layers})$"


def count_blocks(model: nn.Module, encoders: list[str]) -> int:
    blocks = 0
    if "image" in encoders:
        blocks += len(model.visual.transformer.resblocks)
    if "text" in encoders:
        blocks += len(model.transformer.resblocks)
    return blocks


@register_method
class Lora(Method):
    name = "lora"
    config_class = LoraMethodConfig
    description = "LoRA (peft) on the attention of both encoders"
    train_defaults = {"lr": 5e-4}

    def apply(self, model: nn.Module, context: MethodContext) -> None:
        config = self.config
        model.requires_grad_(False)
        target = lora_target_regex(config.targets, config.encoders)
        peft_config = LoraConfig(
            r=config.r, lora_alpha=config.alpha, lora_dropout=config.dropout, target_modules=target, bias="none"
        )
        inject_adapter_in_model(peft_config, model)

        adapted = [name for name, module in model.named_modules() if hasattr(module, "lora_A") and not name.endswith("out_proj")]
        expected = count_blocks(model, config.encoders) * sum(2 if name == "mlp" else 1 for name in config.targets)
        if len(adapted) != expected:
            raise RuntimeError(
                f"peft adapted {len(adapted)} modules but {expected} were expected for targets "
                f"{config.targets} on encoders {config.encoders}; the installed peft or open_clip "
                "version may wrap nn.MultiheadAttention differently"
            )
        for name, parameter in model.named_parameters():
            parameter.requires_grad_("lora_" in name)
