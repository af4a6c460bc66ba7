"""Tests for robustprune.attacks: geometry (box, ε-balls), loss ascent, early stopping on
``stop_labels`` (with exact pass counts), settings changes and the config -> attack mapping."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustprune.attacks import (
    FGSMRS,
    NFGSM,
    PGD,
    Attack,
    build_attack,
    cross_entropy_loss,
    project,
)
from robustprune.attacks.base import ascent_direction, random_in_ball
from robustprune.config import AttackConfig
from robustprune.cost import CostMeter, CountingModel

B = 8


def tiny_model(seed: int = 0, classes: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, classes))


def tiny_batch(seed: int = 1, lo: float = 0.0,
               hi: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = lo + (hi - lo) * torch.rand(B, 1, 4, 4, generator=g)
    y = torch.randint(0, 3, (B,), generator=g)
    return x, y


def ce(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return F.cross_entropy(model(x), y, reduction="none")


def linf(delta: torch.Tensor) -> torch.Tensor:
    return delta.flatten(1).abs().amax(dim=1)


def l2(delta: torch.Tensor) -> torch.Tensor:
    return delta.flatten(1).norm(dim=1)


def threshold_model(scale: float = 20.0) -> nn.Module:
    """Two classes: class 1 iff mean(x) > 0.5, with logit gap scale·(mean(x) − 0.5)."""
    m = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    with torch.no_grad():
        m[1].weight.zero_()
        m[1].weight[1] = scale / 16
        m[1].bias.copy_(torch.tensor([0.0, -scale * 0.5]))
    return m


def threshold_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Constant images; the middle four are within 0.1 of the boundary (easy to fool)."""
    c = torch.tensor([0.1, 0.2, 0.44, 0.47, 0.53, 0.56, 0.8, 0.9])
    return c.view(B, 1, 1, 1).expand(B, 1, 4, 4).clone(), (c > 0.5).long()


# --------------------------------------------------------------------------- geometry helpers


def test_project_linf_clamps_each_coordinate():
    d = torch.tensor([[0.5, -0.05, -0.3, 0.1]])
    assert torch.allclose(project(d, 0.1, "linf"), torch.tensor([[0.1, -0.05, -0.1, 0.1]]))


def test_project_l2_scales_only_examples_outside_the_ball():
    d = torch.tensor([[3.0, 4.0], [0.3, 0.4]])  # norms 5 and 0.5
    out = project(d, 1.0, "l2")
    assert torch.allclose(out, torch.tensor([[0.6, 0.8], [0.3, 0.4]]))


def test_ascent_direction_sign_and_unit_l2():
    g = torch.tensor([[3.0, -4.0], [0.0, 2.0]])
    assert torch.equal(ascent_direction(g, "linf"), torch.tensor([[1.0, -1.0], [0.0, 1.0]]))
    assert torch.allclose(ascent_direction(g, "l2"), torch.tensor([[0.6, -0.8], [0.0, 1.0]]))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_random_in_ball_stays_in_ball_and_is_not_degenerate(norm):
    torch.manual_seed(0)
    d = random_in_ball(torch.zeros(64, 1, 4, 4), 0.3, norm)
    size = linf(d) if norm == "linf" else l2(d)
    assert size.max() <= 0.3 + 1e-6
    assert size.min() > 0.0
    assert size.max() > 0.15  # spread over the ball, not collapsed at the centre


# --------------------------------------------------------------------------- PGD


@pytest.mark.parametrize(("norm", "eps", "alpha", "tol"),
                         [("linf", 0.1, 0.03, 1e-6), ("l2", 0.5, 0.2, 1e-5)])
def test_pgd_output_in_box_and_ball(norm, eps, alpha, tol):
    model = tiny_model()
    x, y = tiny_batch()
    torch.manual_seed(0)
    xa = PGD(eps=eps, alpha=alpha, steps=5, norm=norm)(model, x, y)
    assert xa.shape == x.shape
    assert xa.min() >= 0.0 and xa.max() <= 1.0
    size = linf(xa - x) if norm == "linf" else l2(xa - x)
    assert size.max() <= eps + tol
    assert size.max() > 0.5 * eps  # it actually moved
    assert not xa.requires_grad


@pytest.mark.parametrize(("norm", "eps", "alpha"), [("linf", 0.1, 0.03), ("l2", 0.5, 0.2)])
def test_pgd_raises_mean_loss_over_clean(norm, eps, alpha):
    model = tiny_model()
    x, y = tiny_batch()
    torch.manual_seed(0)
    xa = PGD(eps=eps, alpha=alpha, steps=5, norm=norm)(model, x, y)
    assert ce(model, xa, y).mean() > ce(model, x, y).mean() + 0.01


@pytest.mark.parametrize(("norm", "eps", "alpha"), [("linf", 0.1, 0.03), ("l2", 0.2, 0.08)])
def test_pgd_per_example_loss_not_below_random_start_for_linear_model(norm, eps, alpha):
    # CE of a linear model is convex in the input and every step moves along the gradient
    # (inputs kept inside (0,1) so the box never clips): the loss cannot decrease.
    model = tiny_model()
    x, y = tiny_batch(lo=0.3, hi=0.7)
    attack = PGD(eps=eps, alpha=alpha, steps=4, norm=norm)
    torch.manual_seed(0)
    delta0 = attack.initial_delta(x)
    assert delta0.abs().max() > 0
    start = ce(model, (x + delta0).clamp(0, 1), y)
    xa = attack.perturb(model, x, cross_entropy_loss(y), delta=delta0)
    end = ce(model, xa, y)
    assert torch.all(end >= start - 1e-6)
    assert end.mean() > start.mean() + 1e-3


def test_pgd_given_delta_is_deterministic_and_start_radius_zero_starts_at_x():
    model = tiny_model()
    x, y = tiny_batch()
    attack = PGD(eps=0.1, alpha=0.03, steps=3, start_radius=0)
    assert torch.equal(attack.initial_delta(x), torch.zeros_like(x))
    torch.manual_seed(0)
    a = attack(model, x, y)
    torch.manual_seed(123)
    b = attack(model, x, y)
    assert torch.equal(a, b)  # no randomness without a random start


def test_call_equals_perturb_with_cross_entropy_on_same_seed():
    model = tiny_model()
    x, y = tiny_batch()
    attack = PGD(eps=0.1, alpha=0.03, steps=3)
    torch.manual_seed(5)
    a = attack(model, x, y)
    torch.manual_seed(5)
    b = attack.perturb(model, x, cross_entropy_loss(y))
    assert torch.equal(a, b)


def test_steps_zero_returns_x_unchanged_as_a_copy():
    model = tiny_model()
    x, y = tiny_batch()
    torch.manual_seed(0)
    out = PGD(eps=0.1, alpha=0.03, steps=0)(model, x, y)
    assert torch.equal(out, x)
    assert out.data_ptr() != x.data_ptr()


@pytest.mark.parametrize("attack", [PGD(eps=0.1, alpha=0.1, steps=3), FGSMRS(eps=0.1, alpha=0.1),
                                    NFGSM(eps=0.1, alpha=0.1)])
def test_empty_batch_returns_empty(attack):
    x, y = tiny_batch()
    assert attack(tiny_model(), x[:0], y[:0]).shape == (0, 1, 4, 4)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_attack_keeps_model_mode(mode):
    model = tiny_model()
    model.train(mode == "train")
    x, y = tiny_batch()
    PGD(eps=0.1, alpha=0.03, steps=2)(model, x, y)
    assert model.training is (mode == "train")


# --------------------------------------------------------------------------- FGSM-RS, N-FGSM


@pytest.mark.parametrize(("norm", "eps", "tol"), [("linf", 0.1, 1e-6), ("l2", 0.5, 1e-5)])
def test_fgsm_rs_in_box_and_ball_and_raises_loss(norm, eps, tol):
    model = tiny_model()
    x, y = tiny_batch()
    torch.manual_seed(0)
    attack = FGSMRS(eps=eps, alpha=1.25 * eps, norm=norm)
    assert attack.steps == 1
    xa = attack(model, x, y)
    assert xa.min() >= 0.0 and xa.max() <= 1.0
    size = linf(xa - x) if norm == "linf" else l2(xa - x)
    assert size.max() <= eps + tol
    assert ce(model, xa, y).mean() > ce(model, x, y).mean()


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_nfgsm_leaves_ball_but_stays_within_three_eps(norm):
    model = tiny_model()
    g = torch.Generator().manual_seed(3)
    x = 0.3 + 0.4 * torch.rand(32, 1, 4, 4, generator=g)  # interior: the box does not clip
    y = torch.randint(0, 3, (32,), generator=g)
    eps = 0.1 if norm == "linf" else 0.3
    torch.manual_seed(0)
    attack = NFGSM(eps=eps, alpha=eps, norm=norm)
    assert attack.project_to_ball is False and attack.noise_factor == 2.0
    xa = attack(model, x, y)
    assert xa.min() >= 0.0 and xa.max() <= 1.0
    size = linf(xa - x) if norm == "linf" else l2(xa - x)
    assert size.max() <= 3 * eps + 1e-5
    assert size.max() > eps + 1e-3  # no projection: some examples go past eps
    assert ce(model, xa, y).mean() > ce(model, x, y).mean()


def test_nfgsm_noise_is_twice_eps():
    torch.manual_seed(0)
    d = NFGSM(eps=0.1, alpha=0.1).initial_delta(torch.zeros(64, 1, 4, 4))
    assert d.abs().max() <= 0.2 + 1e-6
    assert d.abs().max() > 0.15


# --------------------------------------------------------------------------- stop_labels


def run_pgd(stop: bool) -> tuple[torch.Tensor, CostMeter]:
    model = threshold_model()
    x, y = threshold_batch()
    meter = CostMeter()
    counted = CountingModel(model, meter)
    torch.manual_seed(0)
    with meter.in_phase("attack"):
        xa = PGD(eps=0.1, alpha=0.02, steps=10).perturb(
            counted, x, cross_entropy_loss(y), stop_labels=y if stop else None)
    return xa, meter


def test_stop_labels_is_as_strong_freezes_fooled_examples_and_is_cheaper():
    model = threshold_model()
    x, y = threshold_batch()
    assert torch.equal(model(x).argmax(1), y)  # all clean-correct
    full, full_meter = run_pgd(stop=False)
    early, early_meter = run_pgd(stop=True)
    with torch.no_grad():
        wrong_full = model(full).argmax(1) != y
        wrong_early = model(early).argmax(1) != y
    assert wrong_full.tolist() == [False, False, True, True, True, True, False, False]
    assert int(wrong_early.sum()) >= int(wrong_full.sum())
    assert bool(wrong_early[wrong_full].all())
    # examples that were never fooled follow the same trajectory as without stopping
    hard = torch.tensor([0, 1, 6, 7])
    assert torch.allclose(early[hard], full[hard], atol=1e-6)
    # fooled examples were frozen before reaching the boundary of the ball, and misclassified
    frozen = (early - full).flatten(1).abs().amax(1) > 1e-6
    assert frozen.tolist() == [False, False, True, True, True, True, False, False]
    assert bool(wrong_early[frozen].all())
    # (the gap depends on mean(x) only; it reaches ±0.1 in every example without stopping)
    assert torch.allclose((full - x).flatten(1).mean(1).abs(), torch.full((B,), 0.1))
    assert (early - x).flatten(1).mean(1).abs()[frozen].max() < 0.1 - 1e-3
    # passes: 10 steps x 8 without stopping; with it the 4 hard ones run all 10 steps
    assert full_meter.forward["attack"] == 80
    assert full_meter.backward["attack"] == 80
    assert 40 < early_meter.forward["attack"] < 80
    assert early_meter.backward["attack"] == early_meter.forward["attack"]


def test_stop_labels_all_fooled_at_start_stops_after_one_forward():
    model = threshold_model()
    x, y = threshold_batch()
    meter = CostMeter()
    counted = CountingModel(model, meter)
    torch.manual_seed(0)
    xa = PGD(eps=0.1, alpha=0.02, steps=10, start_radius=0).perturb(
        counted, x, cross_entropy_loss(y), stop_labels=1 - y)  # "fooled" = every example
    assert torch.equal(xa, x)
    assert meter.forward["train"] == 8
    assert meter.backward["train"] == 0


# --------------------------------------------------------------------------- settings


def test_with_changes_settings_and_keeps_the_original():
    pgd = PGD(eps=0.1, alpha=0.02, steps=10, norm="linf")
    fewer = pgd.with_(steps=3, alpha=0.05)
    assert type(fewer) is PGD
    assert (fewer.eps, fewer.alpha, fewer.steps, fewer.norm) == (0.1, 0.05, 3, "linf")
    assert (pgd.alpha, pgd.steps) == (0.02, 10)
    model = tiny_model()
    x, y = tiny_batch()
    torch.manual_seed(0)
    a = pgd.with_(steps=0)(model, x, y)
    assert torch.equal(a, x)


def test_with_revalidates():
    with pytest.raises(ValueError):
        PGD(eps=0.1, alpha=0.02, steps=10).with_(norm="l3")
    with pytest.raises(ValueError):
        FGSMRS(eps=0.1, alpha=0.125).with_(steps=2)


@pytest.mark.parametrize("make", [
    lambda: PGD(eps=0.1, alpha=0.02, steps=10, norm="l3"),
    lambda: PGD(eps=-0.1, alpha=0.02, steps=10),
    lambda: PGD(eps=0.1, alpha=0.0, steps=10),
    lambda: PGD(eps=0.1, alpha=0.02, steps=-1),
    lambda: FGSMRS(eps=0.1, alpha=0.125, steps=2),
    lambda: NFGSM(eps=0.1, alpha=0.1, steps=2),
])
def test_invalid_construction_raises(make):
    with pytest.raises(ValueError):
        make()


def test_build_attack_pgd():
    a = build_attack(AttackConfig(name="pgd", norm="l2", eps=0.5, alpha=0.1, steps=7))
    assert type(a) is PGD
    assert (a.eps, a.alpha, a.steps, a.norm, a.project_to_ball) == (0.5, 0.1, 7, "l2", True)


def test_build_attack_fgsm_rs_ignores_steps():
    a = build_attack(AttackConfig(name="fgsm-rs", norm="linf", eps=0.1, alpha=0.125, steps=10))
    assert type(a) is FGSMRS
    assert (a.eps, a.alpha, a.steps, a.norm) == (0.1, 0.125, 1, "linf")


def test_build_attack_nfgsm_steps_by_eps():
    a = build_attack(AttackConfig(name="n-fgsm", norm="linf", eps=0.1, alpha=0.02, steps=10))
    assert type(a) is NFGSM
    assert (a.eps, a.alpha, a.steps, a.project_to_ball) == (0.1, 0.1, 1, False)
    assert isinstance(a, Attack)


def test_build_attack_unknown_name_raises():
    with pytest.raises(ValueError, match="cw"):
        build_attack(AttackConfig(name="cw"))
