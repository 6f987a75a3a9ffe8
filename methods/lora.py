"""LoRA through the peft library, on open_clip's attention and MLP layers.

open_clip's blocks use ``nn.MultiheadAttention`` with one fused ``in_proj_weight``, and an
adapter on ``out_proj`` alone is never run because the attention forward reads
``out_proj.weight`` directly. Two ways through peft exist (checked with peft 0.21):

- ``qkv`` (default): peft's ``target_parameters`` wraps ``in_proj_weight`` in a
  parametrization, so every forward computes W + BA without touching W. This adapts the
  fused q/k/v projection, not the output projection.
- ``attn``: peft targets the ``nn.MultiheadAttention`` module, adapting q/k/v and the output
  projection. peft merges BA into the frozen weights before each forward and subtracts it
  after, which leaves rounding drift in the frozen weights. Checkpoints hold only trainable
  weights, so such runs are not bit-identical after a resume.

``mlp`` adds LoRA to the MLP's ``c_fc`` and ``c_proj``, which are plain Linear layers.
"""

from __future__ import annotations

import re
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
        default_factory=lambda: ["qkv"],
        metadata={
            "help": "layers to adapt in every block: 'qkv' (fused q/k/v projection), 'attn' (q/k/v and output "
            "projection through peft's weight merging, not bit-reproducible on resume), 'mlp' (c_fc, c_proj)"
        },
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
        if "qkv" in config.targets and "attn" in config.targets:
            raise ValueError("LoRA targets 'qkv' and 'attn' both adapt the q/k/v projection; choose one")
        model.requires_grad_(False)
        module_targets = [name for name in config.targets if name != "qkv"]
        for name in config.targets:
            if name not in ("qkv", *_TARGET_PATTERNS):
                raise ValueError(f"invalid LoRA target {name!r}: choose from qkv, {', '.join(_TARGET_PATTERNS)}")
        lora_options = {"r": config.r, "lora_alpha": config.alpha, "lora_dropout": config.dropout, "bias": "none"}

        target_modules = lora_target_regex(module_targets, config.encoders) if module_targets else []
        target_parameters = []
        if "qkv" in config.targets:
            # peft matches target_parameters by suffix; full names keep the encoders apart.
            target_parameters = [
                name for name, _ in model.named_parameters()
                if re.fullmatch(_qkv_parameter_regex(config.encoders), name)
            ]
        peft_config = LoraConfig(target_modules=target_modules, target_parameters=target_parameters, **lora_options)
        inject_adapter_in_model(peft_config, model)

        # peft's nn.MultiheadAttention layer also puts LoRA weights on its inner out_proj.
        adapted = {
            name.split(".lora_A.")[0] for name, _ in model.named_parameters()
            if ".lora_A." in name and ".out_proj.lora_A." not in name
        }
        expected = count_blocks(model, config.encoders) * sum(2 if name == "mlp" else 1 for name in config.targets)
        if len(adapted) != expected:
            raise RuntimeError(
                f"peft adapted {len(adapted)} modules but {expected} were expected for targets "
                f"{config.targets} on encoders {config.encoders}; the installed peft or open_clip "
                "version may wrap nn.MultiheadAttention differently"
            )
        for name, parameter in model.named_parameters():
            parameter.requires_grad_("lora_" in name)


def _qkv_parameter_regex(encoders: list[str]) -> str:
    prefixes = "|".join(_ENCODER_PREFIXES[name] for name in encoders)
    return rf"({prefixes})\.resblocks\.\d+\.attn\.in_proj_weight"
