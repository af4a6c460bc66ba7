"""The unit of a pass budget: what one full-data training step spends per example."""

from __future__ import annotations

import copy

import torch
from torch import nn

from robustprune.attacks import Attack
from robustprune.cost import CostMeter, CountingModel
from robustprune.objectives import Objective
from robustprune.selection.base import BatchMiner


def passes_per_example(model: nn.Module, objective: Objective, attack: Attack,
                       x: torch.Tensor, y: torch.Tensor) -> float:
    """Example-passes one full-data training step spends per example with this objective and
    attack (no miner, no selection), counted by running it once on a copy of ``model`` with its
    own meter: the unit of a pass budget, exact for any objective and attack by construction.
    The copy, its gradients and the RNG draws are thrown away."""
    twin = copy.deepcopy(model)
    meter = CostMeter(x.device)
    counted = CountingModel(twin, meter)
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        twin.eval()
        x_adv = BatchMiner().adversarial(counted, x, y, objective, attack, meter)
        twin.train()
        loss, _ = objective.loss_and_logits(counted, x, x_adv, y, None)
        loss.backward()
    return meter.total_passes / len(y)
