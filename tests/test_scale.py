"""The GPU path's module (``scale`` params): plain on CPU, same function when wrapped."""

from __future__ import annotations

import torch

from robustprune.config import ScaleConfig
from robustprune.models import build_model
from robustprune.scale import FastForward, training_module


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("smallcnn", in_channels=1, num_classes=4, image_size=16, mean=(0.5,),
                       std=(0.25,)).eval()


def test_cpu_training_uses_the_plain_model_whatever_the_settings():
    model = _model()
    fast = ScaleConfig(precision="bf16", channels_last=True, compile=True)
    net, used = training_module(model, fast, torch.device("cpu"))
    assert net is model
    assert used == {"precision": "fp32", "channels_last": False, "compile": False}


def test_the_wrapper_computes_the_same_logits_and_shares_the_parameters():
    model = _model()
    x = torch.rand(5, 1, 16, 16)
    wrapped = FastForward(model, None, channels_last=True)
    assert torch.allclose(wrapped(x), model(x), atol=1e-6)
    assert wrapped(x).dtype == torch.float32
    assert {id(p) for p in wrapped.parameters()} == {id(p) for p in model.parameters()}
