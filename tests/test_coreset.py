"""Adversarial coreset selection: closed-form gradients, schedule, budgets, weights, cost."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from robustprune.attacks import PGD
from robustprune.config import params_from_dict
from robustprune.cost import CostMeter, CountingModel
from robustprune.errors import ConfigError
from robustprune.objectives import MART, PGDAT, TRADES
from robustprune.selection.base import SelectionContext
from robustprune.selection.coreset import (
    CoresetCRAIG,
    CoresetGradMatch,
    CoresetOptions,
    output_gradients,
    selection_attack,
)
from robustprune.selection.registry import build_selector


def last_layer_gradients(ctx: SelectionContext, with_features: bool = True) -> torch.Tensor:
    return output_gradients(ctx, ctx.x_train, ctx.y_train, with_features)[0]


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))


def context(model: nn.Module, objective, epoch: int = 0, epochs: int = 4, eps: float = 0.1,
            n: int = 30) -> SelectionContext:
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (n, 1, 4, 4), generator=g, dtype=torch.uint8)
    y = torch.arange(n) % 3
    meter = CostMeter()
    return SelectionContext(epoch=epoch, epochs=epochs, model=CountingModel(model, meter),
                            x_train=x, y_train=y, num_classes=3, objective=objective,
                            attack=PGD(eps=eps, alpha=0.03, steps=3), meter=meter, seed=0,
                            batch_size=4)


@pytest.mark.parametrize("objective", [PGDAT(), TRADES(beta=6.0), MART(beta=6.0)])
def test_closed_form_last_layer_gradient_equals_autograd(objective):
    model = tiny_model()
    ctx = context(model, objective, eps=0.0)  # eps 0: x_adv == x, so autograd can compare
    grads = last_layer_gradients(ctx, with_features=True)
    head = model[-1]
    for i in (0, 7, 29):
        x = ctx.x_train[i:i + 1].float() / 255
        y = ctx.y_train[i:i + 1]
        model.eval()
        loss = objective.losses(model, x, x.clone(), y)[0].sum()
        gw, gb = torch.autograd.grad(loss, [head.weight, head.bias])
        expected = torch.cat([gw, gb[:, None]], dim=1).flatten()
        assert torch.allclose(grads[i], expected, atol=1e-5), objective.name
    assert grads.shape == (30, 3 * (8 + 1))
    assert last_layer_gradients(ctx, with_features=False).shape == (30, 3)


def test_gradients_are_taken_on_attacked_inputs_and_charged_to_select():
    model = tiny_model()
    ctx = context(model, PGDAT(), eps=0.2)
    with ctx.meter.in_phase("select"):
        attacked = last_layer_gradients(ctx)
    assert ctx.meter.forward["select"] == 30 * 3 + 30  # 3 attack steps + the gradient forward
    assert ctx.meter.backward["select"] == 30 * 3       # closed form: no extra backward
    clean = last_layer_gradients(context(tiny_model(), PGDAT(), eps=0.0))
    assert not torch.allclose(attacked, clean)


@pytest.mark.parametrize("cls", [CoresetGradMatch, CoresetCRAIG])
def test_schedule_budget_weights_and_resume(cls):
    model = tiny_model()
    sel = cls(fraction=0.4, seed=0, options=CoresetOptions(warm=0.5, every=2))
    epochs = 6  # warm: epochs 0-2 full; reselect at 3 and 5
    seen = {}
    for epoch in range(epochs):
        ctx = context(model, PGDAT(), epoch=epoch, epochs=epochs)
        seen[epoch] = sel.select(ctx)
        if epoch < 3:
            assert torch.equal(seen[epoch].indices, torch.arange(30))
            assert ctx.meter.forward["attack"] + ctx.meter.forward["select"] == 0
        elif epoch == 3:
            state = sel.state_dict()
    s3, s4 = seen[3], seen[4]
    assert torch.equal(s3.indices, s4.indices)  # reused between reselections
    per_class = torch.bincount(ctx.y_train[s3.indices], minlength=3)
    assert per_class.tolist() == [math.ceil(0.4 * 10)] * 3
    assert (s3.weights > 0).all()
    if cls is CoresetCRAIG:  # every member of a class is represented once
        for c in range(3):
            assert s3.weights[ctx.y_train[s3.indices] == c].sum().item() == pytest.approx(10)
    again = cls(fraction=0.4, seed=0, options=CoresetOptions(warm=0.5, every=2))
    again.load_state_dict(state)
    resumed = again.select(context(model, PGDAT(), epoch=4, epochs=epochs))
    assert torch.equal(resumed.indices, s3.indices) and torch.equal(resumed.weights, s3.weights)


def test_same_seed_same_coreset_and_build_from_params():
    p = params_from_dict({"methods": {
        "craig": {"selector": "coreset-craig", "fraction": 0.3, "warm": 0.0, "every": 1},
        "gm": {"selector": "coreset-gradmatch", "warm": 0.25, "every": 3, "features": False}}})
    m = p.method("craig")
    a = build_selector(m.selector, m.fraction, 3, m.selector_options).select(
        context(tiny_model(), TRADES(), epoch=0))
    b = build_selector(m.selector, m.fraction, 3, m.selector_options).select(
        context(tiny_model(), TRADES(), epoch=0))
    assert torch.equal(a.indices, b.indices) and torch.equal(a.weights, b.weights)
    m = p.method("gm")
    sel = build_selector(m.selector, m.fraction, 0, m.selector_options)
    assert isinstance(sel, CoresetGradMatch) and sel.every == 3 and not sel.options.features


@pytest.mark.parametrize("cls", [CoresetGradMatch, CoresetCRAIG])
def test_a_pool_is_class_stratified_attacked_alone_and_holds_the_coreset(cls):
    """With ``pool`` < 1 only a fresh random share of each class is attacked and solved, the
    budget stays ⌈f·n_c⌉ of the whole class, and the attack cost shrinks with the pool."""
    n, fraction, pool = 60, 0.2, 0.5  # 20 per class: 10 candidates, budget 4
    full_ctx = context(tiny_model(), PGDAT(), epoch=0, epochs=2, n=n)
    with full_ctx.meter.in_phase("select"):
        cls(fraction, 0, CoresetOptions(warm=0.0)).select(full_ctx)
    picks = []
    for epoch in (0, 1):
        ctx = context(tiny_model(), PGDAT(), epoch=epoch, epochs=2, n=n)
        sel = cls(fraction, 0, CoresetOptions(warm=0.0, every=1, pool=pool))
        cand = sel.candidates(ctx)
        assert torch.bincount(ctx.y_train[cand], minlength=3).tolist() == [10, 10, 10]
        with ctx.meter.in_phase("select"):
            s = sel.select(ctx)
        assert set(s.indices.tolist()) <= set(cand.tolist())
        assert torch.bincount(ctx.y_train[s.indices], minlength=3).tolist() == [4, 4, 4]
        assert ctx.meter.forward["select"] * 2 == full_ctx.meter.forward["select"]
        again = cls(fraction, 0, CoresetOptions(warm=0.0, every=1, pool=pool)).select(
            context(tiny_model(), PGDAT(), epoch=epoch, epochs=2, n=n))
        assert torch.equal(again.indices, s.indices) and torch.equal(again.weights, s.weights)
        picks.append(cand)
    assert not torch.equal(picks[0], picks[1])  # a fresh pool at each reselection


def test_pool_one_is_the_whole_set_and_a_pool_below_the_fraction_is_refused():
    ctx = context(tiny_model(), PGDAT(), n=30)
    a = CoresetCRAIG(0.4, 0, CoresetOptions(warm=0.0)).select(ctx)
    b = CoresetCRAIG(0.4, 0, CoresetOptions(warm=0.0, pool=1.0)).select(
        context(tiny_model(), PGDAT(), n=30))
    assert torch.equal(a.indices, b.indices) and torch.equal(a.weights, b.weights)
    with pytest.raises(ConfigError, match=r"^methods\.cs\.pool = 0\.2: must be >= fraction "
                                          r"\(0\.3\)"):
        params_from_dict({"methods": {"cs": {"selector": "coreset-craig", "fraction": 0.3,
                                             "pool": 0.2}}})


def test_select_steps_sets_the_reselection_attack_and_its_cost():
    train_attack = PGD(eps=0.1, alpha=0.01, steps=10)
    assert selection_attack(train_attack, 0) is train_attack
    two = selection_attack(train_attack, 2)
    assert (two.steps, two.alpha, two.eps) == (2, pytest.approx(0.125), 0.1)
    ctx = context(tiny_model(), PGDAT(), epoch=0, epochs=1)  # training attack: 3 steps
    with ctx.meter.in_phase("select"):
        CoresetGradMatch(0.4, 0, CoresetOptions(warm=0.0, select_steps=1)).select(ctx)
    assert ctx.meter.forward["select"] == 30 * 1 + 30  # 1 attack step + the gradient forward
    assert ctx.meter.backward["select"] == 30
