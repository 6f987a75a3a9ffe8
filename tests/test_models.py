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
