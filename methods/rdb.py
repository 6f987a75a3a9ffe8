"""rdb: Representation Discrepancy Bridging (Ning et al., Neurocomputing 2025, arXiv 2505.16756).

From the paper: with the same adapter in both encoders the more discriminative text side
dominates optimisation and image features stay under-trained, so rdb adapts the two encoders
differently (Cross-Modal Asymmetric Adapter, CMAA). The image side gets a Visual Enhancement
Adapter (VEA) built on differential attention (Ye et al., arXiv 2410.05258). The text side
gets a Text Semantic Adapter (TSA) with hierarchical attention over tokens and then groups of
tokens. A shared interaction layer in the bottleneck space connects the two. Training uses a
Dual-Task Consistency Loss (DTCL): an adaptively weighted sum of cross-modal alignment,
scene classification and an exponential-moving-average (EMA) consistency term. No official
code is public.

Choices of this harness, where the paper gives no detail (each is a config field):

- Placement: an adapter runs in parallel with the MLP of every chosen transformer block and
  reads the MLP's input, so a block computes ``x + ls_2(mlp(ln_2(x)) + adapter(ln_2(x)))``.
  The up-projection starts at zero, so the model's outputs are unchanged before training.
- Adapter: down-projection, GELU, token mixer (VEA or TSA) with a residual connection, shared
  layer, dropout, up-projection, times ``scale``.
- Shared interaction layer: one residual Linear + GELU in the bottleneck space, used by every
  adapter of both encoders. The encoders run separately at retrieval time, so sharing weights
  is the only interaction that keeps them independent.
- TSA phrases are fixed windows of ``group_size`` tokens. open_clip's CLIP text encoder is
  causal and pools the end-of-text token, so the TSA is causal whenever the text encoder uses
  a causal attention mask. The image-side design used in the text encoder is causal too.
- ``symmetric=true`` gives the text encoder the image-side design (VEA, or a plain adapter
  with ``vea=false``), so the asymmetric and symmetric variants differ in one flag.
- Classification: a cosine classifier over the training split's scene classes on the
  L2-normalised image embedding, with CLIP's logit scale as temperature (detached). With
  ``classify_text`` the same head also classifies each caption's embedding.
- EMA consistency: a mean teacher keeps an EMA of the adapter and shared-layer weights. The
  teacher's embeddings are computed under no_grad with ``torch.func.functional_call`` on the
  same frozen model. The term is KL(teacher ‖ student) between softmax similarity rows,
  averaged over both retrieval directions, or the squared distance between embeddings.
- Evaluation encodes with the student, and the teacher only provides training targets.
- Only InfoNCE trains CLIP's temperature. With ``alignment_loss=false`` it gets a zero
  gradient and stays at its initial value.
- Adaptive weighting: learned homoscedastic uncertainty (Kendall et al., CVPR 2018),
  ``L = Σ_i exp(−s_i)·L_i + s_i`` with one learnable s_i per active term, initialised to 0.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from methods import register_method
from methods._rdb_layers import (
    AdaptedMLP,
    BottleneckAdapter,
    CosineClassifier,
    HierarchicalAttention,
    SharedInteraction,
    VisualEnhancementMixer,
    lambda_init_for_depth,
)
from methods.base import Batch, Method, MethodConfig, MethodContext, StepOutput, info_nce
from rsitr_bench.errors import ConfigError, UserError

_logger = logging.getLogger(__name__)

LOSS_TERMS = ("alignment", "classification", "consistency")
SHARED_MODULE = "rdb_shared"
HEAD_MODULE = "rdb_head"
LOSS_WEIGHTS_MODULE = "rdb_loss_weights"
ADAPTER_MARKER = ".rdb_adapter."
TEACHER_PREFIX = "ema_teacher."


@dataclass
class RdbConfig(MethodConfig):
    """Settings of rdb. A default marked "harness default" is this harness's choice, because the paper gives none."""

    bottleneck_dim: int = field(
        default=64, metadata={"help": "adapter bottleneck width in features (harness default, because the paper gives no size)"}
    )
    heads: int = field(
        default=4,
        metadata={
            "help": "attention heads inside the bottleneck. Differential attention needs bottleneck_dim divisible "
            "by 2 × heads (harness default)"
        },
    )
    layers: list[int] = field(
        default_factory=list,
        metadata={
            "help": "indices of the transformer blocks that get adapters in both encoders, 0 = first, negative "
            "counts from the end. Empty list: every block (harness default)"
        },
    )
    scale: float = field(
        default=0.1, metadata={"help": "factor on the adapter output added to the MLP output (harness default)"}
    )
    dropout: float = field(
        default=0.1, metadata={"help": "dropout probability before the up-projection (harness default)"}
    )
    lambda_init: str = field(
        default="depth",
        metadata={
            "help": "initial λ of differential attention: 'depth' uses DIFF Transformer's 0.8 − 0.6·exp(−0.3·(l − 1)) "
            "for block l counted from 1, 'constant' uses lambda_init_value in every block (harness default: depth)"
        },
    )
    lambda_init_value: float = field(
        default=0.8, metadata={"help": "λ_init of every block when lambda_init='constant' (harness default)"}
    )
    group_size: int = field(
        default=4,
        metadata={"help": "tokens per phrase window in the text adapter's hierarchical attention (harness default)"},
    )
    vea: bool = field(
        default=True,
        metadata={"help": "Visual Enhancement Adapter (differential attention) on the image side. false: plain bottleneck adapter"},
    )
    tsa: bool = field(
        default=True,
        metadata={"help": "Text Semantic Adapter (hierarchical attention) on the text side. false: plain bottleneck adapter"},
    )
    shared_layer: bool = field(
        default=True, metadata={"help": "shared interaction layer used by the adapters of both encoders"}
    )
    symmetric: bool = field(
        default=False,
        metadata={
            "help": "give the text encoder the image-side design (VEA, or plain when vea=false) instead of the TSA, "
            "so tsa has no effect. false: the paper's asymmetric adapters"
        },
    )
    alignment_loss: bool = field(default=True, metadata={"help": "cross-modal alignment term: symmetric InfoNCE"})
    classification_loss: bool = field(
        default=True, metadata={"help": "scene classification term: cross-entropy over the dataset's scene classes"}
    )
    consistency_loss: bool = field(
        default=True, metadata={"help": "EMA consistency term between the student and its mean teacher"}
    )
    classify_text: bool = field(
        default=False,
        metadata={"help": "also classify each caption's embedding with the image's scene label (harness default: false)"},
    )
    consistency_target: str = field(
        default="similarity",
        metadata={
            "help": "what the consistency term compares: 'similarity' (KL divergence between softmax similarity rows, "
            "both directions) or 'embedding' (squared distance between normalised embeddings) (harness default)"
        },
    )
    weighting: str = field(
        default="uncertainty",
        metadata={
            "help": "loss weighting: 'uncertainty' learns s_i in Σ exp(−s_i)·L_i + s_i (Kendall et al. 2018), "
            "'fixed' uses the *_weight settings"
        },
    )
    alignment_weight: float = field(default=1.0, metadata={"help": "weight of the alignment term when weighting='fixed'"})
    classification_weight: float = field(
        default=1.0, metadata={"help": "weight of the classification term when weighting='fixed'"}
    )
    consistency_weight: float = field(
        default=1.0, metadata={"help": "weight of the consistency term when weighting='fixed'"}
    )
    ema_momentum: float = field(
        default=0.999,
        metadata={"help": "EMA momentum m of the teacher per optimizer step: teacher = m·teacher + (1 − m)·student (harness default)"},
    )
    label_fallback: str = field(
        default="error",
        metadata={
            "help": "when classification_loss is on and the dataset has no scene labels: 'error' stops the run, "
            "'retrieval_only' drops the classification term with a warning"
        },
    )


_CHOICES = {
    "lambda_init": ("depth", "constant"),
    "consistency_target": ("similarity", "embedding"),
    "weighting": ("uncertainty", "fixed"),
    "label_fallback": ("error", "retrieval_only"),
}


def validate_config(config: RdbConfig) -> None:
    """Raise ConfigError naming the first invalid setting and its valid values."""
    for name, choices in _CHOICES.items():
        value = getattr(config, name)
        if value not in choices:
            raise ConfigError(f"Invalid rdb setting {name} = {value!r}: expected one of {', '.join(choices)}.")
    checks = [
        (config.bottleneck_dim >= 1, "bottleneck_dim", "an integer >= 1"),
        (config.heads >= 1, "heads", "an integer >= 1"),
        (0.0 <= config.dropout < 1.0, "dropout", "a probability in [0, 1)"),
        (config.group_size >= 1, "group_size", "an integer >= 1"),
        (0.0 <= config.ema_momentum < 1.0, "ema_momentum", "a number in [0, 1)"),
        (config.alignment_weight >= 0, "alignment_weight", "a number >= 0"),
        (config.classification_weight >= 0, "classification_weight", "a number >= 0"),
        (config.consistency_weight >= 0, "consistency_weight", "a number >= 0"),
    ]
    for ok, name, expected in checks:
        if not ok:
            raise ConfigError(f"Invalid rdb setting {name} = {getattr(config, name)!r}: expected {expected}.")

    designs = adapter_designs(config)
    if "vea" in designs.values() and config.bottleneck_dim % (2 * config.heads) != 0:
        raise ConfigError(
            f"Invalid rdb settings bottleneck_dim = {config.bottleneck_dim} with heads = {config.heads}: differential "
            f"attention needs bottleneck_dim divisible by 2 × heads = {2 * config.heads}. Change one of them."
        )
    if "tsa" in designs.values() and config.bottleneck_dim % config.heads != 0:
        raise ConfigError(
            f"Invalid rdb settings bottleneck_dim = {config.bottleneck_dim} with heads = {config.heads}: "
            "bottleneck_dim must be divisible by heads. Change one of them."
        )
    if not (config.alignment_loss or config.classification_loss or config.consistency_loss):
        raise ConfigError(
            "Invalid rdb settings: alignment_loss, classification_loss and consistency_loss are all false, "
            "so nothing would train. Turn at least one on."
        )


# Model surgery ----------------------------------------------------------------------------


def image_blocks(model: nn.Module) -> nn.ModuleList:
    """Return the residual attention blocks of the image encoder."""
    blocks = getattr(getattr(getattr(model, "visual", None), "transformer", None), "resblocks", None)
    if blocks is None:
        raise UserError(
            f"rdb needs a ViT image encoder with transformer.resblocks, but {type(getattr(model, 'visual', model)).__name__} "
            "has none. Use an open_clip ViT architecture such as ViT-B-32."
        )
    return blocks


def text_blocks(model: nn.Module) -> tuple[nn.ModuleList, bool]:
    """Return the residual attention blocks of the text encoder and whether its attention is causal."""
    if hasattr(model, "token_embedding") and hasattr(model, "transformer"):
        return model.transformer.resblocks, getattr(model, "attn_mask", None) is not None
    text = getattr(model, "text", None)
    if text is not None and hasattr(getattr(text, "transformer", None), "resblocks"):
        # NOTE: towers with a padding mask (use_pad_mask) apply it in the block's attention
        # only. The adapters here see padding tokens unless the tower is causal.
        return text.transformer.resblocks, getattr(text, "attn_mask", None) is not None
    raise UserError(
        f"rdb needs an open_clip transformer text encoder, but {type(model).__name__} has none. "
        "Use an open_clip CLIP architecture such as ViT-B-32."
    )


def resolve_layers(requested: list[int], depth: int, encoder: str) -> list[int]:
    """Turn the ``layers`` setting into sorted block indices of one encoder."""
    if not requested:
        return list(range(depth))
    resolved = set()
    for index in requested:
        if not -depth <= index < depth:
            raise ConfigError(
                f"Invalid rdb setting layers = {requested}: the {encoder} encoder has {depth} blocks, so indices "
                f"range from {-depth} to {depth - 1}."
            )
        resolved.add(index % depth)
    return sorted(resolved)


def build_adapter(
    config: RdbConfig,
    design: str,
    width: int,
    depth: int,
    causal: bool,
    shared: SharedInteraction | None,
) -> BottleneckAdapter:
    """Build one adapter of ``design`` ('vea', 'tsa' or 'plain') for the block at 1-based ``depth``."""
    mixer: nn.Module | None = None
    if design == "vea":
        if config.lambda_init == "depth":
            lambda_init = lambda_init_for_depth(depth)
        else:
            lambda_init = config.lambda_init_value
        mixer = VisualEnhancementMixer(config.bottleneck_dim, config.heads, lambda_init, causal)
    elif design == "tsa":
        mixer = HierarchicalAttention(config.bottleneck_dim, config.heads, config.group_size, causal)
    return BottleneckAdapter(width, config.bottleneck_dim, mixer, shared, config.scale, config.dropout)


def adapter_designs(config: RdbConfig) -> dict[str, str]:
    """Return the adapter design of each encoder: 'vea', 'tsa' or 'plain'."""
    image = "vea" if config.vea else "plain"
    if config.symmetric:
        return {"image": image, "text": image}
    return {"image": image, "text": "tsa" if config.tsa else "plain"}


def insert_adapters(
    model: nn.Module, config: RdbConfig, shared: SharedInteraction | None
) -> dict[str, list[BottleneckAdapter]]:
    """Replace the MLP of every chosen block of both encoders with an ``AdaptedMLP``."""
    designs = adapter_designs(config)
    text, text_causal = text_blocks(model)
    encoders = {"image": (image_blocks(model), False), "text": (text, text_causal)}

    inserted: dict[str, list[BottleneckAdapter]] = {}
    for encoder, (blocks, causal) in encoders.items():
        inserted[encoder] = []
        for index in resolve_layers(config.layers, len(blocks), encoder):
            block = blocks[index]
            if not isinstance(block.mlp, nn.Sequential) or not hasattr(block.mlp, "c_fc"):
                raise UserError(
                    f"rdb cannot adapt block {index} of the {encoder} encoder: its mlp is "
                    f"{type(block.mlp).__name__}, not open_clip's Sequential(c_fc, gelu, c_proj). "
                    "Use an open_clip CLIP architecture with standard transformer blocks, such as ViT-B-32."
                )
            reference = block.mlp.c_fc.weight
            adapter = build_adapter(config, designs[encoder], reference.shape[1], index + 1, causal, shared)
            adapter.to(device=reference.device, dtype=reference.dtype)
            block.mlp = AdaptedMLP(block.mlp, adapter)
            inserted[encoder].append(adapter)
    return inserted


# Loss terms -------------------------------------------------------------------------------


def combine_losses(
    terms: dict[str, torch.Tensor],
    present: dict[str, bool],
    log_variances: nn.ParameterDict | None,
    fixed_weights: dict[str, float],
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Return the weighted total and the effective weight of each term.

    With ``log_variances`` the total is Σ exp(−s_i)·L_i + s_i (Kendall et al., CVPR 2018),
    otherwise Σ w_i·L_i. A term that is not present in this batch contributes zero but stays
    in the graph, so its parameters still get a (zero) gradient.
    """
    total = None
    weights = {}
    for name, value in terms.items():
        if log_variances is not None:
            log_variance = log_variances[name]
            weight = torch.exp(-log_variance)
            term = weight * value + log_variance
        else:
            weight = torch.tensor(fixed_weights[name], device=value.device)
            term = weight * value
        if not present.get(name, True):
            term = term * 0.0
        weights[name] = weight.detach()
        total = term if total is None else total + term
    if total is None:
        raise ValueError("no loss term to combine")
    return total, weights


def similarity_consistency(
    image: torch.Tensor, text: torch.Tensor, teacher_image: torch.Tensor, teacher_text: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """Return KL(teacher ‖ student) between softmax similarity rows, averaged over both retrieval directions."""
    student = scale * image @ text.t()
    teacher = scale * teacher_image @ teacher_text.t()
    image_to_text = F.kl_div(F.log_softmax(student, dim=1), F.log_softmax(teacher, dim=1), reduction="batchmean", log_target=True)
    text_to_image = F.kl_div(F.log_softmax(student.t(), dim=1), F.log_softmax(teacher.t(), dim=1), reduction="batchmean", log_target=True)
    return (image_to_text + text_to_image) / 2


def embedding_consistency(
    image: torch.Tensor, text: torch.Tensor, teacher_image: torch.Tensor, teacher_text: torch.Tensor
) -> torch.Tensor:
    """Return the mean squared distance between student and teacher embeddings, image and text averaged."""
    image_distance = (image - teacher_image).pow(2).sum(dim=-1).mean()
    text_distance = (text - teacher_text).pow(2).sum(dim=-1).mean()
    return (image_distance + text_distance) / 2


class _DualEncoder(nn.Module):
    """Both encoders as one forward, so that ``functional_call`` can run them with teacher weights."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.encode_image(images, normalize=True), self.model.encode_text(tokens, normalize=True)


# The method -------------------------------------------------------------------------------


@register_method
class RepresentationDiscrepancyBridging(Method):
    name = "rdb"
    config_class = RdbConfig
    description = "asymmetric adapters (differential attention for images, hierarchical attention for text) with a dual-task consistency loss"

    def __init__(self, config: RdbConfig | None = None):
        super().__init__(config)
        validate_config(self.config)
        self.loss_terms: list[str] = []
        self.num_classes: int | None = None
        self.tracked_names: list[str] = []
        """Parameters the EMA teacher follows: adapters and the shared layer."""
        self.teacher: dict[str, torch.Tensor] = {}

    # Model surgery ---------------------------------------------------------------------

    def apply(self, model: nn.Module, context: MethodContext) -> None:
        config = self.config
        model.requires_grad_(False)
        self.loss_terms = self._active_terms(context)

        shared = None
        if config.shared_layer:
            reference = image_blocks(model)[0].mlp.c_fc.weight
            shared = SharedInteraction(config.bottleneck_dim).to(device=reference.device, dtype=reference.dtype)
            model.add_module(SHARED_MODULE, shared)
        inserted = insert_adapters(model, config, shared)

        if "classification" in self.loss_terms:
            self.num_classes = len(context.class_names)
            model.add_module(HEAD_MODULE, CosineClassifier(self._embed_dim(model), self.num_classes))
        if config.weighting == "uncertainty":
            log_variances = nn.ParameterDict({name: nn.Parameter(torch.zeros(())) for name in self.loss_terms})
            model.add_module(LOSS_WEIGHTS_MODULE, log_variances)
        # The head and the loss weights stay float32 and move to the model's device.
        for name in (HEAD_MODULE, LOSS_WEIGHTS_MODULE):
            if hasattr(model, name):
                getattr(model, name).to(device=model.logit_scale.device)

        self.tracked_names = [
            name for name, parameter in model.named_parameters()
            if parameter.requires_grad and (ADAPTER_MARKER in name or name.startswith(f"{SHARED_MODULE}."))
        ]
        self.teacher = {}
        if "consistency" in self.loss_terms:
            parameters = dict(model.named_parameters())
            self.teacher = {name: parameters[name].detach().clone() for name in self.tracked_names}

        _logger.info(
            "rdb: %s adapters in %d image and %s adapters in %d text blocks, shared layer %s, loss terms %s, %s weighting",
            adapter_designs(config)["image"], len(inserted["image"]), adapter_designs(config)["text"],
            len(inserted["text"]), "on" if shared is not None else "off", ", ".join(self.loss_terms), config.weighting,
        )

    def _active_terms(self, context: MethodContext) -> list[str]:
        config = self.config
        switches = {
            "alignment": config.alignment_loss,
            "classification": config.classification_loss,
            "consistency": config.consistency_loss,
        }
        if config.classification_loss and not context.class_names:
            if config.label_fallback == "error":
                dataset = f"dataset {context.dataset_name!r}" if context.dataset_name else "the training dataset"
                raise UserError(
                    f"rdb's classification loss needs scene labels, but {dataset} has none "
                    "(labels come from scene-named image files such as airport_12.jpg in RSICD and RSITMD, or from "
                    "UCM's image numbers). Pass --set classification_loss=false to train without it, or "
                    "--set label_fallback=retrieval_only to drop it with a warning."
                )
            switches["classification"] = False
            remaining = [name for name in LOSS_TERMS if switches[name]]
            if not remaining:
                raise UserError(
                    "rdb has no loss term left: classification_loss is the only one on and the training dataset "
                    "has no scene labels. Pass --set alignment_loss=true or --set consistency_loss=true."
                )
            _logger.warning(
                "rdb: the training dataset has no scene labels, so the classification loss is dropped "
                "(label_fallback=retrieval_only). Training uses the %s terms only.",
                " and ".join(remaining),
            )
        return [name for name in LOSS_TERMS if switches[name]]

    @staticmethod
    def _embed_dim(model: nn.Module) -> int:
        output_dim = getattr(getattr(model, "visual", None), "output_dim", None)
        if output_dim is None:
            raise UserError(
                f"rdb cannot find the embedding size of {type(model).__name__} (visual.output_dim is missing). "
                "Use an open_clip CLIP architecture such as ViT-B-32."
            )
        return int(output_dim)

    # Training step ---------------------------------------------------------------------

    def forward(self, model: nn.Module, batch: Batch) -> StepOutput:
        image_features = model.encode_image(batch.images, normalize=True)
        text_features = model.encode_text(batch.tokens, normalize=True)
        logit_scale = model.logit_scale.exp()
        extras: dict[str, torch.Tensor] = {}

        if "classification" in self.loss_terms:
            head = getattr(model, HEAD_MODULE)
            extras["class_logits_image"] = head(image_features, logit_scale.detach())
            if self.config.classify_text:
                extras["class_logits_text"] = head(text_features, logit_scale.detach())
        if "consistency" in self.loss_terms:
            teacher_image, teacher_text = self.teacher_features(model, batch)
            extras["teacher_image_features"] = teacher_image
            extras["teacher_text_features"] = teacher_text
        return StepOutput(image_features, text_features, logit_scale, extras)

    @torch.no_grad()
    def teacher_features(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode the batch with the EMA teacher's adapter weights and the model's frozen weights."""
        self._move_teacher(model.logit_scale.device)
        weights = {f"model.{name}": tensor for name, tensor in self.teacher.items()}
        return functional_call(_DualEncoder(model), weights, (batch.images, batch.tokens), strict=False)

    def loss(self, model: nn.Module, batch: Batch, output: StepOutput) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        present: dict[str, bool] = {}
        if "alignment" in self.loss_terms:
            terms["alignment"] = info_nce(output.image_features, output.text_features, output.logit_scale)
        if "classification" in self.loss_terms:
            terms["classification"], present["classification"] = self._classification_loss(batch, output)
        if "consistency" in self.loss_terms:
            terms["consistency"] = self._consistency_loss(output)

        log_variances = getattr(model, LOSS_WEIGHTS_MODULE) if self.config.weighting == "uncertainty" else None
        fixed_weights = {
            "alignment": self.config.alignment_weight,
            "classification": self.config.classification_weight,
            "consistency": self.config.consistency_weight,
        }
        total, weights = combine_losses(terms, present, log_variances, fixed_weights)
        if "alignment" not in terms:
            # Only InfoNCE trains the temperature. Without it the temperature gets a zero
            # gradient, which keeps it in the graph for the loop's first-step check.
            total = total + 0.0 * output.logit_scale.sum()

        logged = {"loss": total}
        for name, value in terms.items():
            logged[name] = value.detach()
            logged[f"weight_{name}"] = weights[name]
        return logged

    def _classification_loss(self, batch: Batch, output: StepOutput) -> tuple[torch.Tensor, bool]:
        """Return the cross-entropy over labelled samples and whether the batch had any."""
        logits = [output.extras["class_logits_image"]]
        if "class_logits_text" in output.extras:
            logits.append(output.extras["class_logits_text"])
        if batch.labels is None:
            return sum(part.sum() for part in logits) * 0.0, False

        labels = batch.labels.long()
        invalid = (labels < -1) | (labels >= self.num_classes)
        if bool(invalid.any()):
            bad = labels[invalid][:5].tolist()
            raise ValueError(
                f"rdb got scene labels {bad} outside [-1, {self.num_classes - 1}]. Labels must index the "
                f"{self.num_classes} classes of MethodContext.class_names, with -1 for unknown."
            )
        if not bool((labels >= 0).any()):
            return sum(part.sum() for part in logits) * 0.0, False
        losses = [F.cross_entropy(part.float(), labels, ignore_index=-1) for part in logits]
        return sum(losses) / len(losses), True

    def _consistency_loss(self, output: StepOutput) -> torch.Tensor:
        teacher_image = output.extras["teacher_image_features"].to(output.image_features.dtype)
        teacher_text = output.extras["teacher_text_features"].to(output.text_features.dtype)
        if self.config.consistency_target == "embedding":
            return embedding_consistency(output.image_features, output.text_features, teacher_image, teacher_text)
        return similarity_consistency(
            output.image_features, output.text_features, teacher_image, teacher_text, output.logit_scale.detach()
        )

    def on_step_end(self, model: nn.Module, step: int) -> None:
        if not self.teacher:
            return
        self.update_teacher(model)

    @torch.no_grad()
    def update_teacher(self, model: nn.Module) -> None:
        """Set teacher = m·teacher + (1 − m)·student for every tracked parameter."""
        momentum = self.config.ema_momentum
        parameters = dict(model.named_parameters())
        self._move_teacher(model.logit_scale.device)
        for name, teacher in self.teacher.items():
            student = parameters[name].detach()
            teacher.copy_(momentum * teacher + (1.0 - momentum) * student)

    def _move_teacher(self, device: torch.device) -> None:
        # The model moves to its device after apply, and checkpoints load on the CPU.
        for name, tensor in self.teacher.items():
            if tensor.device != device:
                self.teacher[name] = tensor.to(device)

    # Checkpoints -----------------------------------------------------------------------

    def extra_state(self) -> dict[str, torch.Tensor]:
        return {f"{TEACHER_PREFIX}{name}": tensor for name, tensor in self.teacher.items()}

    def load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        expected = {f"{TEACHER_PREFIX}{name}" for name in self.teacher}
        missing = sorted(expected - set(state))
        unexpected = sorted(set(state) - expected)
        if missing or unexpected:
            raise KeyError(
                f"rdb EMA teacher state does not match this configuration: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}. Load a checkpoint written with the same rdb settings."
            )
        for key, tensor in state.items():
            name = key[len(TEACHER_PREFIX):]
            self.teacher[name] = tensor.detach().clone().to(self.teacher[name].device, self.teacher[name].dtype)
