import pickle

import pytest
import torch
from safetensors.torch import save_file

from rsitr_bench.errors import CheckpointError, UserError
from rsitr_bench.models import create_model, load_state_dict


@pytest.fixture(scope="module")
def reference_state():
    torch.manual_seed(123)
    return create_model("rsitr-tiny").model.state_dict()


def _assert_same_weights(model, state):
    loaded = model.state_dict()
    assert set(loaded) == set(state)
    for key, tensor in state.items():
        assert torch.equal(loaded[key], tensor), key


def test_plain_state_dict_pt(tmp_path, reference_state):
    path = tmp_path / "plain.pt"
    torch.save(reference_state, path)
    _assert_same_weights(create_model("rsitr-tiny", str(path)).model, reference_state)


def test_wrapped_and_prefixed_checkpoint(tmp_path, reference_state):
    # The layout of open_clip training checkpoints such as GeoRSCLIP's: a state_dict entry,
    # keys prefixed with "module." by DistributedDataParallel, and non-tensor metadata.
    wrapped = {
        "epoch": 10,
        "name": "run",
        "state_dict": {f"module.{key}": value for key, value in reference_state.items()},
    }
    path = tmp_path / "wrapped.pt"
    torch.save(wrapped, path)
    _assert_same_weights(create_model("rsitr-tiny", str(path)).model, reference_state)


def test_safetensors_checkpoint(tmp_path, reference_state):
    path = tmp_path / "weights.safetensors"
    save_file({key: value.contiguous() for key, value in reference_state.items()}, str(path))
    _assert_same_weights(create_model("rsitr-tiny", str(path)).model, reference_state)


def test_mismatched_checkpoint_lists_keys(tmp_path, reference_state):
    state = dict(reference_state)
    del state["text_projection"]
    state["extra.weight"] = torch.zeros(2)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as error:
        create_model("rsitr-tiny", str(path))
    message = str(error.value)
    assert "1 missing keys (text_projection)" in message
    assert "1 unexpected keys (extra.weight)" in message


def test_wrong_shape_is_reported(tmp_path, reference_state):
    state = dict(reference_state)
    state["text_projection"] = torch.zeros(3, 3)
    path = tmp_path / "shape.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"text_projection \(3, 3\) != \(128, 128\)"):
        create_model("rsitr-tiny", str(path))


class _RunsCode:
    def __reduce__(self):
        return (print, ("this ran while loading",))


def test_code_in_pickle_is_rejected(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump({"state_dict": {"weight": _RunsCode()}}, handle)
    with pytest.raises(CheckpointError, match="other than tensors"):
        load_state_dict(path)
    assert "this ran while loading" not in capsys.readouterr().out


def test_missing_checkpoint_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        create_model("rsitr-tiny", str(tmp_path / "absent.pt"))


def test_unknown_model_suggests_close_names():
    with pytest.raises(UserError, match="ViT-B-32"):
        create_model("ViT-B-3")


def test_unknown_pretrained_tag_lists_known_tags():
    with pytest.raises(UserError, match="openai"):
        create_model("ViT-B-32", "not-a-tag")


def test_tiny_model_shape():
    bundle = create_model("rsitr-tiny")
    assert bundle.image_size == 64
    tokens = bundle.tokenizer(["a harbor with boats ."])
    assert tokens.shape == (1, 32)
    features = bundle.model.encode_text(tokens, normalize=True)
    assert features.shape == (1, 128)


@pytest.fixture
def small_demo_model(tmp_path, monkeypatch):
    """Make the demo pretraining tiny, so first use takes seconds."""
    import rsitr_bench.data.demo as demo
    import rsitr_bench.demo_model as demo_model

    monkeypatch.setenv("RSITR_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(demo, "PRETRAINING_SPLIT_SIZES", {"train": 24, "val": 12, "test": 12})
    monkeypatch.setattr(demo_model, "PRETRAINING_SETTINGS", {"epochs": 1, "batch_size": 8, "lr_pretrained": 5e-4})
    return tmp_path


def test_demo_weights_made_once_and_reused(small_demo_model):
    import random

    import numpy as np

    from rsitr_bench.demo_model import demo_checkpoint_path

    def create_and_draw():
        torch.manual_seed(5)
        random.seed(5)
        np.random.seed(5)
        bundle = create_model("rsitr-tiny", "demo")
        return bundle, (torch.rand(1).item(), random.random(), np.random.rand())

    first, draws_after_pretraining = create_and_draw()
    path = demo_checkpoint_path()
    assert path.is_file()
    assert first.checkpoint["path"] == str(path)
    written = path.stat().st_mtime_ns

    second, draws_from_cache = create_and_draw()
    assert path.stat().st_mtime_ns == written
    # Pretraining on first use leaves the caller's random streams as a cached load does.
    assert draws_after_pretraining == draws_from_cache
    assert second.checkpoint["sha256"] == first.checkpoint["sha256"]
    for key, tensor in first.model.state_dict().items():
        assert torch.equal(second.model.state_dict()[key], tensor), key
    # The pretraining run keeps its record beside the weights.
    assert list(path.parent.glob(f"{path.stem}-pretraining/runs/*.json"))


def test_demo_weights_only_for_tiny_model():
    with pytest.raises(UserError, match="only for rsitr-tiny"):
        create_model("ViT-B-32", "demo")


def test_pretrained_none_means_random():
    torch.manual_seed(0)
    first = create_model("rsitr-tiny", "none")
    torch.manual_seed(0)
    second = create_model("rsitr-tiny", None)
    assert first.pretrained is None
    assert first.checkpoint is None
    assert torch.equal(first.model.text_projection, second.model.text_projection)
