"""BulletTrain (Hua et al., NeurIPS 2021): boundary-example mining per batch.

A cheap clean forward (eval mode) scores each example by its signed prediction spread,
s = std(softmax) × (+1 if correct else −1), and splits the batch into three categories:

- **outlier** (s < 0, misclassified clean): no attack, trained on the clean input;
- **robust** (the most confident fraction r of the batch: s at or above the (1−r)-quantile,
  and s ≥ 0): the training attack's cheaper version (:meth:`Attack.cheaper`): for PGD
  ``robust_steps`` steps of ``robust_step_factor``·α; for a one-step attack (FGSM-RS,
  N-FGSM) the same attack, since a larger single step would erase the random start or leave
  the threat model; no attack when ``robust_steps`` is 0;
- **boundary** (the rest): the full training attack.

r is estimated online from the robust accuracy of the batch after the attack,
r ← m·r + (1−m)·γ·acc (m = 0.9, γ = 0.8, r₀ = 0), as in the public re-implementation (the
paper's code is not public). The robust accuracy is read from the logits of the training step
itself (train mode), so it costs no extra pass; the scoring forward is charged to ``select``.
The base objective (PGD-AT, TRADES, MART) is applied to every example with its own x'.
Under torchrun the categories are those of the global batch (the ranks' scores are gathered
for the quantile) and r reads the gathered logits, so every rank holds the same r and the run
makes the one-process choices.

**BulletTrain for AugMix** (the paper's rule is not public; this is ours): the same
categorisation, but a category sets how many AugMix views an example gets: boundary examples
the objective's full ``mix_views`` (the whole AugMix loss), robust ones ``robust_views`` and
outliers ``outlier_views`` (0 = clean cross-entropy only). AugMix's loss runs the clean forward
anyway, so the categorisation reads that forward (train mode) instead of paying for a separate
one, and only the views asked for are made and forwarded afterwards. An example's passes are
then 2 (clean forward + backward) + 2 per view, counted as they happen. The online r is updated
from the accuracy on the augmented views of the examples that got some (the others would only
report their own category back). Networks without batch norm (SmallCNN) compute the same loss
from the two forwards as from one; with batch norm the clean batch and the views get separate
batch statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robustprune import distributed
from robustprune.attacks import Attack
from robustprune.cost import CostMeter
from robustprune.objectives import Objective, Views
from robustprune.schema import param
from robustprune.selection.base import BatchMiner

OUTLIER, ROBUST, BOUNDARY = 0, 1, 2


def signed_spread(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """std of the softmax, signed by clean correctness: large positive = confidently right."""
    p = F.softmax(logits, dim=1)
    sign = torch.where(p.argmax(1) == y, 1.0, -1.0)
    return p.std(dim=1) * sign


def categorize(scores: torch.Tensor, robust_fraction: float) -> torch.Tensor:
    """Category per example (OUTLIER / ROBUST / BOUNDARY) from the signed spread."""
    cats = torch.full_like(scores, BOUNDARY, dtype=torch.long)
    if robust_fraction > 0 and scores.numel():
        threshold = torch.quantile(scores, 1.0 - robust_fraction)
        cats[(scores >= threshold) & (scores >= 0)] = ROBUST
    cats[scores < 0] = OUTLIER
    return cats


@dataclass(frozen=True)
class BulletTrainOptions:
    gamma: float = param(0.8, lo=0.0, hi=1.0, doc="r <- 0.9 r + 0.1 gamma * robust accuracy "
                                                   "of the batch")
    robust_steps: int = param(2, lo=0, doc='attack steps for "robust" (confident) examples')
    robust_step_factor: float = param(3.0, lo=0.0, lo_open=True,
                                      doc="their step = factor * the attack's alpha")
    robust_views: int = param(0, lo=0, doc='augmix: views for "robust" examples (boundary '
                                            "ones get objective.mix_views)")
    outlier_views: int = param(0, lo=0, doc="augmix: views for outliers (misclassified clean)")


class BulletTrain(BatchMiner):
    name = "bullettrain"
    Options = BulletTrainOptions

    def __init__(self, options: BulletTrainOptions | None = None, momentum: float = 0.9) -> None:
        super().__init__(options)
        self.gamma, self.momentum = self.options.gamma, momentum
        self.robust_steps = self.options.robust_steps
        self.robust_step_factor = self.options.robust_step_factor
        self.r = 0.0
        self._viewed: torch.Tensor | None = None  # AugMix: which examples got views this step
        self._counts = torch.zeros(3, dtype=torch.long)
        self._r_sum, self._batches = 0.0, 0

    def adversarial(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    objective: Objective, attack: Attack, meter: CostMeter) -> Any:
        if objective.views_based:  # AugMix: views per category, decided in the loss
            return Views(None, None, decide=self._views)
        if not objective.uses_attack:  # clean training: nothing to allocate
            return objective.training_inputs(model, x, y, None)
        with meter.in_phase("select"), torch.no_grad():
            scores = signed_spread(model(x), y)
        all_cats, mine = self._categorize(scores)
        cats = all_cats[mine]
        x_adv = x.detach().clone()
        cheap = attack.cheaper(self.robust_steps, self.robust_step_factor)
        with meter.in_phase("attack"):
            for category, atk in ((BOUNDARY, attack), (ROBUST, cheap)):
                in_all = all_cats == category
                if atk is None or not in_all.any():
                    continue
                mask = cats == category
                # this rank's rows among the whole batch's examples of the category: their
                # attack starts are the numbers one process draws for them
                rows = (in_all.cumsum(0) - 1)[mine][mask]
                with distributed.draws_for(int(in_all.sum()), rows):
                    out = objective.adversarial(model, x[mask], y[mask], atk)
                if mask.any():
                    x_adv[mask] = out
        return x_adv

    def _categorize(self, scores: torch.Tensor) -> tuple[torch.Tensor, slice]:
        """Categories of the whole (global) batch and this rank's slice of it. The quantile
        that makes r a share of the batch is taken over the global batch, so a data-parallel
        run categorises exactly as one process does."""
        all_scores = distributed.gather_cat(scores)
        all_cats = categorize(all_scores, self.r)
        self._record(all_cats)
        return all_cats, distributed.world().shard(len(all_cats))

    def _record(self, cats: torch.Tensor) -> None:
        self._counts += torch.bincount(cats.cpu(), minlength=3)
        self._r_sum += self.r
        self._batches += 1

    def _views(self, logits_clean: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """AugMix views per example from the training step's own clean logits (the objective
        clamps the boundary examples' large count to its ``mix_views``)."""
        all_cats, mine = self._categorize(signed_spread(logits_clean, y))
        views = torch.full(all_cats.shape, 1 << 16, dtype=torch.long, device=all_cats.device)
        views[all_cats == ROBUST] = self.options.robust_views
        views[all_cats == OUTLIER] = self.options.outlier_views
        self._viewed = views > 0  # of the whole batch, as observe() sees it
        return views[mine]

    def observe(self, logits_adv: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> None:
        viewed, self._viewed = self._viewed, None
        if viewed is not None:  # AugMix: the accuracy on the augmented views only (an example
            if not viewed.any():  # without views would report its own category back)
                return
            logits_adv, y = logits_adv[viewed], y[viewed]
        acc = (logits_adv.argmax(1) == y).float().mean().item()
        self.r = self.momentum * self.r + (1 - self.momentum) * self.gamma * acc

    def epoch_metrics(self) -> dict[str, float]:
        total = max(int(self._counts.sum()), 1)
        out = {"bt_outlier_share": self._counts[OUTLIER].item() / total,
               "bt_robust_share": self._counts[ROBUST].item() / total,
               "bt_boundary_share": self._counts[BOUNDARY].item() / total,
               "bt_mean_r": self._r_sum / max(self._batches, 1)}
        self._counts.zero_()
        self._r_sum, self._batches = 0.0, 0
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"r": self.r}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.r = float(state.get("r", 0.0))
