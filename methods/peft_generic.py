"""The ``peft:<type>`` family: adapter types of the peft library on open_clip's MLP layers.

``peft:ia3``, ``peft:loha`` and the other types in ``SUPPORTED_TYPES`` resolve their config
class through peft's own ``PEFT_TYPE_TO_CONFIG_MAPPING`` and are injected with
``inject_adapter_in_model``. Options not covered by ``targets`` and ``encoders`` go to the
peft config class unchanged: ``--set 'options={r=4, alpha=8}'``.

What peft 0.21.2 can adapt in open_clip 3.3: none of the types here implements
``nn.MultiheadAttention``, which LoRA does through the ``lora`` method. So every type adapts
the MLP's ``c_fc`` and ``c_proj`` Linear layers, and ``targets`` defaults to ``["mlp"]``.
Types that keep state on the peft tuner (VeRA, VB-LoRA and others) work only through
``get_peft_model``'s ``PeftModel`` wrapper, which the harness does not use. Prompt-learning
types need a transformers model.

AdaLoRA needs more than injection, so this module adds what peft's ``AdaLoraModel`` would do:
the rank allocation after each optimizer step (``on_step_end``), its importance estimates in
the checkpoint (``extra_state``), and the orthogonality penalty of A and B in the loss.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from peft import (
    PEFT_TYPE_TO_CONFIG_MAPPING,
    PEFT_TYPE_TO_TUNER_MAPPING,
    PeftConfig,
    PromptLearningConfig,
    inject_adapter_in_model,
)
from peft.tuners.adalora import RankAllocator
from peft.tuners.tuners_utils import BaseTunerLayer
from peft.utils import PeftType
from torch import nn

from methods import register_method_family
from methods.base import Batch, Method, MethodConfig, MethodContext, StepOutput
from methods.lora import count_blocks, lora_target_regex
from rsitr_bench.errors import ConfigError

_logger = logging.getLogger(__name__)

ADAPTER_NAME = "default"

SUPPORTED_TYPES: dict[str, str] = {
    "ia3": "learned scaling vectors: c_fc's output and c_proj's input, both on the MLP hidden units",
    "loha": "low-rank Hadamard product update of each weight",
    "lokr": "low-rank Kronecker product update of each weight",
    "adalora": "SVD-form LoRA whose rank budget is pruned during training (needs total_step)",
    "oft": "orthogonal fine-tuning: block-diagonal orthogonal rotation of each weight",
    "hra": "Householder reflections applied to each weight",
    "fourierft": "sparse spectral update of each weight, whose random init changes the outputs before training",
}
"""Types checked on rsitr-tiny: they inject, every new parameter reaches the loss, and they train."""

_ATTENTION_TARGETS = {"attn"}
_HARNESS_OPTIONS = {"target_modules", "peft_type", "task_type"}
"""Options that the family sets itself: target_modules is built from targets and encoders."""


@dataclass
class PeftMethodConfig(MethodConfig):
    targets: list[str] = field(
        default_factory=lambda: ["mlp"],
        metadata={"help": "layers to adapt in every block: 'mlp' (c_fc and c_proj). No supported type adapts 'attn'"},
    )
    encoders: list[str] = field(
        default_factory=lambda: ["image", "text"], metadata={"help": "encoders to adapt: 'image', 'text' or both"}
    )
    options: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "help": "keyword arguments of the peft config class, as a TOML inline table: --set 'options={r=4}'. "
            "Options left out keep peft's defaults"
        },
    )


def supported_names() -> str:
    return ", ".join(f"peft:{name}" for name in SUPPORTED_TYPES)


def resolve_peft_type(variant: str | None) -> tuple[PeftType, type[PeftConfig]]:
    """Map ``ia3`` to ``PeftType.IA3`` and its config class, rejecting types this family does not support."""
    if not variant:
        raise ConfigError(f"Method 'peft' needs a type after the colon. Supported: {supported_names()}.")
    try:
        peft_type = PeftType(variant.upper())
    except ValueError:
        raise ConfigError(f"Unknown peft type {variant!r}. Supported: {supported_names()}.") from None

    name = variant.lower()
    if name not in SUPPORTED_TYPES:
        tuner = PEFT_TYPE_TO_TUNER_MAPPING.get(peft_type)
        config_class = PEFT_TYPE_TO_CONFIG_MAPPING[peft_type]
        if name == "lora":
            reason = "use the 'lora' method, which also adapts attention"
        elif issubclass(config_class, PromptLearningConfig):
            reason = "it is a prompt-learning type, which needs a transformers model"
        elif name in ("adaption_prompt", "shadow"):
            reason = "inject_adapter_in_model does not support it"
        elif getattr(tuner, "uses_shared_state", False):
            reason = "it keeps state on the peft tuner, which inject_adapter_in_model does not support"
        else:
            reason = "it has not been checked on open_clip models in this harness"
        raise ConfigError(f"peft type {variant!r} is not supported: {reason}. Supported: {supported_names()}.")
    return peft_type, PEFT_TYPE_TO_CONFIG_MAPPING[peft_type]


@register_method_family("peft")
class PeftFamily(Method):
    name = "peft"
    config_class = PeftMethodConfig
    description = f"a peft library adapter on the MLP layers of both encoders (types: {', '.join(SUPPORTED_TYPES)})"

    def __init__(self, config: PeftMethodConfig | None = None, variant: str | None = None):
        super().__init__(config)
        self.variant = (variant or "").lower()
        self.peft_type, self.peft_config_class = resolve_peft_type(variant)
        self._check_config()
        self._rank_allocator: RankAllocator | None = None
        self._peft_config: PeftConfig | None = None
        self._loaded_state_device_pending = False

    def _check_config(self) -> None:
        config = self.config
        options = config.options
        if not isinstance(options, dict):
            raise ConfigError(
                f"Invalid options {options!r} for peft:{self.variant}: expected a TOML inline table such as "
                "--set 'options={r=4}'."
            )
        attention = sorted(_ATTENTION_TARGETS & set(config.targets))
        if attention:
            raise ConfigError(
                f"peft:{self.variant} cannot adapt {attention}: peft implements this type for Linear and "
                "convolution layers, and open_clip's attention is one nn.MultiheadAttention module. Use "
                "targets=['mlp'], or the 'lora' method for attention."
            )
        try:
            lora_target_regex(config.targets, config.encoders)
        except ValueError as error:
            raise ConfigError(f"Invalid peft:{self.variant} setting: {error}.") from None

        valid = sorted(f.name for f in dataclasses.fields(self.peft_config_class) if f.init)
        reserved = sorted(_HARNESS_OPTIONS & set(options))
        if reserved:
            raise ConfigError(
                f"Invalid peft:{self.variant} options {reserved}: the harness sets them. Choose layers with "
                "targets and encoders instead."
            )
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise ConfigError(
                f"Unknown option(s) {unknown} for {self.peft_config_class.__name__}. "
                f"Valid options: {', '.join(name for name in valid if name not in _HARNESS_OPTIONS)}."
            )

    # Model surgery ---------------------------------------------------------------------

    def build_peft_config(self, context: MethodContext) -> PeftConfig:
        """Create the peft config: harness targets, per-type defaults, then the user's options."""
        config = self.config
        kwargs: dict[str, Any] = {"target_modules": lora_target_regex(config.targets, config.encoders)}
        if self.peft_type == PeftType.IA3:
            # IA3 scales the input of "feed-forward" modules and the output of the others.
            kwargs["feedforward_modules"] = r".*\.mlp\.c_proj"
        if self.peft_type == PeftType.ADALORA:
            kwargs["total_step"] = self._adalora_total_step(context)
        kwargs.update(config.options)
        try:
            return self.peft_config_class(**kwargs)
        except (TypeError, ValueError) as error:
            raise ConfigError(
                f"peft rejected the peft:{self.variant} options {config.options}: {error}. "
                "Fix the options named there."
            ) from error

    def _adalora_total_step(self, context: MethodContext) -> int:
        requested = self.config.options.get("total_step")
        if requested is not None:
            if context.total_steps and requested != context.total_steps:
                _logger.warning(
                    "peft:adalora uses options.total_step=%s, but the run has %d optimizer steps, "
                    "so the rank budget schedule will not end with the run.", requested, context.total_steps,
                )
            return requested
        if context.total_steps > 0:
            return context.total_steps
        raise ConfigError(
            "peft:adalora needs the number of optimizer steps for its rank budget schedule, and the run did not "
            "provide it. Pass --set 'options={total_step=N}' with N = epochs x batches per epoch."
        )

    def apply(self, model: nn.Module, context: MethodContext) -> None:
        model.requires_grad_(False)
        original = {id(p) for p in model.parameters()}
        peft_config = self.build_peft_config(context)
        inject_adapter_in_model(peft_config, model, adapter_name=ADAPTER_NAME)
        self._peft_config = peft_config

        adapted = [name for name, module in model.named_modules() if isinstance(module, BaseTunerLayer)]
        expected = count_blocks(model, self.config.encoders) * 2 * len(self.config.targets)
        if not adapted:
            raise RuntimeError(
                f"peft:{self.variant} adapted no module of the model. Check targets {self.config.targets} "
                f"and encoders {self.config.encoders}"
            )
        if len(adapted) != expected:
            raise RuntimeError(
                f"peft:{self.variant} adapted {len(adapted)} modules but {expected} were expected for targets "
                f"{self.config.targets} on encoders {self.config.encoders}. The installed peft or open_clip "
                "version may wrap the layers differently."
            )

        unfrozen = [name for name, p in model.named_parameters() if p.requires_grad and id(p) in original]
        if unfrozen:
            raise ConfigError(
                f"peft:{self.variant} options {self.config.options} make peft train pretrained parameters "
                f"({', '.join(unfrozen[:4])}). This family trains adapter parameters only, so remove options "
                "such as bias or modules_to_save."
            )
        if self.peft_type == PeftType.ADALORA:
            self._rank_allocator = RankAllocator(model, peft_config, ADAPTER_NAME)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        _logger.info("peft:%s adapted %d modules: %d trainable parameters", self.variant, len(adapted), trainable)

    # AdaLoRA ---------------------------------------------------------------------------

    def loss(self, model: nn.Module, batch: Batch, output: StepOutput) -> dict[str, torch.Tensor]:
        terms = super().loss(model, batch, output)
        if self.peft_type != PeftType.ADALORA or self._peft_config.orth_reg_weight == 0:
            return terms
        penalty = orthogonality_penalty(model)
        terms["loss"] = terms["loss"] + self._peft_config.orth_reg_weight * penalty
        terms["orthogonality"] = penalty.detach()
        return terms

    def on_step_end(self, model: nn.Module, step: int) -> None:
        """Update AdaLoRA's importance scores and mask singular values, as AdaLoraModel.update_and_allocate does."""
        if self._rank_allocator is None:
            return
        if self._loaded_state_device_pending:
            self._move_allocator_state(next(model.parameters()).device)
        config = self._peft_config
        final_start = config.total_step - config.tfinal
        if step < final_start:
            _, rank_pattern = self._rank_allocator.update_and_allocate(model, step)
            if rank_pattern:
                config.rank_pattern = rank_pattern
        elif step == final_start:
            _, rank_pattern = self._rank_allocator.update_and_allocate(model, step, force_mask=True)
            config.rank_pattern = rank_pattern
            self._rank_allocator.reset_ipt()
        elif config.rank_pattern:
            self._rank_allocator.mask_using_rank_pattern(model, config.rank_pattern)

    def extra_state(self) -> dict[str, torch.Tensor]:
        """Return AdaLoRA's smoothed importance scores and rank pattern, so that a resumed run allocates the same ranks."""
        if self._rank_allocator is None:
            return {}
        allocator = self._rank_allocator
        state = {}
        for name in allocator.exp_avg_ipt:
            state[f"adalora.exp_avg_ipt.{name}"] = allocator.exp_avg_ipt[name]
            state[f"adalora.exp_avg_unc.{name}"] = allocator.exp_avg_unc[name]
        for name, rank_mask in (self._peft_config.rank_pattern or {}).items():
            state[f"adalora.rank_pattern.{name}"] = torch.as_tensor(rank_mask, dtype=torch.bool)
        return state

    def load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        if self._rank_allocator is None:
            super().load_extra_state(state)
            return
        allocator = self._rank_allocator
        allocator.reset_ipt()
        rank_pattern = {}
        for key, tensor in state.items():
            kind, _, name = key.removeprefix("adalora.").partition(".")
            if kind == "exp_avg_ipt":
                allocator.exp_avg_ipt[name] = tensor.clone()
                # update_ipt resets both averages of a name missing from ipt, so mark it present.
                allocator.ipt[name] = torch.zeros_like(tensor)
            elif kind == "exp_avg_unc":
                allocator.exp_avg_unc[name] = tensor.clone()
            elif kind == "rank_pattern":
                rank_pattern[name] = tensor.tolist()
            else:
                raise KeyError(
                    f"unexpected AdaLoRA state entry {key!r} in the checkpoint. Resume only from a checkpoint "
                    "written by peft:adalora"
                )
        self._peft_config.rank_pattern = rank_pattern or None
        self._loaded_state_device_pending = True

    def _move_allocator_state(self, device: torch.device) -> None:
        """Move checkpoint tensors, loaded on the CPU, to the device of the model's parameters."""
        allocator = self._rank_allocator
        for scores in (allocator.ipt, allocator.exp_avg_ipt, allocator.exp_avg_unc):
            for name, tensor in scores.items():
                scores[name] = tensor.to(device)
        self._loaded_state_device_pending = False


def orthogonality_penalty(model: nn.Module) -> torch.Tensor:
    """Return AdaLoRA's orthogonality regulariser, as peft's AdaLoraModel.forward adds it to the loss.

    It is the mean over the A matrices of ||A Aᵀ − I||_F and the B matrices of ||Bᵀ B − I||_F.
    """
    penalties = []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad or ADAPTER_NAME not in name:
            continue
        if "lora_A" in name:
            covariance = parameter @ parameter.t()
        elif "lora_B" in name:
            covariance = parameter.t() @ parameter
        else:
            continue
        identity = torch.eye(covariance.shape[0], dtype=covariance.dtype, device=covariance.device)
        penalties.append(torch.linalg.matrix_norm(covariance - identity))
    return torch.stack(penalties).mean()
