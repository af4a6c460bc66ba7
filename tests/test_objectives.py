"""Tests for robustprune.objectives: per-example losses checked against hand-written formulas
(plain-Python sums over probabilities), weighting, the attack losses and the attack starts.

The "model" is ``nn.Identity``: inputs are the logits, so every expected value is computed from
numbers written in the test."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from robustprune.attacks import PGD
from robustprune.config import ObjectiveConfig
from robustprune.cost import CostMeter, CountingModel
from robustprune.objectives import (
    MART,
    PGDAT,
    TRADES,
    Objective,
    build_objective,
    kl_per_example,
    weighted_mean,
)

# row 0: argmax of the adversarial prediction (class 1) is wrong -> "largest wrong" = 1
# row 1: argmax of the adversarial prediction (class 2) is y -> "largest wrong" = 0 (0.0 > -0.2)
# row 2: argmax (class 0) is wrong and y is the least likely class -> "largest wrong" = 0
CLEAN = [[2.0, 0.5, -1.0], [0.1, 0.3, 0.2], [0.3, -0.4, 1.1]]
ADV = [[1.0, 1.5, -0.5], [0.0, -0.2, 1.2], [2.0, 0.7, -1.0]]
Y = [0, 2, 2]
LARGEST_WRONG = [1, 0, 0]


def softmax(row: list[float]) -> list[float]:
    z = [math.exp(v) for v in row]
    return [v / sum(z) for v in z]


def ce(row: list[float], y: int) -> float:
    return -math.log(softmax(row)[y])


def kl(p: list[float], q: list[float]) -> float:
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))


def tensors() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.tensor(CLEAN), torch.tensor(ADV), torch.tensor(Y)


def test_fixture_rows_exercise_both_mart_branches():
    argmax_adv = [max(range(3), key=lambda k, r=r: r[k]) for r in ADV]
    assert [a == y for a, y in zip(argmax_adv, Y, strict=True)] == [False, True, False]
    for r, y, w in zip(ADV, Y, LARGEST_WRONG, strict=True):
        assert w != y and all(r[w] >= r[k] for k in range(3) if k != y)


def test_pgd_at_per_example_is_ce_on_adversarial():
    x, xa, y = tensors()
    got = PGDAT().losses(nn.Identity(), x, xa, y)[0]
    expected = [ce(ADV[i], Y[i]) for i in range(3)]
    assert torch.allclose(got, torch.tensor(expected), atol=1e-6)
    # and it ignores the clean input
    assert torch.allclose(PGDAT().losses(nn.Identity(), x * 7, xa, y)[0], got)


@pytest.mark.parametrize("beta", [6.0, 1.5, 0.0])
def test_trades_per_example_matches_hand_formula(beta):
    x, xa, y = tensors()
    got = TRADES(beta=beta).losses(nn.Identity(), x, xa, y)[0]
    expected = [ce(CLEAN[i], Y[i]) + beta * kl(softmax(CLEAN[i]), softmax(ADV[i]))
                for i in range(3)]
    assert torch.allclose(got, torch.tensor(expected), atol=1e-5)


def test_trades_per_example_at_x_adv_equal_x_is_clean_ce():
    x, _, y = tensors()
    got = TRADES(beta=6.0).losses(nn.Identity(), x, x.clone(), y)[0]
    assert torch.allclose(got, torch.tensor([ce(CLEAN[i], Y[i]) for i in range(3)]), atol=1e-6)


@pytest.mark.parametrize("beta", [6.0, 2.0])
def test_mart_per_example_matches_hand_formula(beta):
    x, xa, y = tensors()
    got = MART(beta=beta).losses(nn.Identity(), x, xa, y)[0]
    expected = []
    for i in range(3):
        p_adv, p_clean = softmax(ADV[i]), softmax(CLEAN[i])
        boosted = ce(ADV[i], Y[i]) - math.log(1.0001 - p_adv[LARGEST_WRONG[i]])
        expected.append(boosted + beta * kl(p_clean, p_adv) * (1.0000001 - p_clean[Y[i]]))
    assert torch.allclose(got, torch.tensor(expected), atol=1e-5)


def test_mart_uses_largest_wrong_class_not_argmax():
    # Using the argmax (= y in row 1) instead of the largest wrong class changes the value.
    x, xa, y = tensors()
    got = MART(beta=0.0).losses(nn.Identity(), x[1:2], xa[1:2], y[1:2])[0]
    p = softmax(ADV[1])
    right = ce(ADV[1], 2) - math.log(1.0001 - p[0])
    wrong = ce(ADV[1], 2) - math.log(1.0001 - p[2])
    assert abs(right - wrong) > 0.1
    assert got.item() == pytest.approx(right, abs=1e-5)


def test_kl_per_example_matches_hand_sum_and_is_zero_on_itself():
    x, xa, _ = tensors()
    got = kl_per_example(torch.softmax(x, 1), xa)
    expected = [kl(softmax(CLEAN[i]), softmax(ADV[i])) for i in range(3)]
    assert torch.allclose(got, torch.tensor(expected), atol=1e-6)
    assert torch.allclose(kl_per_example(torch.softmax(x, 1), x), torch.zeros(3), atol=1e-6)


def test_weighted_mean():
    losses = torch.tensor([1.0, 2.0, 3.0])
    assert weighted_mean(losses, torch.tensor([1.0, 0.0, 3.0])).item() == pytest.approx(2.5)
    assert weighted_mean(losses, None).item() == pytest.approx(2.0)
    assert weighted_mean(losses, torch.tensor([2.0, 2.0, 2.0])).item() == pytest.approx(2.0)


@pytest.mark.parametrize("obj", [PGDAT(), TRADES(beta=3.0), MART(beta=3.0), Objective()])
def test_loss_is_weighted_mean_of_per_example(obj):
    x, xa, y = tensors()
    per = obj.losses(nn.Identity(), x, xa, y)[0]
    w = torch.tensor([0.5, 2.0, 1.0])
    expected = (per * w).sum() / w.sum()
    assert obj.loss(nn.Identity(), x, xa, y, w).item() == pytest.approx(expected.item(), rel=1e-6)
    assert obj.loss(nn.Identity(), x, xa, y).item() == pytest.approx(per.mean().item(), rel=1e-6)
    assert not torch.allclose(expected, per.mean())  # the weights matter in this case


def test_clean_objective_does_no_attack_and_no_passes():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    meter = CostMeter()
    counted = CountingModel(model, meter)
    x, y = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
    obj = Objective()
    assert obj.name == "clean" and not obj.attacked
    with meter.in_phase("attack"):
        out = obj.adversarial(counted, x, y, PGD(eps=0.1, alpha=0.02, steps=10))
    assert torch.equal(out, x)
    assert meter.total_passes == 0
    # the clean loss is CE on x
    loss = obj.losses(model, x, out, y)[0]
    assert torch.allclose(loss, torch.nn.functional.cross_entropy(model(x), y, reduction="none"))


def test_attacked_objective_with_zero_steps_returns_x():
    x, _, y = tensors()
    out = PGDAT().adversarial(nn.Identity(), x, y, PGD(eps=0.1, alpha=0.02, steps=0))
    assert torch.equal(out, x)


def test_trades_attack_loss_is_kl_to_clean_prediction():
    x, xa, y = tensors()
    loss_fn = TRADES().attack_loss(nn.Identity(), x, y)
    idx = torch.arange(3)
    assert torch.allclose(loss_fn(x.clone(), idx), torch.zeros(3), atol=1e-6)
    expected = [kl(softmax(CLEAN[i]), softmax(ADV[i])) for i in range(3)]
    assert torch.allclose(loss_fn(xa, idx), torch.tensor(expected), atol=1e-6)
    # rows are matched by ``idx`` (attacks drop finished examples)
    sub = loss_fn(xa[[2, 0]], torch.tensor([2, 0]))
    assert torch.allclose(sub, torch.tensor([expected[2], expected[0]]), atol=1e-6)
    # it does not depend on the labels
    assert torch.allclose(TRADES().attack_loss(nn.Identity(), x, 1 - y.clamp(max=1))(xa, idx),
                          torch.tensor(expected), atol=1e-6)


@pytest.mark.parametrize("obj", [PGDAT(), MART()])
def test_pgd_at_and_mart_attack_loss_is_ce(obj):
    x, xa, y = tensors()
    got = obj.attack_loss(nn.Identity(), x, y)(xa, torch.arange(3))
    assert torch.allclose(got, torch.tensor([ce(ADV[i], Y[i]) for i in range(3)]), atol=1e-6)


_seen: list[torch.Tensor | None] = []


class RecordingPGD(PGD):
    """Records the start ``delta`` the objective hands to the attack, and returns x."""

    def perturb(self, model, x, loss_fn, delta=None, stop_labels=None) -> torch.Tensor:
        _seen.append(None if delta is None else delta.clone())
        return x.clone()


@pytest.mark.parametrize("obj", [TRADES(), MART()])
def test_trades_and_mart_start_from_gaussian_0_001(obj):
    assert obj.gaussian_start == 0.001
    _seen.clear()
    torch.manual_seed(0)
    x = torch.rand(4, 1, 4, 4)
    y = torch.tensor([0, 1, 2, 0])
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    torch.manual_seed(7)
    obj.adversarial(model, x, y, RecordingPGD(eps=0.1, alpha=0.02, steps=1))
    torch.manual_seed(7)
    expected = 0.001 * torch.randn_like(x)
    assert len(_seen) == 1 and _seen[0] is not None
    assert torch.equal(_seen[0], expected)


def test_pgd_at_uses_the_attack_uniform_start():
    assert PGDAT().gaussian_start is None
    _seen.clear()
    x = torch.rand(2, 3)
    PGDAT().adversarial(nn.Identity(), x, torch.tensor([0, 1]),
                        RecordingPGD(eps=0.1, alpha=0.02, steps=1))
    assert _seen == [None]


def test_trades_adversarial_end_to_end_in_ball_and_increases_kl():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x = 0.2 + 0.6 * torch.rand(6, 1, 4, 4)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    torch.manual_seed(1)
    xa = TRADES().adversarial(model, x, y, PGD(eps=0.1, alpha=0.03, steps=5))
    assert (xa - x).abs().max() <= 0.1 + 1e-6
    with torch.no_grad():
        k = kl_per_example(torch.softmax(model(x), 1), model(xa))
    assert k.min() > 0 and k.mean() > 1e-3


def test_build_objective():
    assert type(build_objective(ObjectiveConfig(name="pgd-at"))) is PGDAT
    t = build_objective(ObjectiveConfig(name="trades", beta=2.5))
    m = build_objective(ObjectiveConfig(name="mart", beta=4.0))
    assert type(t) is TRADES and t.beta == 2.5
    assert type(m) is MART and m.beta == 4.0
    with pytest.raises(ValueError, match="nope"):
        build_objective(ObjectiveConfig(name="nope"))


class _Recorder(nn.Module):
    """A linear model that keeps every input it is run on."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(16, 3)
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return self.lin(x.flatten(1))


@pytest.mark.parametrize("objective", [PGDAT(), TRADES(), MART()])
@pytest.mark.parametrize("attack_name", ["pgd", "fgsm-rs", "n-fgsm"])
def test_start_noise_of_every_attack_under_every_objective(objective, attack_name):
    """The attack's own random start is kept: FGSM-RS starts uniformly in the eps-ball and
    N-FGSM from 2 eps noise under every objective; only PGD takes TRADES/MART's 0.001·N(0,1)
    start, as their reference code does (and PGD-AT's uniform start otherwise)."""
    from robustprune.attacks import ATTACKS

    eps = 0.1
    attack = ATTACKS[attack_name](eps=eps, alpha=eps, steps=1)
    torch.manual_seed(0)
    model = _Recorder()
    x = torch.full((256, 1, 4, 4), 0.5)
    objective.adversarial(model, x, torch.zeros(256, dtype=torch.long), attack)
    start = (model.seen[-1] - x).abs()  # the one attack forward is at x + the start
    low, high = {"pgd": (0.002, 0.01) if objective.gaussian_start else (0.8 * eps, eps),
                 "fgsm-rs": (0.8 * eps, eps), "n-fgsm": (1.6 * eps, 2 * eps)}[attack_name]
    assert low < start.max() <= high + 1e-6  # this start's range, not another's
