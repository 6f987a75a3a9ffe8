"""Tests of the adapter, mrs_adapter and peft:<type> methods on real open_clip models.

Behaviour is checked on rsitr-tiny with random weights. Parameter counts of ViT-B-32 need
only its shapes, so that model is built on the meta device, which allocates no memory.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

import open_clip
import pytest
import torch
from torch import nn

import methods
from methods.adapter import AdapterConfig
from methods.base import Batch, Method, MethodConfig, MethodContext
from methods.mrs_adapter import MrsAdapterConfig, hardest_negative_triplet
from methods.peft_generic import SUPPORTED_TYPES, PeftMethodConfig
from rsitr_bench.config import parse_assignment, update_dataclass
from rsitr_bench.errors import ConfigError
from rsitr_bench.models import create_model

CONTEXT = MethodContext(model_name="rsitr-tiny", class_names=None, total_steps=0, seed=0)
BOTTLENECK = 64


@pytest.fixture(scope="module")
def tiny_reference() -> nn.Module:
    """Return a frozen rsitr-tiny model in eval mode, which tests adapt as deep copies.

    It is frozen like the adapted copies because nn.MultiheadAttention (torch 2.14) takes
    another kernel when its weights require grad, which changes text features by a few 1e-6.
    """
    torch.manual_seed(0)
    model = create_model("rsitr-tiny").model
    model.requires_grad_(False)
    return model.eval()


@pytest.fixture(scope="module")
def vit_b_32() -> nn.Module:
    with torch.device("meta"):
        return open_clip.create_model("ViT-B-32", device="meta")


@pytest.fixture(scope="module")
def batch() -> Batch:
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(4, 3, 64, 64, generator=generator)
    tokens = torch.randint(1, 49406, (4, 32), generator=generator)
    return Batch(images=images, tokens=tokens)


def build_method(name: str, **settings) -> Method:
    """Create a registered method with ``settings`` applied as ``--set`` would apply them."""
    method_class, _ = methods.get_method_class(name)
    config = update_dataclass(method_class.config_class(), settings)
    return methods.create_method(name, config)


def adapted_copy(model: nn.Module, name: str, context: MethodContext = CONTEXT, **settings) -> tuple[Method, nn.Module]:
    method = build_method(name, **settings)
    adapted = copy.deepcopy(model)
    method.apply(adapted, context)
    method.check_trainable(adapted)
    return method, adapted


def trainable_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def train_steps(method: Method, model: nn.Module, batch: Batch, steps: int) -> dict[str, torch.Tensor | None]:
    """Run ``steps`` AdamW steps the way the training loop does and return the first step's gradients."""
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.0)
    first_gradients: dict[str, torch.Tensor | None] = {}
    for step in range(steps):
        output = method.forward(model, batch)
        loss = method.loss(model, batch, output)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if step == 0:
            first_gradients = {
                name: None if p.grad is None else p.grad.clone()
                for name, p in model.named_parameters()
                if p.requires_grad
            }
        optimizer.step()
        method.on_step_end(model, step)
    return first_gradients


def adapter_formula(widths_and_blocks: list[tuple[int, int]], bottleneck: int) -> int:
    """Bottleneck adapter parameters: 2·d·b + b + d per block of width d."""
    return sum(blocks * (2 * width * bottleneck + bottleneck + width) for width, blocks in widths_and_blocks)


ADAPTER_SETTINGS = [
    {},
    {"branch_input": "residual_stream"},
    {"placement": "serial"},
    {"activation": "gelu", "dropout": 0.0},
]
ZERO_INIT_CASES = [("adapter", settings) for settings in ADAPTER_SETTINGS] + [
    ("mrs_adapter", {}),
    ("mrs_adapter", {"loss": "hmmc"}),
]


# Parameter counts ----------------------------------------------------------------------


@pytest.mark.parametrize("placement", ["parallel", "serial"])
def test_adapter_count_vit_b_32(vit_b_32: nn.Module, placement: str) -> None:
    _, model = adapted_copy(vit_b_32, "adapter", placement=placement)

    expected = adapter_formula([(768, 12), (512, 12)], BOTTLENECK)
    assert expected == 1_982_976
    assert trainable_count(model) == expected


def test_mrs_adapter_count_vit_b_32(vit_b_32: nn.Module) -> None:
    _, model = adapted_copy(vit_b_32, "mrs_adapter")

    down = (768 * 64 + 64) + (512 * 64 + 64)
    up = (64 * 704 + 704) + (64 * 448 + 448) + (64 * 64 + 64)
    assert down + up == 161_088
    assert trainable_count(model) == 161_088
    assert all(name.startswith("mrs_adapter.") for name, p in model.named_parameters() if p.requires_grad)


@pytest.mark.parametrize(
    ("name", "settings", "expected"),
    [
        ("adapter", {}, adapter_formula([(128, 8)], BOTTLENECK)),
        ("adapter", {"encoders": ["image"]}, adapter_formula([(128, 4)], BOTTLENECK)),
        ("adapter", {"bottleneck_dim": 8}, adapter_formula([(128, 8)], 8)),
        ("mrs_adapter", {}, 2 * (128 * 64 + 64) + 2 * (64 * 64 + 64) + (64 * 64 + 64)),
    ],
)
def test_counts_rsitr_tiny(tiny_reference: nn.Module, name: str, settings: dict, expected: int) -> None:
    _, model = adapted_copy(tiny_reference, name, **settings)

    assert trainable_count(model) == expected


def test_adapter_keeps_mlp_key_names(tiny_reference: nn.Module) -> None:
    _, model = adapted_copy(tiny_reference, "adapter")

    original_keys = set(tiny_reference.state_dict())
    adapted_keys = set(model.state_dict())
    assert original_keys <= adapted_keys
    assert all(".mlp.adapter." in key for key in adapted_keys - original_keys)


# Behaviour before and during training --------------------------------------------------


@pytest.mark.parametrize(("name", "settings"), ZERO_INIT_CASES)
def test_zero_init_keeps_outputs(tiny_reference: nn.Module, batch: Batch, name: str, settings: dict) -> None:
    _, model = adapted_copy(tiny_reference, name, **settings)
    model.eval()

    with torch.no_grad():
        images = model.encode_image(batch.images)
        texts = model.encode_text(batch.tokens)
        expected_images = tiny_reference.encode_image(batch.images)
        expected_texts = tiny_reference.encode_text(batch.tokens)
    assert torch.allclose(images, expected_images)
    assert torch.allclose(texts, expected_texts)


@pytest.mark.parametrize(("name", "settings"), ZERO_INIT_CASES)
def test_training_step_gradients(tiny_reference: nn.Module, batch: Batch, name: str, settings: dict) -> None:
    method, model = adapted_copy(tiny_reference, name, **settings)
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    frozen = {key: value.clone() for key, value in model.state_dict().items() if key not in trainable}

    gradients = train_steps(method, model, batch, steps=3)

    missing = [n for n, gradient in gradients.items() if gradient is None]
    assert not missing, f"trainable parameters without a gradient: {missing}"
    # The up-projections start at zero, so the down-projections get an exactly zero gradient
    # in the first step and move only from the second step on.
    up_weights = [n for n in gradients if (".up." in n or "up_shared" in n) and n.endswith("weight")]
    down_weights = [n for n in gradients if ".down." in n and n.endswith("weight")]
    assert up_weights
    assert down_weights
    assert all(gradients[n].abs().sum() > 0 for n in up_weights)
    assert all(gradients[n].abs().sum() == 0 for n in down_weights)

    current = dict(model.named_parameters())
    unmoved = [n for n, before in trainable.items() if torch.equal(current[n].detach(), before)]
    assert not unmoved, f"trainable parameters unchanged after 3 steps: {unmoved}"
    state = model.state_dict()
    changed = [key for key, before in frozen.items() if not torch.equal(state[key], before)]
    assert not changed, f"frozen tensors changed: {changed}"


def test_trainable_state_round_trip(tiny_reference: nn.Module, batch: Batch) -> None:
    method, model = adapted_copy(tiny_reference, "mrs_adapter")
    train_steps(method, model, batch, steps=2)
    state = method.trainable_state_dict(model)

    restored_method, restored = adapted_copy(tiny_reference, "mrs_adapter")
    restored_method.load_trainable_state_dict(restored, state)

    assert set(state) == {n for n, p in restored.named_parameters() if p.requires_grad}
    model.eval()
    restored.eval()
    with torch.no_grad():
        assert torch.equal(model.encode_image(batch.images), restored.encode_image(batch.images))
        assert torch.equal(model.encode_text(batch.tokens), restored.encode_text(batch.tokens))


def test_adapter_state_round_trip(tiny_reference: nn.Module, batch: Batch) -> None:
    method, model = adapted_copy(tiny_reference, "adapter", placement="serial")
    train_steps(method, model, batch, steps=2)
    state = method.trainable_state_dict(model)

    restored_method, restored = adapted_copy(tiny_reference, "adapter", placement="serial")
    restored_method.load_trainable_state_dict(restored, state)

    parameters = dict(restored.named_parameters())
    assert all(torch.equal(parameters[name], tensor) for name, tensor in state.items())


def test_state_rejects_unadapted_model(tiny_reference: nn.Module) -> None:
    method, model = adapted_copy(tiny_reference, "adapter")
    state = method.trainable_state_dict(model)

    with pytest.raises(KeyError, match="does not exist in the model"):
        method.load_trainable_state_dict(copy.deepcopy(tiny_reference), state)


# Configuration errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"placement": "middle"}, "placement 'middle'"),
        ({"branch_input": "x"}, "branch_input 'x'"),
        ({"activation": "tanh"}, "activation 'tanh'"),
        ({"encoders": ["audio"]}, "encoders"),
        ({"bottleneck_dim": 0}, "bottleneck_dim 0"),
        ({"dropout": 1.0}, "dropout 1.0"),
    ],
)
def test_adapter_invalid_settings(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_method("adapter", **settings)


def test_mrs_shared_dim_too_wide(tiny_reference: nn.Module) -> None:
    with pytest.raises(ConfigError, match="shared_dim 128"):
        adapted_copy(tiny_reference, "mrs_adapter", shared_dim=128)


def test_mrs_invalid_loss() -> None:
    with pytest.raises(ConfigError, match="loss 'triplet'"):
        build_method("mrs_adapter", loss="triplet")


# HMMC ----------------------------------------------------------------------------------


def test_triplet_two_by_two() -> None:
    images = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    texts = torch.tensor([[0.6, 0.8], [0.8, 0.6]])
    # Similarities [[0.6, 0.8], [0.8, 0.6]]: each of the 2 rows and 2 columns has the
    # hinge 0.2 + 0.8 - 0.6 = 0.4, so the sum is 1.6.
    loss = hardest_negative_triplet(images, texts, margin=0.2)

    assert torch.isclose(loss, torch.tensor(1.6))


def test_triplet_takes_hardest_negative() -> None:
    images = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    texts = torch.tensor([[0.8, 0.6], [0.0, 1.0], [1.0, 0.0]])
    # Similarities (rows: images, columns: texts), with the positives 0.8, 1.0 and 0.6 on the diagonal:
    #   [[0.80, 0.0, 1.0],
    #    [0.60, 1.0, 0.0],
    #    [0.96, 0.8, 0.6]]
    # Image rows, hardest text:    0.2 + 1.0 - 0.8 = 0.4,   0,   0.2 + 0.96 - 0.6 = 0.56
    # Text columns, hardest image: 0.2 + 0.96 - 0.8 = 0.36,  0,   0.2 + 1.0 - 0.6 = 0.6
    # The sum is 0.96 + 0.96 = 1.92. Summing every violating negative would give 2.32 instead.
    loss = hardest_negative_triplet(images, texts, margin=0.2)

    assert torch.isclose(loss, torch.tensor(1.92))


def test_hmmc_loss_sums_three_terms(tiny_reference: nn.Module, batch: Batch) -> None:
    method, model = adapted_copy(tiny_reference, "mrs_adapter", loss="hmmc")
    model.train()

    output = method.forward(model, batch)
    terms = method.loss(model, batch, output)

    image, text = output.image_features, output.text_features
    expected = {
        "cross_modal": hardest_negative_triplet(image, text, 0.2),
        "intra_image": hardest_negative_triplet(image, output.extras["image_features_augmented"], 0.2),
        "intra_text": hardest_negative_triplet(text, output.extras["text_features_augmented"], 0.2),
    }
    for name, value in expected.items():
        assert torch.isclose(terms[name], value.detach())
    assert torch.isclose(terms["loss"], sum(expected.values()))


def test_hmmc_dropout_only_in_augmented_pass(tiny_reference: nn.Module, batch: Batch) -> None:
    method, model = adapted_copy(tiny_reference, "mrs_adapter", loss="hmmc")
    model.train()
    reference = copy.deepcopy(tiny_reference).train()

    with torch.no_grad():
        output = method.forward(model, batch)
        expected_images = reference.encode_image(batch.images, normalize=True)
        expected_texts = reference.encode_text(batch.tokens, normalize=True)

    # The zero up-projection hides the adapter's own dropout, so the clean pass equals the
    # unmodified model and only the input dropout can change the augmented pass.
    assert torch.allclose(output.image_features, expected_images)
    assert torch.allclose(output.text_features, expected_texts)
    assert not torch.allclose(output.extras["image_features_augmented"], expected_images)
    assert not torch.allclose(output.extras["text_features_augmented"], expected_texts)


def test_hmmc_does_not_use_temperature(tiny_reference: nn.Module) -> None:
    hmmc, _ = adapted_copy(tiny_reference, "mrs_adapter", loss="hmmc")
    info_nce, _ = adapted_copy(tiny_reference, "mrs_adapter")

    assert hmmc.uses_temperature() is False
    assert info_nce.uses_temperature() is True


# peft:<type> ---------------------------------------------------------------------------


def adalora_context(total_steps: int) -> MethodContext:
    return dataclasses.replace(CONTEXT, total_steps=total_steps)


@pytest.mark.parametrize("peft_type", list(SUPPORTED_TYPES))
def test_peft_type_trains(tiny_reference: nn.Module, batch: Batch, peft_type: str) -> None:
    method, model = adapted_copy(tiny_reference, f"peft:{peft_type}", context=adalora_context(10))
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    frozen = {key: value.clone() for key, value in model.state_dict().items() if key not in trainable}

    gradients = train_steps(method, model, batch, steps=1)

    assert trainable
    assert all(gradient is not None for gradient in gradients.values())
    current = dict(model.named_parameters())
    assert any(not torch.equal(current[n].detach(), before) for n, before in trainable.items())
    state = model.state_dict()
    assert all(torch.equal(state[key], before) for key, before in frozen.items())


def test_ia3_count_rsitr_tiny(tiny_reference: nn.Module) -> None:
    _, model = adapted_copy(tiny_reference, "peft:ia3")

    # One vector of the 512 hidden units on c_fc's output and one on c_proj's input, in 8 blocks.
    assert trainable_count(model) == 8 * (512 + 512)


def test_peft_options_inline_table() -> None:
    key, value = parse_assignment("options={r=4, alpha=8}")
    method = build_method("peft:loha", **{key: value})

    peft_config = method.build_peft_config(CONTEXT)

    assert peft_config.r == 4
    assert peft_config.alpha == 8


def test_peft_unknown_type_lists_supported() -> None:
    with pytest.raises(ConfigError, match="Unknown peft type 'nosuch'") as raised:
        methods.create_method("peft:nosuch")

    for name in SUPPORTED_TYPES:
        assert f"peft:{name}" in str(raised.value)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("peft:vera", "keeps state on the peft tuner"),
        ("peft:prompt_tuning", "prompt-learning"),
        ("peft:lora", "use the 'lora' method"),
    ],
)
def test_peft_unsupported_type_reason(name: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        methods.create_method(name)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"targets": ["attn"]}, "cannot adapt \\['attn'\\]"),
        ({"options": {"nosuch": 1}}, "Unknown option"),
        ({"options": {"target_modules": "c_fc"}}, "the harness sets them"),
        ({"options": 4}, "expected a TOML inline table"),
        ({"encoders": ["audio"]}, "encoders"),
    ],
)
def test_peft_invalid_settings(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_method("peft:ia3", **settings)


def test_peft_rejects_bias_training(tiny_reference: nn.Module) -> None:
    method = build_method("peft:adalora", options={"bias": "all", "total_step": 10})

    with pytest.raises(ConfigError, match="train pretrained parameters"):
        method.apply(copy.deepcopy(tiny_reference), CONTEXT)


def test_adalora_needs_total_step(tiny_reference: nn.Module) -> None:
    method = build_method("peft:adalora")

    with pytest.raises(ConfigError, match="total_step=N"):
        method.apply(copy.deepcopy(tiny_reference), CONTEXT)


def test_adalora_total_step_from_context() -> None:
    method = build_method("peft:adalora")

    assert method.build_peft_config(adalora_context(25)).total_step == 25


def test_adalora_masks_and_saves_ranks(tiny_reference: nn.Module, batch: Batch) -> None:
    options = {"total_step": 4, "init_r": 4, "target_r": 2, "tinit": 0, "tfinal": 0, "deltaT": 1}
    method, model = adapted_copy(tiny_reference, "peft:adalora", options=options)

    train_steps(method, model, batch, steps=2)

    singular_values = [p for n, p in model.named_parameters() if "lora_E" in n]
    assert sum(int((p == 0).sum()) for p in singular_values) > 0
    state = method.trainable_state_dict(model)
    assert any(key.startswith("method_extra.adalora.rank_pattern.") for key in state)

    restored_method, restored = adapted_copy(tiny_reference, "peft:adalora", options=options)
    restored_method.load_trainable_state_dict(restored, state)
    assert restored_method.extra_state().keys() == method.extra_state().keys()
    for key, tensor in method.extra_state().items():
        assert torch.equal(restored_method.extra_state()[key], tensor)


# Registration --------------------------------------------------------------------------


@dataclass
class _HelpedConfig(MethodConfig):
    size: int = field(default=1, metadata={"help": "a size"})


@dataclass
class _UnhelpedConfig(MethodConfig):
    size: int = 1


def throwaway_method(method_name: str, config: type[MethodConfig] = _HelpedConfig) -> type[Method]:
    return type("Throwaway", (Method,), {"name": method_name, "config_class": config})


def test_methods_registered() -> None:
    names = methods.method_names()

    assert "adapter" in names
    assert "mrs_adapter" in names
    assert "peft:<type>" in names
    assert isinstance(methods.create_method("peft:ia3").config, PeftMethodConfig)
    assert isinstance(methods.create_method("adapter").config, AdapterConfig)
    assert isinstance(methods.create_method("mrs_adapter").config, MrsAdapterConfig)


def test_duplicate_name_rejected() -> None:
    methods.load_builtin_methods()
    name = "zz_throwaway_adapter_test"
    try:
        methods.register_method(throwaway_method(name))
        with pytest.raises(ValueError, match="already registered"):
            methods.register_method(throwaway_method(name))
    finally:
        methods._REGISTRY.pop(name, None)


def test_builtin_name_rejected() -> None:
    methods.load_builtin_methods()

    with pytest.raises(ValueError, match="already registered"):
        methods.register_method(throwaway_method("adapter"))
    with pytest.raises(ValueError, match="already registered"):
        methods.register_method_family("peft")(throwaway_method("peft"))


@pytest.mark.parametrize("bad_name", ["Adapter", "2adapter", "my-adapter", "peft:x", ""])
def test_malformed_name_rejected(bad_name: str) -> None:
    with pytest.raises(ValueError, match="invalid method name"):
        methods.register_method(throwaway_method(bad_name))

    assert bad_name not in methods._REGISTRY


def test_missing_help_rejected() -> None:
    name = "zz_throwaway_unhelped"

    with pytest.raises(ValueError, match="has no help text"):
        methods.register_method(throwaway_method(name, _UnhelpedConfig))

    assert name not in methods._REGISTRY
