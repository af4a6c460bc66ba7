"""Adversarial GLISTER (Killamsetty et al. 2021; adversarial version per "Less is More").

GLISTER picks the subset whose one-step SGD update most increases the log-likelihood of a
held-out validation set — here on *adversarial* validation examples. The bilevel problem is
solved greedily with the first-order Taylor approximation: the gain of adding example j is
η·⟨g_j, ∇L_val(θ_S)⟩, where θ_S = θ − η·Σ_{i∈S} g_i is the model after a step on the picks so
far. Both gradients are taken at the output layer in closed form (g = ∂ℓ/∂z ⊗ [h, 1]), so after
each greedy round the validation gradient is recomputed *exactly* at θ_S from fixed
validation features, not approximated again. Picks are made in rounds of ⌈k/``rounds``⌉
(GLISTER's chunked greedy) under per-class budgets ⌈f·n_c⌉; weights are 1.

The warm-start/reselection schedule is the coreset one (options ``warm``, ``every``).
η = the base learning rate ÷ batch size (one SGD step's per-example scale).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from robustprune.selection.base import (
    Selection,
    SelectionContext,
    class_budgets,
    on_main,
    output_layer,
)
from robustprune.selection.coreset import Periodic, output_gradients


def glister_greedy(train_grads: torch.Tensor, train_y: torch.Tensor, budgets: torch.Tensor,
                   head_weight: torch.Tensor, val_feats: torch.Tensor, val_y: torch.Tensor,
                   eta: float, rounds: int = 64) -> torch.Tensor:
    """Greedy GLISTER at the output layer; returns picked training positions (pick order).

    ``train_grads`` [N, K·(H+1)] are loss gradients w.r.t. the output layer [K, H+1]
    (``head_weight``, bias as last column); ``val_feats`` [V, H+1] the validation features.
    """
    n, k_total = train_grads.shape[0], int(budgets.sum())
    w = head_weight.clone()
    remaining = budgets.clone()
    available = torch.ones(n, dtype=torch.bool, device=train_grads.device)
    chunk = max(1, math.ceil(k_total / rounds))
    picks: list[torch.Tensor] = []
    onehot = F.one_hot(val_y, w.shape[0]).to(w.dtype)
    while int(remaining.sum()) > 0:
        p_val = F.softmax(val_feats @ w.T, dim=1)
        grad_val = ((p_val - onehot).T @ val_feats).flatten()  # ∇ of the summed val loss
        gains = train_grads @ grad_val
        eligible = available & (remaining[train_y] > 0)
        gains = torch.where(eligible, gains, torch.full_like(gains, -math.inf))
        order = torch.argsort(gains, descending=True, stable=True)
        n_eligible = int(eligible.sum())
        take, left = [], remaining.clone()
        labels = train_y[order[:n_eligible]].tolist()
        for j, c in zip(order[:n_eligible].tolist(), labels, strict=True):
            if len(take) == chunk:
                break
            if left[c] > 0:
                take.append(j)
                left[c] -= 1
        if not take:
            break
        chosen = torch.tensor(take, device=train_grads.device)
        picks.append(chosen)
        available[chosen] = False
        remaining = left
        w = w - eta * train_grads[chosen].sum(0).view_as(w)
    return torch.cat(picks) if picks else torch.empty(0, dtype=torch.long)


class Glister(Periodic):
    name = "glister"
    needs_val = True

    def reselect(self, ctx: SelectionContext) -> Selection:
        if ctx.x_val is None or ctx.y_val is None or len(ctx.y_val) == 0:
            raise ValueError("glister needs a validation split (data.val_size > 0)")
        grads, _ = output_gradients(ctx, ctx.x_train, ctx.y_train, with_features=True,
                                    main_only=True)
        _, val_feats = output_gradients(ctx, ctx.x_val, ctx.y_val, with_features=True, salt=1,
                                        main_only=True)
        head = output_layer(ctx.model)
        w = torch.cat([head.weight, head.bias[:, None]], dim=1).detach().double()
        y = ctx.y_train
        budgets = torch.zeros(ctx.num_classes, dtype=torch.long, device=y.device)
        for members, k in class_budgets(y, self.fraction, ctx.num_classes):
            budgets[y[members[0]]] = k  # indexed by class, 0 for an empty class
        eta = ctx.lr / max(ctx.batch_size, 1)
        # the greedy solver runs once (rank 0 under torchrun) and its choice is broadcast
        return on_main(lambda: Selection(indices=glister_greedy(
            grads.double(), y, budgets, w, val_feats.double(), ctx.y_val, eta).sort().values.cpu()))
