"""Adversarial GLISTER: greedy gains are the Taylor gains, budgets hold, cost is counted."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from robustprune.attacks import PGD
from robustprune.config import params_from_dict
from robustprune.cost import CostMeter, CountingModel
from robustprune.objectives import PGDAT
from robustprune.selection.base import SelectionContext
from robustprune.selection.glister import Glister, glister_greedy
from robustprune.selection.registry import build_selector


def _val_loss_grad(w: torch.Tensor, feats: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    w = w.clone().requires_grad_(True)
    loss = F.cross_entropy(feats @ w.T, y, reduction="sum")
    return torch.autograd.grad(loss, w)[0].flatten()


def test_first_pick_maximises_the_taylor_gain_and_state_updates():
    torch.manual_seed(0)
    k_cls, h1, n = 3, 5, 24
    w = torch.randn(k_cls, h1, dtype=torch.float64)
    vf = torch.randn(10, h1, dtype=torch.float64)
    vy = torch.arange(10) % k_cls
    grads = torch.randn(n, k_cls * h1, dtype=torch.float64)
    y = torch.arange(n) % k_cls
    budgets = torch.tensor([2, 2, 2])
    picks = glister_greedy(grads, y, budgets, w, vf, vy, eta=0.05, rounds=6)  # one per round
    gains = grads @ _val_loss_grad(w, vf, vy)
    assert picks[0].item() == int(gains.argmax())
    # the second pick is the best gain at the updated weights, among classes with budget left
    w1 = w - 0.05 * grads[picks[0]].view_as(w)
    gains1 = grads @ _val_loss_grad(w1, vf, vy)
    gains1[picks[0]] = -math.inf
    assert picks[1].item() == int(gains1.argmax())
    assert torch.bincount(y[picks], minlength=3).tolist() == [2, 2, 2]
    assert len(set(picks.tolist())) == 6


def test_chunked_rounds_respect_budgets():
    torch.manual_seed(1)
    grads = torch.randn(50, 8, dtype=torch.float64)
    y = torch.arange(50) % 2
    picks = glister_greedy(grads, y, torch.tensor([7, 3]), torch.randn(2, 4, dtype=torch.float64),
                           torch.randn(6, 4, dtype=torch.float64), torch.tensor([0, 1] * 3),
                           eta=0.1, rounds=2)
    assert torch.bincount(y[picks], minlength=2).tolist() == [7, 3]


def test_glister_selector_budget_and_counted_cost():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    meter = CostMeter()
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 256, (30, 1, 4, 4), generator=g, dtype=torch.uint8)
    xv = torch.randint(0, 256, (9, 1, 4, 4), generator=g, dtype=torch.uint8)
    ctx = SelectionContext(epoch=0, epochs=2, model=CountingModel(model, meter), x_train=x,
                           y_train=torch.arange(30) % 3, num_classes=3, objective=PGDAT(),
                           attack=PGD(eps=0.1, alpha=0.03, steps=2), meter=meter, seed=0,
                           batch_size=4, x_val=xv, y_val=torch.arange(9) % 3, lr=0.1)
    opts = params_from_dict({"methods": {"g": {"selector": "glister", "warm": 0.0}}}).method("g")
    sel = build_selector("glister", 0.3, 0, opts.selector_options)
    assert isinstance(sel, Glister)
    with meter.in_phase("select"):
        out = sel.select(ctx)
    assert torch.bincount(ctx.y_train[out.indices], minlength=3).tolist() == [3, 3, 3]
    assert out.weights is None
    assert meter.forward["select"] == (30 + 9) * (2 + 1)  # train and val attacked, + forward
