"""Tests for robustprune.cost: exact example-pass counts through CountingModel for attacks,
training steps and TRADES, phase attribution, pausing, timing and state round trips."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from robustprune.attacks import PGD
from robustprune.cost import PHASES, CostMeter, CountingModel
from robustprune.objectives import PGDAT, TRADES

B = 5


def setup() -> tuple[nn.Module, CostMeter, CountingModel, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    meter = CostMeter()
    x = torch.rand(B, 1, 4, 4)
    y = torch.tensor([0, 1, 2, 0, 1])
    return model, meter, CountingModel(model, meter), x, y


def counts(meter: CostMeter) -> tuple[dict[str, int], dict[str, int]]:
    return dict(meter.forward), dict(meter.backward)


def test_new_meter_is_zero_in_train_phase():
    meter = CostMeter()
    assert meter.phase == "train" and meter.enabled
    assert meter.total_passes == 0 and meter.total_seconds == 0.0
    assert set(meter.forward) == set(PHASES) == {"attack", "train", "select"}


@pytest.mark.parametrize("steps", [1, 3, 7])
def test_pgd_k_counts_k_times_b_forward_and_backward(steps):
    _, meter, counted, x, y = setup()
    with meter.in_phase("attack"):
        PGD(eps=0.1, alpha=0.02, steps=steps)(counted, x, y)
    f, b = counts(meter)
    assert f == {"attack": steps * B, "train": 0, "select": 0}
    assert b == {"attack": steps * B, "train": 0, "select": 0}
    assert meter.total_passes == 2 * steps * B


def test_pgd_at_training_step_counts_b_and_b():
    model, meter, counted, x, y = setup()
    xa = x + 0.05
    with meter.in_phase("train"):
        loss = PGDAT().loss(counted, x, xa, y)
        loss.backward()
    assert counts(meter) == ({"attack": 0, "train": B, "select": 0},
                             {"attack": 0, "train": B, "select": 0})
    assert model[1].weight.grad is not None


def test_trades_counts_clean_forward_in_attack_and_two_passes_each_in_train():
    _, meter, counted, x, y = setup()
    obj = TRADES()
    with meter.in_phase("attack"):
        loss_fn = obj.attack_loss(counted, x, y)
    assert counts(meter) == ({"attack": B, "train": 0, "select": 0},
                             {"attack": 0, "train": 0, "select": 0})
    xa = x + 0.01
    with meter.in_phase("train"):
        obj.loss(counted, x, xa, y).backward()
    assert counts(meter) == ({"attack": B, "train": 2 * B, "select": 0},
                             {"attack": 0, "train": 2 * B, "select": 0})
    assert loss_fn(counted(xa), torch.arange(B)).shape == (B,)


def test_trades_full_attack_counts_clean_forward_plus_k_passes():
    _, meter, counted, x, y = setup()
    with meter.in_phase("attack"):
        TRADES().adversarial(counted, x, y, PGD(eps=0.1, alpha=0.02, steps=4))
    assert meter.forward["attack"] == B + 4 * B
    assert meter.backward["attack"] == 4 * B


def test_paused_counts_nothing_and_restores():
    _, meter, counted, x, y = setup()
    with meter.paused(), meter.in_phase("attack"):
        PGD(eps=0.1, alpha=0.02, steps=3)(counted, x, y)
        counted(x).sum().backward()
        time.sleep(0.01)
    assert meter.total_passes == 0
    assert meter.total_seconds == 0.0
    assert meter.enabled
    counted(x)
    assert meter.forward["train"] == B


def test_backward_after_pause_of_forward_in_pause_is_not_counted():
    _, meter, counted, x, _ = setup()
    with meter.paused():
        out = counted(x)
    out.sum().backward()
    assert meter.total_passes == 0


def test_no_grad_forward_counts_forward_only():
    _, meter, counted, x, _ = setup()
    with torch.no_grad():
        counted(x)
    assert counts(meter) == ({"attack": 0, "train": B, "select": 0},
                             {"attack": 0, "train": 0, "select": 0})


def test_backward_is_counted_once_per_backward_and_charged_to_forward_phase():
    _, meter, counted, x, _ = setup()
    with meter.in_phase("select"):
        out = counted(x)
    with meter.in_phase("train"):
        out.sum().backward(retain_graph=True)
        out.pow(2).sum().backward()
    assert meter.forward == {"attack": 0, "train": 0, "select": B}
    assert meter.backward == {"attack": 0, "train": 0, "select": 2 * B}


def test_input_only_gradient_counts_a_backward():
    _, meter, counted, x, _ = setup()
    xr = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(counted(xr).sum(), xr)
    assert g.shape == x.shape
    assert meter.forward["train"] == B and meter.backward["train"] == B


def test_unknown_phase_raises_and_keeps_phase():
    meter = CostMeter()
    with pytest.raises(ValueError, match="eval"), meter.in_phase("eval"):
        pass
    assert meter.phase == "train"


def test_phase_restored_after_exception_and_nesting():
    meter = CostMeter()
    with pytest.raises(RuntimeError), meter.in_phase("attack"):
        assert meter.phase == "attack"
        raise RuntimeError("boom")
    assert meter.phase == "train"
    with meter.in_phase("select"):
        with meter.in_phase("attack"):
            assert meter.phase == "attack"
        assert meter.phase == "select"
    assert meter.phase == "train"


def test_seconds_go_to_the_phase():
    meter = CostMeter()
    with meter.in_phase("select"):
        time.sleep(0.02)
    assert meter.seconds["select"] >= 0.02
    assert meter.seconds["attack"] == 0.0 and meter.seconds["train"] == 0.0
    assert meter.total_seconds == meter.seconds["select"]


def test_summary_totals_equal_sums():
    meter = CostMeter()
    meter.forward = {"attack": 30, "train": 7, "select": 2}
    meter.backward = {"attack": 20, "train": 7, "select": 0}
    meter.seconds = {"attack": 1.25, "train": 0.5, "select": 0.125}
    s = meter.summary()
    assert s["forward_passes"] == 39
    assert s["backward_passes"] == 27
    assert s["passes"] == 66 == meter.total_passes
    assert s["seconds"] == pytest.approx(1.875)
    assert s["attack_forward"] == 30 and s["train_backward"] == 7 and s["select_forward"] == 2
    assert s["select_seconds"] == pytest.approx(0.125)
    assert s["passes"] == sum(s[f"{p}_forward"] + s[f"{p}_backward"] for p in PHASES)


def test_count_methods_respect_enabled():
    meter = CostMeter()
    meter.count_forward(3, "select")
    meter.count_backward(2, "attack")
    with meter.paused():
        meter.count_forward(100, "select")
    assert meter.forward["select"] == 3 and meter.backward["attack"] == 2


def test_state_dict_round_trip_is_a_copy():
    _, meter, counted, x, y = setup()
    with meter.in_phase("attack"):
        PGD(eps=0.1, alpha=0.02, steps=2)(counted, x, y)
    meter.seconds["select"] = 0.75
    state = meter.state_dict()
    other = CostMeter()
    other.load_state_dict(state)
    assert other.forward == meter.forward == {"attack": 2 * B, "train": 0, "select": 0}
    assert other.backward == meter.backward
    assert other.seconds == meter.seconds
    assert other.summary() == meter.summary()
    meter.count_forward(1, "attack")
    assert state["forward"]["attack"] == 2 * B  # the saved state does not follow the meter
    assert other.forward["attack"] == 2 * B
