"""Which examples a model gets right, clean and under PGD: the measurement that training's
per-epoch validation and the evaluation stage share.

It lives with the attacks, not in the evaluation module, so that training does not import
evaluation: an edit to the evaluation tiers then reruns no training stage, and an edit to the
training loop no evaluation.
"""

from __future__ import annotations

import torch
from torch import nn

from robustprune.attacks.base import cross_entropy_loss
from robustprune.attacks.pgd import PGD

__all__ = ["clean_correct", "pgd_correct", "predictions", "to_float"]


def _batches(n: int, batch_size: int) -> range:
    return range(0, n, batch_size)


def to_float(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 images -> float in [0,1] on ``device`` (float inputs pass through)."""
    x = x.to(device)
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


@torch.no_grad()
def predictions(model: nn.Module, x: torch.Tensor, batch_size: int,
                device: torch.device) -> torch.Tensor:
    """Predicted class of every example on unperturbed inputs (int64, on CPU)."""
    out = [model(to_float(x[i:i + batch_size], device)).argmax(1).cpu()
           for i in _batches(len(x), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def clean_correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                  device: torch.device) -> torch.Tensor:
    """Per-example correctness on unperturbed inputs (bool, on CPU)."""
    return predictions(model, x, batch_size, device) == y.cpu()


def pgd_correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: PGD,
                restarts: int, batch_size: int, device: torch.device) -> torch.Tensor:
    """Per-example robustness to PGD: correct on the clean input *and* under every restart.

    An example the model gets wrong unperturbed is not robust, even if no visited point is
    misclassified (the attack stops at the first error, so it is counted wrong at step 0).
    """
    out = []
    for i in _batches(len(y), batch_size):
        xb, yb = to_float(x[i:i + batch_size], device), y[i:i + batch_size].to(device)
        with torch.no_grad():
            robust = model(xb).argmax(1) == yb
        for _ in range(restarts):
            x_adv = attack.perturb(model, xb, cross_entropy_loss(yb), stop_labels=yb)
            with torch.no_grad():
                robust &= model(x_adv).argmax(1) == yb
        out.append(robust.cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.bool)
