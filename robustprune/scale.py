"""The ``scale`` section and the GPU path of training: bf16 autocast, channels-last,
torch.compile (the process count is :mod:`robustprune.distributed`'s).

Why a separate module: the section takes its allowed precisions from here (one source of the
names), and training, the throughput benchmark and anything else that trains build the module
they run through :func:`training_module`, so a setting means the same thing everywhere. On
anything but CUDA the plain model is returned: the CPU path never changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from robustprune.schema import param as _p

PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}
"""``scale.precision``: the autocast dtype of training's forwards (None: plain fp32)."""


@dataclass(frozen=True)
class ScaleConfig:
    """The ``scale`` section: how a run uses its hardware, processes (torchrun data
    parallelism) and the GPU path.

    The GPU settings apply on CUDA only, so one params file runs anywhere and the CPU path is
    unchanged; what a run actually used is recorded in its metrics (``runtime``)."""

    nproc: int = _p(1, lo=1, doc="processes per warm-up/scoring/train run (torchrun, one per "
                                 "GPU; gloo on CPU); 1 = a plain single process")
    precision: str = _p("fp32", choices=tuple(PRECISIONS), doc="cuda: bf16 autocast for "
                                                               "training's forwards")
    channels_last: bool = _p(False, doc="cuda: channels-last memory format for the model "
                                        "and its inputs during training")
    compile: bool = _p(False, doc="cuda: torch.compile the model for training")


class FastForward(nn.Module):
    """The model as training runs it on CUDA: bf16 autocast and/or channels-last inputs
    around the (optionally compiled) network; logits come back in fp32 so losses and attack
    gradients keep full precision. Shares its parameters with the plain model."""

    def __init__(self, net: nn.Module, dtype: torch.dtype | None, channels_last: bool) -> None:
        super().__init__()
        self.net, self.dtype, self.channels_last = net, dtype, channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=self.dtype or torch.float32,
                            enabled=self.dtype is not None):
            out = self.net(x)
        return out.float()


def training_module(model: nn.Module, scale: Any,
                    device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """The module training calls (the plain model unless the GPU path applies) and the
    settings in force; ``scale`` is the ``scale`` params section (or None). On anything but
    CUDA the plain model: the CPU path never changes."""
    used = {"precision": "fp32", "channels_last": False, "compile": False}
    if scale is None or device.type != "cuda":
        return model, used
    used = {"precision": scale.precision, "channels_last": scale.channels_last,
            "compile": scale.compile}
    if scale.channels_last:
        model.to(memory_format=torch.channels_last)
    net: nn.Module = model
    if scale.compile:
        net = torch.compile(model, dynamic=True)  # type: ignore[assignment]
    if scale.precision == "fp32" and not scale.channels_last and not scale.compile:
        return model, used
    return FastForward(net, PRECISIONS[scale.precision], scale.channels_last), used
