"""Tests for robustprune.models: shapes of every architecture, normalisation inside the model,
and the saved-model contract (exact round trip, eval mode, safe loading, one-line errors)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustprune.models import (
    FORMAT,
    Normalize,
    WideResNet,
    build_model,
    load_model,
    model_spec,
    read_model_file,
    save_model,
)

MEAN1, STD1 = (0.5,), (0.25,)
MEAN3, STD3 = (0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616)


def spec_for(arch: str, channels: int, size: int, classes: int = 10, **kw: int) -> dict:
    mean, std = (MEAN1, STD1) if channels == 1 else (MEAN3, STD3)
    return model_spec(arch, in_channels=channels, num_classes=classes, image_size=size,
                      mean=mean, std=std, **kw)


def build(spec: dict) -> nn.Sequential:
    s = dict(spec)
    return build_model(s.pop("arch"), **s)


@pytest.mark.parametrize(("arch", "channels", "size", "classes", "kw"), [
    ("smallcnn", 1, 28, 10, {}),
    ("smallcnn", 3, 32, 7, {}),
    ("preact-resnet18", 3, 32, 10, {}),
    ("wideresnet", 3, 32, 5, {"wrn_depth": 10, "wrn_width": 1}),
])
def test_each_arch_maps_images_to_logits(arch, channels, size, classes, kw):
    torch.manual_seed(0)
    model = build(spec_for(arch, channels, size, classes, **kw)).eval()
    x = torch.rand(2, channels, size, size)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, classes)
    assert torch.isfinite(out).all()
    assert not torch.allclose(out[0], out[1])  # depends on the input


def test_wideresnet_depth_controls_block_count():
    assert len(WideResNet(3, 10, depth=10, width=1).blocks) == 3
    assert len(WideResNet(3, 10, depth=16, width=1).blocks) == 6
    assert WideResNet(3, 10, depth=10, width=2).linear.in_features == 128


def test_normalize_is_inside():
    torch.manual_seed(0)
    model = build(spec_for("smallcnn", 3, 32)).eval()
    assert isinstance(model[0], Normalize)
    x = torch.rand(2, 3, 32, 32)
    mean = torch.tensor(MEAN3).view(1, 3, 1, 1)
    std = torch.tensor(STD3).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(model(x), model[1]((x - mean) / std), atol=1e-6)
        assert not torch.allclose(model(x), model[1](x), atol=1e-3)


def test_normalize_values():
    n = Normalize((0.5, 0.0), (0.25, 2.0))
    x = torch.tensor([1.0, 1.0]).view(1, 2, 1, 1)
    assert torch.allclose(n(x).flatten(), torch.tensor([2.0, 0.5]))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"arch": "vit"}, "vit"),
    ({"arch": "smallcnn", "mean": (0.5, 0.5)}, "mean/std"),
    ({"arch": "smallcnn", "image_size": 12}, "14"),
    ({"arch": "wideresnet", "wrn_depth": 27}, "6k\\+4"),
])
def test_build_model_rejects(kwargs, match):
    args = {"in_channels": 1, "num_classes": 10, "image_size": 28, "mean": MEAN1, "std": STD1}
    args.update(kwargs)
    arch = args.pop("arch")
    with pytest.raises(ValueError, match=match):
        build_model(arch, **args)


def test_model_spec_plain_values():
    spec = spec_for("smallcnn", 1, 28)
    assert spec == {"arch": "smallcnn", "in_channels": 1, "num_classes": 10, "image_size": 28,
                    "mean": [0.5], "std": [0.25]}
    assert all(type(v) is float for v in spec["mean"] + spec["std"])


@pytest.mark.parametrize(("arch", "channels", "size", "kw"), [
    ("smallcnn", 1, 28, {}),
    ("wideresnet", 3, 32, {"wrn_depth": 10, "wrn_width": 1}),
])
def test_save_load_round_trip(tmp_path, arch, channels, size, kw):
    torch.manual_seed(0)
    spec = spec_for(arch, channels, size, **kw)
    model = build(spec)
    model.train()
    x = torch.rand(3, channels, size, size)
    model(x)  # move BatchNorm running stats away from their init
    model.eval()
    with torch.no_grad():
        expected = model(x)
    model.train()
    path = tmp_path / "sub" / "model.pt"
    save_model(model, spec, path, extra={"epoch": 4})
    loaded = load_model(path)
    assert not loaded.training
    assert all(not m.training for m in loaded.modules())
    with torch.no_grad():
        assert torch.equal(loaded(x), expected)
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temp files left behind


def test_saved_file_is_plain_tensors_and_values(tmp_path):
    torch.manual_seed(0)
    spec = spec_for("smallcnn", 1, 28)
    model = build(spec)
    path = tmp_path / "m.pt"
    save_model(model, spec, path, extra={"note": "x", "acc": 0.5})
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == FORMAT == "robustprune-model-v1"
    assert payload["spec"] == spec
    assert payload["extra"] == {"note": "x", "acc": 0.5}
    assert set(payload["state_dict"]) == set(model.state_dict())
    for k, v in model.state_dict().items():
        assert torch.equal(payload["state_dict"][k], v)
    assert read_model_file(path)["spec"] == spec
    save_model(model, spec, tmp_path / "n.pt")
    assert read_model_file(tmp_path / "n.pt")["extra"] == {}


def one_line_value_error(path) -> str:
    with pytest.raises(ValueError) as info:
        load_model(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert str(path) in msg
    return msg


def test_load_missing_file(tmp_path):
    assert "not found" in one_line_value_error(tmp_path / "missing.pt")
    assert "not found" in one_line_value_error(tmp_path)  # a directory is not a model file


def test_load_garbage_file(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"this is not a torch file\x00\x01\x02" * 10)
    assert "not a readable robustprune model" in one_line_value_error(path)


@pytest.mark.parametrize("payload", [
    {"format": "robustprune-model-v0", "spec": {}, "state_dict": {}},
    {"spec": {}, "state_dict": {}},
    torch.zeros(3),
    [FORMAT],
])
def test_load_wrong_format(tmp_path, payload):
    path = tmp_path / "other.pt"
    torch.save(payload, path)
    assert FORMAT in one_line_value_error(path)


_executed: list[str] = []


def _side_effect(tag: str) -> str:
    _executed.append(tag)
    return tag


class Payload:
    """Unpickling this object calls ``_side_effect``: code execution on load."""

    def __reduce__(self):
        return (_side_effect, ("ran",))


def test_pickled_object_is_rejected_without_running_code(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "spec": Payload(), "state_dict": {}}, path)
    _executed.clear()
    with pytest.raises(ValueError) as info:
        read_model_file(path)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError):
        load_model(path)
    assert _executed == []
    # the payload is live: an unsafe load would have run it
    torch.load(path, weights_only=False)
    assert _executed == ["ran"]
