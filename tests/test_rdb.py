"""Tests of the rdb method on open_clip's rsitr-tiny architecture with random weights."""

from __future__ import annotations

import copy
import io
import logging
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from methods import create_method
from methods._rdb_layers import (
    BottleneckAdapter,
    DifferentialAttention,
    HierarchicalAttention,
    VisualEnhancementMixer,
    differential_attention,
    lambda_init_for_depth,
)
from methods.base import Batch, MethodContext
from methods.rdb import RdbConfig, RepresentationDiscrepancyBridging, combine_losses
from rsitr_bench.errors import ConfigError, UserError
from rsitr_bench.models import create_model

CLASSES = ["airport", "beach", "forest"]
CAPTIONS = ["many planes are parked at the airport", "waves reach a sandy beach", "dense green forest", "a road"]
BOTTLENECK = 64


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Run on one CPU thread: the models are tiny, and extra threads only contend with other processes."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def bundle():
    torch.manual_seed(0)
    return create_model("rsitr-tiny")


def build(bundle, class_names=CLASSES, **options) -> tuple[RepresentationDiscrepancyBridging, nn.Module]:
    """Return an rdb method applied to a fresh copy of the rsitr-tiny model."""
    model = copy.deepcopy(bundle.model)
    torch.manual_seed(1)
    method = create_method("rdb", RdbConfig(**options))
    method.apply(model, MethodContext("rsitr-tiny", class_names, 10, 0))
    model.logit_scale.requires_grad_(True)
    return method, model


def make_batch(bundle, labels: torch.Tensor | None = None) -> Batch:
    generator = torch.Generator().manual_seed(2)
    images = torch.randn(len(CAPTIONS), 3, 64, 64, generator=generator)
    if labels is None:
        labels = torch.tensor([0, -1, 2, 1])
    return Batch(images=images, tokens=bundle.tokenizer(CAPTIONS), labels=labels)


def trainable_count(model: nn.Module) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if p.requires_grad and name != "logit_scale")


def adapters(model: nn.Module, encoder: str) -> list[BottleneckAdapter]:
    tower = model.visual.transformer if encoder == "image" else model.transformer
    return [block.mlp.rdb_adapter for block in tower.resblocks if hasattr(block.mlp, "rdb_adapter")]


def activate_adapters(model: nn.Module) -> None:
    """Give every up-projection non-zero weights, so the adapters change the outputs."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for encoder in ("image", "text"):
            for adapter in adapters(model, encoder):
                adapter.up.weight.copy_(torch.randn(adapter.up.weight.shape, generator=generator) * 0.5)


def run_step(method, model, batch, optimizer=None, step: int = 0) -> dict[str, torch.Tensor]:
    output = method.forward(model, batch)
    terms = method.loss(model, batch, output)
    if optimizer is not None:
        optimizer.zero_grad(set_to_none=True)
    terms["loss"].backward()
    if optimizer is not None:
        optimizer.step()
        method.on_step_end(model, step)
    return terms


def softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False) -> torch.Tensor:
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        length = q.shape[-2]
        future = torch.ones(length, length, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(future, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


# Differential attention -------------------------------------------------------------------


@pytest.mark.parametrize("causal", [False, True])
def test_differential_attention_lambda_zero(causal):
    generator = torch.Generator().manual_seed(0)
    q1, k1, q2, k2 = (torch.randn(2, 3, 5, 8, generator=generator) for _ in range(4))
    v = torch.randn(2, 3, 5, 16, generator=generator)

    out = differential_attention(q1, k1, q2, k2, v, 0.0, causal)

    torch.testing.assert_close(out, softmax_attention(q1, k1, v, causal))
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q1, k1, v, is_causal=causal))


def test_differential_attention_subtracts_second_map():
    generator = torch.Generator().manual_seed(1)
    q1, k1, q2, k2 = (torch.randn(2, 3, 5, 8, generator=generator) for _ in range(4))
    v = torch.randn(2, 3, 5, 16, generator=generator)

    out = differential_attention(q1, k1, q2, k2, v, 0.3)

    expected = softmax_attention(q1, k1, v) - 0.3 * softmax_attention(q2, k2, v)
    torch.testing.assert_close(out, expected)


def test_differential_module_lambda_zero_is_multi_head():
    torch.manual_seed(0)
    heads, dim = 4, BOTTLENECK
    module = DifferentialAttention(dim, heads, lambda_init=0.0)
    with torch.no_grad():
        for vector in (module.lambda_q1, module.lambda_k1, module.lambda_q2, module.lambda_k2):
            vector.zero_()
        module.head_norm.weight.uniform_(0.5, 1.5)
    x = torch.randn(2, 7, dim)

    assert module.lambda_value().item() == 0.0
    out = module(x)

    head_dim = dim // (2 * heads)
    q = module.q_proj(x).view(2, 7, 2 * heads, head_dim).transpose(1, 2)[:, 0::2]
    k = module.k_proj(x).view(2, 7, 2 * heads, head_dim).transpose(1, 2)[:, 0::2]
    v = module.v_proj(x).view(2, 7, heads, 2 * head_dim).transpose(1, 2)
    attended = softmax_attention(q, k, v)
    normed = attended * torch.rsqrt(attended.pow(2).mean(-1, keepdim=True) + 1e-5) * module.head_norm.weight
    expected = module.out_proj(normed.transpose(1, 2).reshape(2, 7, dim))
    torch.testing.assert_close(out, expected)


def test_differential_lambda_reparameterisation():
    torch.manual_seed(0)
    module = DifferentialAttention(BOTTLENECK, 4, lambda_init=0.5)

    expected = (
        torch.exp(module.lambda_q1 @ module.lambda_k1) - torch.exp(module.lambda_q2 @ module.lambda_k2) + 0.5
    )
    torch.testing.assert_close(module.lambda_value(), expected)


def test_lambda_init_depth_schedule(bundle):
    assert lambda_init_for_depth(1) == pytest.approx(0.2)
    assert lambda_init_for_depth(3) == pytest.approx(0.8 - 0.6 * math.exp(-0.6))

    _, model = build(bundle)
    for index, adapter in enumerate(adapters(model, "image")):
        assert adapter.mixer.attention.lambda_init == pytest.approx(lambda_init_for_depth(index + 1))

    _, constant = build(bundle, lambda_init="constant", lambda_init_value=0.6)
    for adapter in adapters(constant, "image"):
        assert adapter.mixer.attention.lambda_init == 0.6


def test_differential_rejects_indivisible_width():
    with pytest.raises(ValueError, match="divisible by 2 × heads"):
        DifferentialAttention(30, 4, lambda_init=0.2)


# Text Semantic Adapter --------------------------------------------------------------------


def _mixers(causal: bool) -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {
        "tsa": HierarchicalAttention(BOTTLENECK, 4, group_size=3, causal=causal),
        "vea": VisualEnhancementMixer(BOTTLENECK, 4, lambda_init=0.2, causal=causal),
    }


@pytest.mark.parametrize("design", ["tsa", "vea"])
@pytest.mark.parametrize("changed", [0, 4, 5, 9])
def test_causal_mixer_ignores_later_tokens(design, changed):
    mixer = _mixers(causal=True)[design]
    x = torch.randn(2, 11, BOTTLENECK, generator=torch.Generator().manual_seed(1))
    edited = x.clone()
    edited[:, changed] = torch.randn(2, BOTTLENECK, generator=torch.Generator().manual_seed(2))

    before, after = mixer(x), mixer(edited)

    torch.testing.assert_close(after[:, :changed], before[:, :changed], rtol=0, atol=1e-6)
    assert (after[:, changed:] - before[:, changed:]).abs().amax(dim=-1).min() > 1e-4


@pytest.mark.parametrize("design", ["tsa", "vea"])
def test_non_causal_mixer_reads_later_tokens(design):
    mixer = _mixers(causal=False)[design]
    x = torch.randn(2, 11, BOTTLENECK, generator=torch.Generator().manual_seed(1))
    edited = x.clone()
    edited[:, 9] = torch.randn(2, BOTTLENECK, generator=torch.Generator().manual_seed(2))

    assert (mixer(edited)[:, :9] - mixer(x)[:, :9]).abs().max() > 1e-4


def test_tsa_phrase_attention_matches_window_means():
    torch.manual_seed(0)
    mixer = HierarchicalAttention(BOTTLENECK, 4, group_size=3, causal=False)
    x = torch.randn(1, 7, BOTTLENECK)

    out = mixer._phrase_attention(x)

    summaries = torch.stack([x[0, 0:3].mean(0), x[0, 3:6].mean(0), x[0, 6:7].mean(0)]).unsqueeze(0)
    q = mixer._split_heads(mixer.phrase_q(x))
    k, v = (mixer._split_heads(part) for part in mixer.phrase_kv(summaries).chunk(2, dim=-1))
    expected = mixer.phrase_out(mixer._merge_heads(softmax_attention(q, k, v)))
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("symmetric", [False, True])
def test_text_encoder_ignores_tokens_after_end(bundle, symmetric):
    method, model = build(bundle, symmetric=symmetric)
    activate_adapters(model)
    model.eval()
    tokens = bundle.tokenizer(CAPTIONS)
    end = tokens.argmax(dim=-1)
    edited = tokens.clone()
    for row, position in enumerate(end.tolist()):
        edited[row, position + 1 :] = torch.randint(1, 1000, (tokens.shape[1] - position - 1,))

    for adapter in adapters(model, "text"):
        assert adapter.mixer.attention.causal if symmetric else adapter.mixer.causal
    with torch.no_grad():
        torch.testing.assert_close(model.encode_text(edited), model.encode_text(tokens), rtol=0, atol=1e-5)


# Zero initialisation and gradients --------------------------------------------------------


@pytest.mark.parametrize("symmetric", [False, True])
def test_zero_init_keeps_outputs(bundle, symmetric):
    original = copy.deepcopy(bundle.model).eval()
    method, model = build(bundle, symmetric=symmetric)
    model.eval()
    batch = make_batch(bundle)

    with torch.no_grad():
        assert torch.equal(model.encode_image(batch.images), original.encode_image(batch.images))
        assert torch.equal(model.encode_text(batch.tokens), original.encode_text(batch.tokens))
        activate_adapters(model)
        assert not torch.allclose(model.encode_image(batch.images), original.encode_image(batch.images))
        assert not torch.allclose(model.encode_text(batch.tokens), original.encode_text(batch.tokens))


def test_pretrained_parameter_names_unchanged(bundle):
    _, model = build(bundle)
    names = {name for name, _ in model.named_parameters()}

    assert set(dict(bundle.model.named_parameters())) <= names


def test_every_trainable_parameter_gets_gradient(bundle):
    method, model = build(bundle)
    frozen = {name: p.detach().clone() for name, p in model.named_parameters() if not p.requires_grad}
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    batch = make_batch(bundle)
    model.train()

    run_step(method, model, batch)
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []

    for step in range(3):
        run_step(method, model, batch, optimizer, step)
    parameters = dict(model.named_parameters())
    changed = [name for name, before in frozen.items() if not torch.equal(parameters[name], before)]
    assert changed == []
    assert all(adapter.up.weight.abs().sum() > 0 for adapter in adapters(model, "image") + adapters(model, "text"))


# Loss weighting ---------------------------------------------------------------------------


def test_uncertainty_weighting_formula():
    terms = {"alignment": torch.tensor(2.0), "classification": torch.tensor(3.0)}
    log_variances = nn.ParameterDict(
        {"alignment": nn.Parameter(torch.tensor(0.5)), "classification": nn.Parameter(torch.tensor(-0.2))}
    )

    total, weights = combine_losses(terms, {}, log_variances, {})
    total.backward()

    expected = math.exp(-0.5) * 2.0 + 0.5 + math.exp(0.2) * 3.0 - 0.2
    assert total.item() == pytest.approx(expected, rel=1e-6)
    assert weights["alignment"].item() == pytest.approx(math.exp(-0.5), rel=1e-6)
    assert log_variances["alignment"].grad.item() == pytest.approx(1 - math.exp(-0.5) * 2.0, rel=1e-6)
    assert log_variances["classification"].grad.item() == pytest.approx(1 - math.exp(0.2) * 3.0, rel=1e-6)


def test_fixed_weighting_formula():
    terms = {"alignment": torch.tensor(2.0), "consistency": torch.tensor(0.5)}

    total, _ = combine_losses(terms, {}, None, {"alignment": 1.0, "consistency": 4.0})

    assert total.item() == pytest.approx(4.0)


def test_absent_term_contributes_zero_gradient():
    value = torch.tensor(3.0, requires_grad=True)
    terms = {"alignment": torch.tensor(2.0), "classification": value * 1.0}
    log_variances = nn.ParameterDict(
        {"alignment": nn.Parameter(torch.tensor(0.0)), "classification": nn.Parameter(torch.tensor(0.7))}
    )

    total, _ = combine_losses(terms, {"classification": False}, log_variances, {})
    total.backward()

    assert total.item() == pytest.approx(2.0)
    assert log_variances["classification"].grad.item() == 0.0
    assert value.grad.item() == 0.0


def test_uncertainty_weights_learn_in_model(bundle):
    method, model = build(bundle)
    model.train()

    run_step(method, model, make_batch(bundle))

    for name in ("alignment", "classification", "consistency"):
        assert model.rdb_loss_weights[name].grad is not None
    assert model.rdb_loss_weights["alignment"].grad.item() != 0.0


# Classification ---------------------------------------------------------------------------


def test_classification_uses_batch_labels(bundle):
    method, model = build(bundle)
    labels = torch.tensor([0, -1, 2, 1])
    batch = make_batch(bundle, labels)
    model.train()

    output = method.forward(model, batch)
    terms = method.loss(model, batch, output)

    logits = output.extras["class_logits_image"]
    assert model.rdb_head.weight.shape[0] == len(CLASSES)
    assert logits.shape == (4, len(CLASSES))
    labelled = labels >= 0
    expected = F.cross_entropy(logits[labelled], labels[labelled])
    torch.testing.assert_close(terms["classification"], expected.detach())


def test_classification_of_text_averages_both(bundle):
    method, model = build(bundle, classify_text=True)
    labels = torch.tensor([0, 1, -1, 2])
    batch = make_batch(bundle, labels)

    output = method.forward(model, batch)
    terms = method.loss(model, batch, output)

    labelled = labels >= 0
    image_loss = F.cross_entropy(output.extras["class_logits_image"][labelled], labels[labelled])
    text_loss = F.cross_entropy(output.extras["class_logits_text"][labelled], labels[labelled])
    torch.testing.assert_close(terms["classification"], ((image_loss + text_loss) / 2).detach())


@pytest.mark.parametrize("labels", [torch.tensor([-1, -1, -1, -1]), None], ids=["all_unknown", "none"])
def test_unlabelled_batch_keeps_head_in_graph(bundle, labels):
    method, model = build(bundle)
    batch = make_batch(bundle)
    batch.labels = labels

    output = method.forward(model, batch)
    terms = method.loss(model, batch, output)
    terms["loss"].backward()

    assert terms["classification"].item() == 0.0
    assert torch.count_nonzero(model.rdb_head.weight.grad) == 0
    assert model.rdb_loss_weights["classification"].grad.item() == 0.0


def test_classification_rejects_out_of_range_label(bundle):
    method, model = build(bundle)
    batch = make_batch(bundle, torch.tensor([0, 3, 1, 1]))

    output = method.forward(model, batch)
    with pytest.raises(ValueError, match=r"outside \[-1, 2\]"):
        method.loss(model, batch, output)


def test_missing_labels_raise_user_error(bundle):
    with pytest.raises(UserError) as caught:
        build(bundle, class_names=None)

    message = str(caught.value)
    assert "no scene labels" in message or "has none" in message
    assert "classification_loss=false" in message
    assert "label_fallback=retrieval_only" in message


def test_missing_labels_fallback_warns(bundle, caplog):
    with caplog.at_level(logging.WARNING, logger="methods.rdb"):
        method, model = build(bundle, class_names=None, label_fallback="retrieval_only")

    assert "no scene labels" in caplog.text
    assert method.loss_terms == ["alignment", "consistency"]
    assert not hasattr(model, "rdb_head")
    terms = run_step(method, model, make_batch(bundle, torch.full((4,), -1)))
    assert "classification" not in terms


def test_missing_labels_ok_without_classification(bundle):
    method, model = build(bundle, class_names=None, classification_loss=False)

    assert method.loss_terms == ["alignment", "consistency"]


# EMA teacher ------------------------------------------------------------------------------


def test_ema_update_is_exact(bundle):
    momentum = 0.9
    method, model = build(bundle, ema_momentum=momentum)
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name in method.tracked_names:
            parameters[name].add_(torch.randn_like(parameters[name]))
    before = {name: tensor.clone() for name, tensor in method.teacher.items()}

    method.on_step_end(model, 0)

    assert set(method.teacher) == set(method.tracked_names)
    assert any(".rdb_adapter." in name for name in method.teacher)
    assert any(name.startswith("rdb_shared.") for name in method.teacher)
    for name, teacher in method.teacher.items():
        expected = momentum * before[name] + (1 - momentum) * parameters[name].detach()
        assert torch.equal(teacher, expected), name


def test_teacher_starts_equal_to_student(bundle):
    method, model = build(bundle)
    model.eval()
    activate_adapters(model)
    batch = make_batch(bundle)

    teacher_image, _ = method.teacher_features(model, batch)
    with torch.no_grad():
        zero_adapter_image = copy.deepcopy(bundle.model).eval().encode_image(batch.images, normalize=True)

    # The teacher copied the zero up-projections, so it still reproduces the frozen model.
    torch.testing.assert_close(teacher_image, zero_adapter_image)
    assert not torch.allclose(model.encode_image(batch.images, normalize=True), teacher_image)


@pytest.mark.parametrize("target", ["similarity", "embedding"])
def test_consistency_pulls_towards_teacher(bundle, target):
    method, model = build(bundle, consistency_target=target)
    model.eval()
    batch = make_batch(bundle)

    assert method.loss(model, batch, method.forward(model, batch))["consistency"].item() == pytest.approx(0.0, abs=1e-6)
    activate_adapters(model)
    assert method.loss(model, batch, method.forward(model, batch))["consistency"].item() > 1e-6


# Ablations --------------------------------------------------------------------------------

SHARED_COUNT = BOTTLENECK * BOTTLENECK + BOTTLENECK
HEAD_COUNT = len(CLASSES) * 128


@pytest.fixture(scope="module")
def default_count(bundle) -> int:
    _, model = build(bundle)
    return trainable_count(model)


@pytest.mark.parametrize(
    "options, expected_change",
    [
        ({"vea": False}, "fewer"),
        ({"tsa": False}, "fewer"),
        ({"shared_layer": False}, -SHARED_COUNT),
        ({"symmetric": True}, "different"),
        ({"alignment_loss": False}, -1),
        ({"classification_loss": False}, -HEAD_COUNT - 1),
        ({"consistency_loss": False}, -1),
        ({"weighting": "fixed"}, -3),
        ({"classify_text": True}, 0),
    ],
    ids=lambda value: "-".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else str(value),
)
def test_ablation_builds_and_trains(bundle, default_count, options, expected_change):
    method, model = build(bundle, **options)
    model.train()

    terms = run_step(method, model, make_batch(bundle))

    assert [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None] == []
    assert torch.isfinite(terms["loss"])
    count = trainable_count(model)
    if expected_change == "fewer":
        assert count < default_count
    elif expected_change == "different":
        assert count != default_count
    else:
        assert count - default_count == expected_change
    for term, switch in (("alignment", "alignment_loss"), ("classification", "classification_loss"), ("consistency", "consistency_loss")):
        assert (term in terms) == options.get(switch, True)


def test_symmetric_uses_image_design_in_text(bundle):
    _, model = build(bundle, symmetric=True)

    def per_adapter(adapter: nn.Module) -> int:
        return sum(p.numel() for p in adapter.parameters())

    image, text = adapters(model, "image"), adapters(model, "text")
    assert [per_adapter(a) for a in text] == [per_adapter(a) for a in image]
    assert all(isinstance(a.mixer, VisualEnhancementMixer) for a in text)
    assert all(not a.mixer.attention.causal for a in image)


def test_plain_adapters_without_vea_and_tsa(bundle):
    _, model = build(bundle, vea=False, tsa=False)

    assert all(a.mixer is None for a in adapters(model, "image") + adapters(model, "text"))


def test_shared_layer_is_one_module(bundle):
    _, model = build(bundle)

    shared = {id(a.shared) for a in adapters(model, "image") + adapters(model, "text")}
    assert shared == {id(model.rdb_shared)}
    assert [name for name, _ in model.named_parameters() if "linear" in name and "shared" in name] == [
        "rdb_shared.linear.weight",
        "rdb_shared.linear.bias",
    ]


def test_layers_selects_blocks(bundle):
    _, model = build(bundle, layers=[0, -1])

    for tower in (model.visual.transformer, model.transformer):
        adapted = [index for index, block in enumerate(tower.resblocks) if hasattr(block.mlp, "rdb_adapter")]
        assert adapted == [0, 3]


def test_layers_out_of_range(bundle):
    with pytest.raises(ConfigError, match="has 4 blocks"):
        build(bundle, layers=[4])


@pytest.mark.parametrize(
    "options, match",
    [
        ({"bottleneck_dim": 60, "heads": 4}, "divisible by 2 × heads"),
        ({"weighting": "softmax"}, "weighting = 'softmax'"),
        ({"dropout": 1.0}, "dropout = 1.0"),
        ({"ema_momentum": 1.0}, "ema_momentum = 1.0"),
        ({"alignment_loss": False, "classification_loss": False, "consistency_loss": False}, "all false"),
    ],
)
def test_invalid_config_rejected(options, match):
    with pytest.raises(ConfigError, match=match):
        create_method("rdb", RdbConfig(**options))


# Checkpoints ------------------------------------------------------------------------------


def test_state_round_trip_resumes_identically(bundle):
    method, model = build(bundle, ema_momentum=0.5)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    batch = make_batch(bundle)
    model.train()
    for step in range(2):
        torch.manual_seed(10 + step)
        run_step(method, model, batch, optimizer, step)

    buffer = io.BytesIO()
    torch.save({"state": method.trainable_state_dict(model), "optimizer": optimizer.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    assert any(key.startswith("method_extra.ema_teacher.") for key in saved["state"])

    torch.manual_seed(99)
    resumed_method = create_method("rdb", RdbConfig(ema_momentum=0.5))
    resumed = copy.deepcopy(bundle.model)
    resumed_method.apply(resumed, MethodContext("rsitr-tiny", CLASSES, 10, 0))
    resumed.logit_scale.requires_grad_(True)
    resumed_optimizer = torch.optim.AdamW([p for p in resumed.parameters() if p.requires_grad], lr=1e-2)
    resumed_method.load_trainable_state_dict(resumed, saved["state"])
    resumed_optimizer.load_state_dict(saved["optimizer"])
    resumed.train()

    for name, teacher in method.teacher.items():
        assert torch.equal(resumed_method.teacher[name], teacher), name
    torch.manual_seed(12)
    run_step(method, model, batch, optimizer, 2)
    torch.manual_seed(12)
    run_step(resumed_method, resumed, batch, resumed_optimizer, 2)

    resumed_parameters = dict(resumed.named_parameters())
    for name, parameter in model.named_parameters():
        assert torch.equal(resumed_parameters[name], parameter), name
    for name, teacher in method.teacher.items():
        assert torch.equal(resumed_method.teacher[name], teacher), name


def test_extra_state_rejects_other_config(bundle):
    method, model = build(bundle)
    other, _ = build(bundle, shared_layer=False)

    with pytest.raises(KeyError, match="missing"):
        other.load_extra_state(method.extra_state())


def test_no_teacher_without_consistency(bundle):
    method, model = build(bundle, consistency_loss=False)

    assert method.extra_state() == {}
    assert not any(key.startswith("method_extra.") for key in method.trainable_state_dict(model))
