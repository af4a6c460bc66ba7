"""Static per-example scores for data pruning ("Less is More" and the classic baselines).

Computed once, after the warm-up, on *adversarial* examples of the training set:

- ``adv_loss``: cross-entropy on x' (high = hard);
- ``el2n``: ‖softmax(f(x')) − onehot(y)‖₂ (Paul et al. 2021, on x');
- ``grand``: ‖∂CE(f(x'), y)/∂θ_out‖ for the output layer in closed form, ‖p − y‖·‖[h, 1]‖
  (the output-layer share of GraNd, as DeepCore approximates it);
- ``forgetting``: forgetting events during the warm-up (Toneva et al. 2019): transitions from
  correct to wrong on an example's minibatch predictions; never-learned examples rank as most
  forgotten (max + 1).

:class:`ForgettingTracker` rides along the warm-up as an observer of the training step.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robustprune import distributed
from robustprune.attacks import Attack
from robustprune.cost import CostMeter
from robustprune.objectives import Objective
from robustprune.selection.base import head_inputs, with_bias

__all__ = ["SCORES", "ForgettingTracker", "adversarial_scores"]

SCORES = ("adv_loss", "el2n", "grand", "forgetting")
"""The columns of the scoring table, i.e. what the prune selector can rank by."""


class ForgettingTracker:
    """Counts forgetting events per training example from the training step's own logits
    (a training-loop observer: it sees every step, changes nothing)."""

    def __init__(self, n: int) -> None:
        self.prev = torch.zeros(n, dtype=torch.bool)
        self.learned = torch.zeros(n, dtype=torch.bool)
        self.events = torch.zeros(n, dtype=torch.long)

    def observe(self, logits_adv: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> None:
        correct = (logits_adv.argmax(1) == y).cpu()
        idx = idx.cpu()
        self.events[idx] += (self.prev[idx] & ~correct).long()
        self.prev[idx] = correct
        self.learned[idx] |= correct

    def counts(self) -> torch.Tensor:
        """Forgetting events, with never-learned examples set to max + 1."""
        out = self.events.clone()
        out[~self.learned] = int(out.max().item()) + 1 if out.numel() else 0
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"prev": self.prev, "learned": self.learned, "events": self.events}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.prev, self.learned, self.events = state["prev"], state["learned"], state["events"]


def adversarial_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                       objective: Objective, attack: Attack, meter: CostMeter,
                       batch_size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """adv_loss, el2n and grand for every example (model is a counting model).

    Chunks of ``batch_size`` draw their attack starts from their own seed (``seed``, chunk);
    under torchrun each rank scores a contiguous block of chunks and every rank gets all
    scores, in order: the numbers one process computes."""
    out: dict[str, list[torch.Tensor]] = {"adv_loss": [torch.zeros(0)], "el2n": [torch.zeros(0)],
                                          "grand": [torch.zeros(0)]}
    model.eval()
    first, end = distributed.my_chunks(len(y), batch_size)
    with head_inputs(model) as feats, meter.in_phase("select"):
        for c in range(first, end):
            xb = x[c * batch_size:(c + 1) * batch_size].float().div_(255.0)
            yb = y[c * batch_size:(c + 1) * batch_size]
            with distributed.seeded(distributed.chunk_seed(seed, 0x5C0, c), xb.device):
                x_adv = objective.adversarial(model, xb, yb, attack)
            feats.clear()
            with torch.no_grad():
                logits = model(x_adv)
            p = F.softmax(logits, dim=1)
            resid = p - F.one_hot(yb, p.shape[1]).float()
            h1 = with_bias(feats[0].float())
            out["adv_loss"].append(F.cross_entropy(logits, yb, reduction="none").cpu())
            out["el2n"].append(resid.norm(dim=1).cpu())
            out["grand"].append((resid.norm(dim=1) * h1.norm(dim=1)).cpu())
    dev = x.device if x.device.type == "cuda" else torch.device("cpu")
    return {k: distributed.gather_cat(torch.cat(v).to(dev)).cpu() for k, v in out.items()}
