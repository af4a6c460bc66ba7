"""InfoBatch for adversarial training: its selection is unbiased (every example's expected
weight is 1, so the expected weighted gradient is full data's), it anneals to all data, it
learns its losses from the training steps (no scoring pass), and it resumes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustprune.attacks import PGD
from robustprune.config import params_from_dict
from robustprune.cost import CostMeter
from robustprune.errors import ConfigError
from robustprune.objectives import PGDAT
from robustprune.selection.base import SelectionContext
from robustprune.selection.infobatch import InfoBatch, InfoBatchOptions, infobatch_selection
from robustprune.selection.registry import SELECTORS


def _ctx(epoch: int, n: int, epochs: int = 8) -> SelectionContext:
    return SelectionContext(
        epoch=epoch, epochs=epochs, model=nn.Identity(),
        x_train=torch.zeros(n, 1, 2, 2, dtype=torch.uint8), y_train=torch.zeros(n).long(),
        num_classes=2, objective=PGDAT(), attack=PGD(eps=0.1, alpha=0.02, steps=1),
        meter=CostMeter(), seed=0, batch_size=4)


def test_expected_gradient_equals_full_datas_on_a_toy_model() -> None:
    """A logistic model on 40 examples with spread-out losses: averaged over many draws, the
    kept examples' weighted gradient sum equals the full data's, though each draw skips a
    quarter of the data; skipping without the up-weighting is visibly biased."""
    torch.manual_seed(0)
    x, y = torch.randn(40, 5), torch.randint(0, 3, (40,))
    w = torch.randn(5, 3, requires_grad=True)
    losses = F.cross_entropy(x @ w, y, reduction="none")
    grads = torch.stack([torch.autograd.grad(losses[i], w, retain_graph=True)[0].flatten()
                         for i in range(40)])  # per-example gradients [N, 15]
    full = grads.sum(0)
    seen = torch.ones(40, dtype=torch.bool)
    g = torch.Generator().manual_seed(1)
    draws, total, naive, kept_share = 20_000, torch.zeros(15), torch.zeros(15), 0.0
    for _ in range(draws):
        sel = infobatch_selection(losses.detach(), seen, 0.5, g)
        total += (sel.weights[:, None] * grads[sel.indices]).sum(0)
        naive += grads[sel.indices].sum(0)
        kept_share += len(sel.indices) / 40
    rel = ((total / draws - full).norm() / full.norm()).item()
    assert rel < 0.02
    assert ((naive / draws - full).norm() / full.norm()).item() > 5 * rel
    assert 0.6 < kept_share / draws < 0.9  # it does skip examples


def test_every_examples_expected_weight_is_one() -> None:
    losses = torch.linspace(0.1, 3.0, 30)
    seen = torch.ones(30, dtype=torch.bool)
    seen[-3:] = False  # never trained on yet: always kept at weight 1
    g = torch.Generator().manual_seed(2)
    expect = torch.zeros(30)
    draws = 20_000
    for _ in range(draws):
        sel = infobatch_selection(losses, seen, 0.7, g)
        expect[sel.indices] += sel.weights
    assert torch.allclose(expect / draws, torch.ones(30), atol=0.06)
    below = losses < losses[seen].mean()
    assert below[:10].all() and not below[-3:].any()


def test_first_epoch_keeps_everything_and_the_last_epochs_anneal_to_all_data() -> None:
    sel = InfoBatch(seed=0, options=InfoBatchOptions(prune_ratio=0.5, anneal=0.25))
    first = sel.select(_ctx(0, 100))
    assert len(first.indices) == 100  # no losses yet: nothing is well learned
    sel.observe(torch.randn(100, 2) * 3, torch.randint(0, 2, (100,)), torch.arange(100))
    middle = sel.select(_ctx(3, 100))
    assert 100 * 0.5 <= len(middle.indices) < 100 and middle.weights is not None
    assert set(middle.weights.unique().tolist()) == {1.0, 2.0}
    for epoch in (6, 7):  # the last 25 % of 8 epochs: all data at weight 1
        late = sel.select(_ctx(epoch, 100))
        assert len(late.indices) == 100 and late.weights is None


def test_state_round_trip_gives_the_same_next_selection() -> None:
    a = InfoBatch(seed=3)
    a.select(_ctx(0, 50))
    a.observe(torch.randn(50, 2), torch.randint(0, 2, (50,)), torch.arange(50))
    b = InfoBatch(seed=3)
    b.load_state_dict(a.state_dict())
    sa, sb = a.select(_ctx(1, 50)), b.select(_ctx(1, 50))
    assert torch.equal(sa.indices, sb.indices) and torch.equal(sa.weights, sb.weights)


def test_methods_entry_validates_its_options() -> None:
    params = params_from_dict({"methods": {"ib": {"selector": "infobatch", "prune_ratio": 0.3,
                                                  "anneal": 0.2}}})
    m = params.method("ib")
    assert SELECTORS[m.selector] is InfoBatch and m.selector_options.prune_ratio == 0.3
    with pytest.raises(ConfigError, match="prune_ratio"):
        params_from_dict({"methods": {"ib": {"selector": "infobatch", "prune_ratio": 1.5}}})
    with pytest.raises(ConfigError, match="fraction"):
        params_from_dict({"methods": {"ib": {"selector": "infobatch", "fraction": 0.5}}})
