"""Evaluation tiers on hand-built models: PGD ANDed with clean correctness, the sanity checks
that catch a model that learned nothing or masks its gradients, and the reference AutoAttack's
per-example attribution and chunk-by-chunk resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from robustprune.attacks import PGD
from robustprune.config import EvalConfig
from robustprune.evaluation import (
    AUTOATTACK_STANDARD,
    evaluate_model,
    pgd_correct,
    reference_autoattack,
)
from robustprune.report import ReportConfig, eval_failed
from tests.conftest import make_tiny_npz

CPU = torch.device("cpu")


def _data(tmp_path: Path, n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    z = np.load(make_tiny_npz(tmp_path / "t.npz", n_train=8, n_test=n))
    return torch.from_numpy(z["x_test"]).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(
        z["y_test"])


class Quadrants(nn.Module):
    """Classifies the tiny data by its brightest quadrant: right on every clean example.

    ``masked``: the logits carry no gradient to the input (a gradient-masking defence)."""

    def __init__(self, masked: bool = False, scale: float = 20.0) -> None:
        super().__init__()
        self.masked, self.scale = masked, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.masked:
            x = x * 0 + x.detach()
        h = x.shape[-1] // 2
        q = [x[..., r * h:(r + 1) * h, c * h:(c + 1) * h].mean((1, 2, 3))
             for r in (0, 1) for c in (0, 1)]
        return self.scale * torch.stack(q, 1)


class WrongOnTheGrid(nn.Module):
    """Predicts class 1 for perturbed inputs and class 0 for inputs exactly on the uint8 grid:
    wrong on every clean example of class 1, right at every point an attack visits."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        off = ((x * 255 - (x * 255).round()).abs().flatten(1).sum(1) > 1e-3).float()
        logits = torch.stack([1 - off, off, torch.zeros_like(off), torch.zeros_like(off)], 1)
        return 10 * logits + 0 * x.flatten(1).sum(1, keepdim=True)  # a graph, zero gradient


def test_pgd_robustness_requires_clean_correctness() -> None:
    x = torch.full((6, 1, 8, 8), 100, dtype=torch.uint8).float() / 255
    y = torch.ones(6, dtype=torch.long)
    ok = pgd_correct(WrongOnTheGrid(), x, y, PGD(eps=0.1, alpha=0.025, steps=5), 1, 6, CPU)
    assert not ok.any()  # wrong at x itself, so not robust, whatever the attack visits


def test_a_model_at_chance_fails_above_chance(tmp_path: Path) -> None:
    x, y = _data(tmp_path)

    class Constant(nn.Module):
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return torch.zeros(len(t), 4) + torch.tensor([1.0, 0, 0, 0]) + 0 * t.sum()

    cfg = EvalConfig(n_autoattack=0, n_curve=16, batch_size=32)
    m, _ = evaluate_model(Constant(), x, y, cfg, norm="linf", eps=0.1, num_classes=4, seed=0,
                          device=CPU)
    assert m["clean_acc"] == pytest.approx(0.25) and m["majority_rate"] == pytest.approx(0.25)
    # the evaluation records the figures; the report judges them against its threshold
    assert "above_chance" in eval_failed(m, ReportConfig())
    assert "above_chance" not in eval_failed(m, ReportConfig(chance_margin=0.0))


def test_masked_gradients_fail_the_curve_check(tmp_path: Path) -> None:
    x, y = _data(tmp_path)
    cfg = EvalConfig(n_autoattack=0, n_curve=32, pgd_steps=10, batch_size=32)
    honest, cols = evaluate_model(Quadrants(), x, y, cfg, norm="linf", eps=0.1, num_classes=4,
                                  seed=0, device=CPU)
    masked, _ = evaluate_model(Quadrants(masked=True), x, y, cfg, norm="linf", eps=0.1,
                               num_classes=4, seed=0, device=CPU)
    assert honest["clean_acc"] == masked["clean_acc"] == 1.0
    assert honest["checks"]["curve_decreasing"]
    assert "curve_reaches_zero" not in eval_failed(honest, ReportConfig())
    assert honest["eps_curve"]["4"] == 0.0
    # gradient attacks cannot move it
    assert "curve_reaches_zero" in eval_failed(masked, ReportConfig())
    assert masked["eps_curve"]["4"] > 0.5
    # per-example columns: one entry per test example, -1 outside a tier's prefix
    assert len(cols["pgd_eps_x4"]) == len(y) and (cols["pgd_eps_x4"][32:] == -1).all()


def test_reference_autoattack_attributes_and_resumes(tmp_path: Path) -> None:
    x, y = _data(tmp_path, n=6)
    model = Quadrants(scale=2.0)  # small margins: some examples break at eps = 0.3
    kw = {"norm": "linf", "eps": 0.3, "num_classes": 4, "seed": 0, "chunk": 3,
          "batch_size": 6, "device": CPU, "log": lambda _: None}
    straight = reference_autoattack(model, x.float() / 255, y, **kw)
    assert straight.broken_by.shape == (6,)
    assert set(straight.broken_by.tolist()) <= {-1, 0, 1, 2, 3, 4}
    after = straight.accuracy_after()
    assert list(after) == ["clean", *AUTOATTACK_STANDARD]
    assert list(after.values()) == sorted(after.values(), reverse=True)
    assert after["square"] == pytest.approx(straight.robust.mean(), abs=1e-6)

    state = tmp_path / "state"
    first = reference_autoattack(model, x.float() / 255, y, state_dir=state, **kw)
    assert np.array_equal(first.broken_by, straight.broken_by)
    assert sorted(p.name for p in state.iterdir()) == ["autoattack-000000.npz",
                                                       "autoattack-000003.npz"]
    # a kill after the first chunk: the second is recomputed, the first read back
    (state / "autoattack-000003.npz").unlink()
    resumed = reference_autoattack(model, x.float() / 255, y, state_dir=state, **kw)
    assert np.array_equal(resumed.broken_by, straight.broken_by)
    # with both chunks saved nothing is attacked again: the model is never called
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    again = reference_autoattack(model, x.float() / 255, y, state_dir=state, **kw)
    assert calls == [] and np.array_equal(again.broken_by, straight.broken_by)
