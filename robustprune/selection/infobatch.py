"""``infobatch``: unbiased dynamic data pruning from training's own losses (InfoBatch, Qin et
al., ICLR 2024), here for adversarial training.

Each epoch, of the examples whose last training loss is below the mean of those losses (the
well-learned ones), a random share ``prune_ratio`` is skipped and the rest are up-weighted by
1 / (1 − ``prune_ratio``); examples at or above the mean, and those not yet seen, are all kept
at weight 1. So every example's expected weight is exactly 1, and the expected sum of the
kept examples' weighted gradients equals the full data's (tests/test_infobatch.py checks it on
a toy model); the training step's weighted mean Σ w·ℓ / Σ w is then a ratio estimate of the
full-data mean (E Σ w = N). The last ``anneal`` share of the epochs trains on all data at
weight 1, which removes the remaining bias of the ratio and of the stale losses.

The losses are the cross-entropy of the logits each training step already computed on the
inputs it trained on (adversarial ones under PGD-AT), handed back through
:meth:`SubsetSelector.observe`: no scoring pass, so the saving is the skipped examples' whole
attack-and-train cost, and the only selection work is a comparison and a random draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from robustprune.schema import param
from robustprune.selection.base import Selection, SelectionContext, SubsetSelector


@dataclass(frozen=True)
class InfoBatchOptions:
    prune_ratio: float = param(0.5, lo=0.0, hi=0.95,
                               doc="share of the below-mean-loss examples skipped each epoch")
    anneal: float = param(0.125, lo=0.0, hi=1.0,
                          doc="share of the final epochs trained on all data at weight 1")


def infobatch_selection(losses: torch.Tensor, seen: torch.Tensor, ratio: float,
                        generator: torch.Generator) -> Selection:
    """The kept examples and their weights, from the last losses (``seen``: examples that have
    one). Exposed for the unbiasedness test: E[w_i · 1{i kept}] = 1 for every i."""
    n = len(losses)
    well = torch.zeros(n, dtype=torch.bool)
    if seen.any():
        well = seen & (losses < losses[seen].mean())
    skipped = well & (torch.rand(n, generator=generator) < ratio)
    kept = (~skipped).nonzero().squeeze(1)
    weights = torch.ones(n, dtype=torch.float32)
    weights[well] = 1.0 / (1.0 - ratio)
    return Selection(indices=kept, weights=weights[kept])


class InfoBatch(SubsetSelector):
    name = "infobatch"
    Options = InfoBatchOptions
    uses_fraction = False  # the share trained follows the losses; prune_ratio bounds it

    def __init__(self, fraction: float = 1.0, seed: int = 0,
                 options: InfoBatchOptions | None = None) -> None:
        super().__init__(fraction, seed, options)
        self.losses: torch.Tensor | None = None
        self.seen: torch.Tensor | None = None

    def _ensure(self, n: int) -> None:
        if self.losses is None or self.seen is None or len(self.losses) != n:
            self.losses = torch.zeros(n, dtype=torch.float32)
            self.seen = torch.zeros(n, dtype=torch.bool)

    def select(self, ctx: SelectionContext) -> Selection:
        n = len(ctx.y_train)
        self._ensure(n)
        assert self.losses is not None and self.seen is not None
        full_from = math.ceil((1.0 - self.options.anneal) * ctx.epochs - 1e-9)
        if ctx.epoch >= full_from or self.options.prune_ratio == 0.0:
            return Selection(indices=torch.arange(n))
        g = torch.Generator().manual_seed(self.seed * 100_003 + ctx.epoch)
        return infobatch_selection(self.losses, self.seen, self.options.prune_ratio, g)

    def observe(self, logits_adv: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> None:
        if self.losses is None or self.seen is None:
            return  # observed before any selection: nothing to keep it for
        loss = F.cross_entropy(logits_adv.float(), y, reduction="none").detach().cpu()
        where = idx.cpu()
        self.losses[where] = loss
        self.seen[where] = True

    def state_dict(self) -> dict[str, Any]:
        return {} if self.losses is None else {"losses": self.losses, "seen": self.seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "losses" in state:
            self.losses, self.seen = state["losses"].cpu(), state["seen"].cpu().bool()
