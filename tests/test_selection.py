"""Tests for robustprune.selection: the registry, Full, the class-balanced random baselines
(exact per-class counts, determinism, per-epoch refresh) and argument validation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from robustprune.attacks import PGD
from robustprune.cost import CostMeter, CountingModel
from robustprune.objectives import PGDAT
from robustprune.selection.base import (
    BatchMiner,
    Selection,
    SelectionContext,
    SubsetSelector,
    class_balanced_sample,
    class_budgets,
    head_inputs,
    with_bias,
)
from robustprune.selection.full import Full
from robustprune.selection.random_subset import RandomOnline, RandomStatic
from robustprune.selection.registry import MINERS, SELECTORS, build_selector

# 10 of class 0, 7 of class 1, 3 of class 2, 0 of class 3; interleaved
Y = torch.tensor([0, 1, 0, 2, 0, 1, 0, 0, 1, 2, 0, 1, 0, 0, 1, 1, 0, 2, 1, 0])
COUNTS = {0: 10, 1: 7, 2: 3}


def ctx(epoch: int = 0, y: torch.Tensor = Y, num_classes: int = 4) -> SelectionContext:
    n = y.shape[0]
    return SelectionContext(
        epoch=epoch, epochs=5, model=nn.Identity(),
        x_train=torch.zeros(n, 1, 2, 2, dtype=torch.uint8), y_train=y, num_classes=num_classes,
        objective=PGDAT(), attack=PGD(eps=0.1, alpha=0.02, steps=1), meter=CostMeter(), seed=0,
        batch_size=4)


def per_class(indices: torch.Tensor) -> dict[int, int]:
    return {c: int((Y[indices] == c).sum()) for c in COUNTS}


def test_registry():
    assert set(SELECTORS) == {"full", "random", "random-online", "prune", "coreset-craig",
                              "coreset-gradmatch", "glister", "infobatch"}
    assert SELECTORS["full"] is Full
    assert SELECTORS["random"] is RandomStatic
    assert SELECTORS["random-online"] is RandomOnline
    assert list(MINERS) == ["none", "bullettrain"] and MINERS["none"] is BatchMiner


def test_build_selector():
    s = build_selector("random-online", 0.3, 7)
    assert type(s) is RandomOnline and s.fraction == 0.3 and s.seed == 7
    with pytest.raises(ValueError, match='selector = "craig": must be one of coreset-craig, '):
        build_selector("craig", 0.5, 0)
    with pytest.raises(ValueError, match="selector prune needs the scores input"):
        build_selector("prune", 0.5, 0)


def test_full_returns_all_indices():
    sel = Full().select(ctx())
    assert torch.equal(sel.indices, torch.arange(20))
    assert sel.weights is None


@pytest.mark.parametrize("cls", [RandomStatic, RandomOnline])
@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.05, 1.0])
def test_random_is_class_balanced(cls, fraction):
    sel = cls(fraction=fraction, seed=0).select(ctx())
    expected = {c: min(n, math.ceil(fraction * n)) for c, n in COUNTS.items()}
    assert per_class(sel.indices) == expected
    assert sel.indices.dtype == torch.int64
    assert torch.equal(sel.indices, sel.indices.unique())  # sorted, no repeats
    assert sel.weights is None


def test_random_fraction_0_3_exact_counts():
    sel = RandomStatic(fraction=0.3, seed=0).select(ctx())
    assert per_class(sel.indices) == {0: 3, 1: 3, 2: 1}  # ceil(3.0), ceil(2.1), ceil(0.9)
    assert len(sel.indices) == 7


@pytest.mark.parametrize("cls", [RandomStatic, RandomOnline])
def test_same_seed_same_subset_regardless_of_global_rng(cls):
    torch.manual_seed(0)
    a = cls(fraction=0.5, seed=3).select(ctx(epoch=2)).indices
    torch.manual_seed(99)
    torch.rand(10)
    b = cls(fraction=0.5, seed=3).select(ctx(epoch=2)).indices
    assert torch.equal(a, b)


@pytest.mark.parametrize("cls", [RandomStatic, RandomOnline])
def test_different_seed_different_subset(cls):
    a = cls(fraction=0.5, seed=0).select(ctx()).indices
    b = cls(fraction=0.5, seed=1).select(ctx()).indices
    assert not torch.equal(a, b)


def test_random_static_is_the_same_every_epoch():
    s = RandomStatic(fraction=0.5, seed=0)
    subsets = [s.select(ctx(epoch=e)).indices for e in range(4)]
    assert all(torch.equal(subsets[0], t) for t in subsets[1:])


def test_random_online_changes_every_epoch():
    s = RandomOnline(fraction=0.5, seed=0)
    subsets = [s.select(ctx(epoch=e)).indices for e in range(4)]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not torch.equal(subsets[i], subsets[j])
    # over the epochs it sees more distinct examples than one subset holds
    seen = torch.cat(subsets).unique()
    assert len(seen) > len(subsets[0])


def test_class_balanced_sample_full_fraction_and_empty():
    g = torch.Generator().manual_seed(0)
    assert torch.equal(class_balanced_sample(Y, 1.0, g, 4), torch.arange(20))
    assert class_balanced_sample(torch.empty(0, dtype=torch.long), 0.5, g, 3).numel() == 0


def test_class_balanced_sample_members_only_from_their_class():
    g = torch.Generator().manual_seed(0)
    idx = class_balanced_sample(Y, 0.5, g, 3)
    assert per_class(idx) == {0: 5, 1: 4, 2: 2}


def test_selection_rejects_wrong_weight_shape():
    with pytest.raises(ValueError, match="weights"):
        Selection(indices=torch.arange(4), weights=torch.ones(3))
    with pytest.raises(ValueError):
        Selection(indices=torch.arange(4), weights=torch.ones(4, 1))
    ok = Selection(indices=torch.arange(4), weights=torch.ones(4))
    assert ok.weights.shape == (4,)


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_subset_selector_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError, match="fraction"):
        RandomStatic(fraction=fraction, seed=0)
    with pytest.raises(ValueError):
        Full(fraction=fraction, seed=0)


def test_subset_selector_base():
    s = SubsetSelector(fraction=1.0, seed=0)
    with pytest.raises(NotImplementedError):
        s.select(ctx())
    assert s.state_dict() == {}


def test_batch_miner_attacks_fully_and_charges_attack_phase():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    meter = CostMeter()
    counted = CountingModel(model, meter)
    x = torch.rand(3, 1, 2, 2)
    y = torch.tensor([0, 1, 0])
    attack = PGD(eps=0.1, alpha=0.05, steps=2)
    torch.manual_seed(4)
    out = BatchMiner().adversarial(counted, x, y, PGDAT(), attack, meter)
    torch.manual_seed(4)
    expected = PGDAT().adversarial(model, x, y, attack)
    assert torch.equal(out, expected)
    assert meter.forward == {"attack": 6, "train": 0, "select": 0}
    assert meter.backward == {"attack": 6, "train": 0, "select": 0}
    assert BatchMiner().epoch_metrics() == {}


@pytest.mark.parametrize("fraction, budgets",
                         [(0.3, [3, 3, 1]), (0.05, [1, 1, 1]), (1.0, [10, 7, 3])])
def test_class_budgets_ceil_per_class_and_skip_empty_classes(fraction, budgets):
    got = list(class_budgets(Y, fraction, num_classes=4))
    assert [k for _, k in got] == budgets  # class 3 is empty: no entry
    for c, (members, _) in enumerate(got):
        assert members.tolist() == Y.eq(c).nonzero().squeeze(1).tolist()


def test_head_inputs_capture_the_penultimate_features_and_detach_the_hook():
    torch.manual_seed(0)
    body, head = nn.Sequential(nn.Linear(6, 5), nn.ReLU()), nn.Linear(5, 3)
    model = nn.Sequential(body, head)
    x = torch.randn(4, 6)
    with head_inputs(model) as captured:
        model(x)
        model(x[:2])
    assert [t.shape for t in captured] == [(4, 5), (2, 5)]
    assert torch.equal(captured[0], body(x))
    model(x)
    assert len(captured) == 2  # the hook is gone after the block
    assert torch.equal(with_bias(captured[1])[:, -1], torch.ones(2))


def test_coverage_keeps_every_difficulty_level_and_drops_the_hardest() -> None:
    """CCS per class: the budget is exact, the hardest ``cut`` share is never kept, and the
    kept scores span the rest of the range, where hardest-first keeps only its top end."""
    from robustprune.selection.prune import coverage_per_class, top_per_class

    y = torch.arange(400) % 2
    scores = torch.rand(400, generator=torch.Generator().manual_seed(0)) ** 3  # many easy ones
    g = torch.Generator().manual_seed(1)
    kept = coverage_per_class(scores, y, 0.2, 2, cut=0.1, bins=10, generator=g)
    assert {c: int((y[kept] == c).sum()) for c in (0, 1)} == {0: 40, 1: 40}
    for c in (0, 1):
        members = (y == c).nonzero().squeeze(1)
        hardest = members[torch.argsort(-scores[members])[:20]]
        assert not torch.isin(hardest, kept).any()
        mine = scores[kept[y[kept] == c]]
        rest = scores[members[~torch.isin(members, hardest)]]
        assert float(mine.min()) < float(rest.quantile(0.1))  # easy ones kept too
        assert float(mine.max()) > float(rest.quantile(0.9))
    top = top_per_class(scores, y, 0.2, 2)
    assert float(scores[top].min()) > float(scores[kept].median())
    again = coverage_per_class(scores, y, 0.2, 2, cut=0.1, bins=10,
                               generator=torch.Generator().manual_seed(1))
    assert torch.equal(kept, again)  # deterministic for a seed
