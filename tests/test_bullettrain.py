"""BulletTrain: categories on a hand-built batch, per-category attack budgets, the online r."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustprune.attacks import FGSMRS, NFGSM, PGD
from robustprune.config import params_from_dict
from robustprune.cost import CostMeter, CountingModel
from robustprune.objectives import PGDAT, TRADES
from robustprune.selection.bullettrain import (
    BOUNDARY,
    OUTLIER,
    ROBUST,
    BulletTrainOptions,
    categorize,
    signed_spread,
)
from robustprune.selection.registry import BulletTrain, build_miner


def test_signed_spread_sign_and_magnitude():
    logits = torch.tensor([[4.0, 0.0, 0.0], [4.0, 0.0, 0.0], [1.0, 0.9, 0.8]])
    y = torch.tensor([0, 1, 0])
    s = signed_spread(logits, y)
    p = torch.softmax(logits, 1)
    assert torch.allclose(s, torch.stack([p[0].std(), -p[1].std(), p[2].std()]))


def test_categories_match_hand_built_batch():
    # scores: two misclassified (negative), then increasing confidence
    s = torch.tensor([-0.3, -0.01, 0.05, 0.10, 0.20, 0.30, 0.40, 0.45])
    # r = 0.25 of 8 -> the top 2 (quantile 0.75 of s = 0.4125 -> 0.45 and ... ) computed exactly:
    q = torch.quantile(s, 0.75).item()
    expected = [OUTLIER, OUTLIER] + [ROBUST if v >= q else BOUNDARY for v in s[2:].tolist()]
    assert categorize(s, 0.25).tolist() == expected
    assert expected.count(ROBUST) == 2
    assert categorize(s, 0.0).tolist() == [OUTLIER, OUTLIER] + [BOUNDARY] * 6
    # a robust share larger than the confident part never promotes misclassified examples
    assert categorize(s, 0.9).tolist()[:2] == [OUTLIER, OUTLIER]
    assert set(categorize(s, 0.9).tolist()[2:]) == {ROBUST}


class FixedLogits(nn.Module):
    """Linear model whose clean predictions we control through the input's first features."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[3.0, 0, 0, 0], [0, 3.0, 0, 0], [0, 0, 3.0, 0]]))
            self.lin.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x.flatten(1))


@pytest.mark.parametrize("objective", [PGDAT(), TRADES()])
def test_attack_budget_per_category_is_exact(objective):
    torch.manual_seed(0)
    x = torch.tensor([[1.0, 0, 0, 0], [1.0, 0, 0, 0], [0, 1.0, 0, 0], [0.5, 0.45, 0.4, 0],
                      [0.55, 0.5, 0.45, 0]]).view(5, 1, 2, 2)
    y = torch.tensor([0, 1, 1, 0, 0])  # example 1 is misclassified -> outlier
    meter = CostMeter()
    model = CountingModel(FixedLogits(), meter)
    miner = BulletTrain()
    miner.r = 0.4  # the two most confident correct examples (0 and 2) are robust
    attack = PGD(eps=0.1, alpha=0.02, steps=5)
    x_adv = miner.adversarial(model, x, y, objective, attack, meter)
    assert torch.equal(x_adv[1], x[1])  # outlier: clean input, no attack
    assert meter.forward["select"] == 5 and meter.backward["select"] == 0
    n_boundary, n_robust = 2, 2
    clean_fwd = (n_boundary + n_robust) if objective.needs_clean else 0  # TRADES' KL target
    assert meter.forward["attack"] == 5 * n_boundary + 2 * n_robust + clean_fwd
    assert meter.backward["attack"] == 5 * n_boundary + 2 * n_robust
    for i in (0, 2, 3, 4):
        assert not torch.equal(x_adv[i], x[i])
        assert (x_adv[i] - x[i]).abs().max() <= 0.1 + 1e-6
    shares = miner.epoch_metrics()
    assert shares["bt_outlier_share"] == pytest.approx(0.2)
    assert shares["bt_robust_share"] == pytest.approx(0.4)
    assert shares["bt_boundary_share"] == pytest.approx(0.4)
    assert shares["bt_mean_r"] == pytest.approx(0.4)
    assert miner.epoch_metrics()["bt_robust_share"] == 0.0  # reset after reading


def test_robust_fraction_is_an_ema_of_robust_accuracy():
    miner = BulletTrain(BulletTrainOptions(gamma=0.8), momentum=0.9)
    y = torch.tensor([0, 1, 2, 0])
    right = torch.nn.functional.one_hot(y, 3).float()
    idx = torch.arange(4)
    miner.observe(right, y, idx)  # accuracy 1
    assert miner.r == pytest.approx(0.1 * 0.8)
    miner.observe(-right, y, idx)  # accuracy 0
    assert miner.r == pytest.approx(0.9 * 0.08)
    state = miner.state_dict()
    other = BulletTrain()
    other.load_state_dict(state)
    assert other.r == miner.r


def test_build_miner_from_params():
    p = params_from_dict({"methods": {"plain": {}, "bt": {"miner": "bullettrain", "gamma": 0.5,
                                                          "robust_steps": 1}}})
    assert type(build_miner(p.method("plain").miner)).name == "none"
    bt = build_miner(p.method("bt").miner, p.method("bt").miner_options)
    assert isinstance(bt, BulletTrain) and bt.gamma == 0.5 and bt.robust_steps == 1


@pytest.mark.parametrize(("attack", "bound"), [
    (FGSMRS(eps=0.1, alpha=0.125), 0.1),            # projected: inside the eps-ball
    (NFGSM(eps=0.1, alpha=0.1), 0.3 + 1e-6),         # its own bound: 2 eps noise + an eps step
])
@pytest.mark.parametrize("objective", [PGDAT(), TRADES()])
def test_one_step_attack_robust_category_stays_inside_the_threat_model(attack, bound, objective):
    """A one-step attack's cheaper version is the same attack: no 3·alpha step that would erase
    FGSM-RS's random start (plain FGSM) or take N-FGSM to 5 eps."""
    torch.manual_seed(0)
    x = torch.full((64, 1, 2, 2), 0.5)
    x[:, 0, 0, 0] = 0.9  # every example confidently class 0: all robust at r = 1
    y = torch.zeros(64, dtype=torch.long)
    meter = CostMeter()
    model = CountingModel(FixedLogits(), meter)
    miner = BulletTrain(BulletTrainOptions(robust_steps=2, robust_step_factor=3.0))
    miner.r = 1.0
    x_adv = miner.adversarial(model, x, y, objective, attack, meter)
    assert miner.epoch_metrics()["bt_robust_share"] == 1.0
    delta = (x_adv - x).abs().flatten(1).amax(1)
    assert (delta <= bound + 1e-6).all()
    assert meter.backward["attack"] == 64  # one step each, as the base attack
    if isinstance(attack, FGSMRS):  # the random start survives: not all at the ball's corner
        assert ((x_adv - x).abs() < 0.1 - 1e-3).any()
    nothing = BulletTrain(BulletTrainOptions(robust_steps=0))
    nothing.r = 1.0
    assert torch.equal(nothing.adversarial(model, x, y, objective, attack, CostMeter()), x)


def test_pgd_robust_category_takes_fewer_larger_projected_steps():
    attack = PGD(eps=0.1, alpha=0.02, steps=10)
    cheap = attack.cheaper(2, 3.0)
    assert (cheap.steps, cheap.alpha, cheap.eps) == (2, pytest.approx(0.06), 0.1)
    assert attack.cheaper(20, 1.0).steps == 10 and attack.cheaper(0, 3.0) is None
