"""Weight averaging: an exponential moving average (EMA) of the weights, the model evaluated.

Why: adversarial training's weights oscillate around a flatter, more robust point late in
training, and their average sits nearer it. On CIFAR-10 the FastAT benchmark (2026, ResNet-18,
reference AutoAttack, 3 seeds) measured PGD-AT with weight averaging at 50.49 % AutoAttack
against 44.33 % without, at the same training time: robustness bought for an elementwise
update per step, no extra pass. Batch-norm statistics are averaged with the weights (the
average's running means and variances follow the averaged network, not the last step's), so
the averaged model needs no extra pass over the data to recompute them.

The decay warms up as min(decay, (1 + t) / (10 + t)) after t updates, so the first steps do not
freeze the starting (warm-up) weights into the average.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


class WeightAverage:
    """The EMA of ``model``'s parameters and buffers, updated after each optimiser step."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay

        def ema(avg: torch.Tensor, current: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
            d = min(self.decay, (1.0 + float(n)) / (10.0 + float(n)))
            return avg * d + current * (1.0 - d)

        self.averaged = AveragedModel(model, avg_fn=ema, use_buffers=True)

    @property
    def module(self) -> nn.Module:
        """The averaged network, the model validated, saved and evaluated."""
        return self.averaged.module

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.averaged.update_parameters(model)

    def state_dict(self) -> dict[str, Any]:
        return self.averaged.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.averaged.load_state_dict(state)
