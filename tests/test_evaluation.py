"""Evaluation tiers on hand-built models: PGD ANDed with clean correctness, the sanity checks
that catch a model that learned nothing or masks its gradients, and the reference attacks'
per-example attribution, the verdict tier with its check subset, and chunk-by-chunk resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from robustprune.attacks import PGD
from robustprune.config import EvalConfig
from robustprune.errors import ConfigError
from robustprune.evaluation import (
    AUTOATTACK_STANDARD,
    VERDICT_ATTACKS,
    evaluate_model,
    pgd_correct,
    reference_attacks,
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

    cfg = EvalConfig(n_verdict=0, n_autoattack=0, n_curve=16, batch_size=32)
    m, _ = evaluate_model(Constant(), x, y, cfg, norm="linf", eps=0.1, num_classes=4, seed=0,
                          device=CPU)
    assert m["clean_acc"] == pytest.approx(0.25) and m["majority_rate"] == pytest.approx(0.25)
    # the evaluation records the figures; the report judges them against its threshold
    assert "above_chance" in eval_failed(m, ReportConfig())
    assert "above_chance" not in eval_failed(m, ReportConfig(chance_margin=0.0))


def test_masked_gradients_fail_the_curve_check(tmp_path: Path) -> None:
    x, y = _data(tmp_path)
    cfg = EvalConfig(n_verdict=0, n_autoattack=0, n_curve=32, pgd_steps=10, batch_size=32)
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


def test_reference_attacks_attribute_and_resume(tmp_path: Path) -> None:
    x, y = _data(tmp_path, n=6)
    model = Quadrants(scale=2.0)  # small margins: some examples break at eps = 0.3
    kw = {"norm": "linf", "eps": 0.3, "num_classes": 4, "seed": 0, "chunk": 3,
          "batch_size": 6, "device": CPU, "log": lambda _: None}
    straight = reference_attacks(model, x.float() / 255, y, n_check=6, **kw)
    assert straight.broken_by.shape == (6,)
    assert set(straight.broken_by.tolist()) <= {-1, 0, 1, 2, 3, 4}
    after = straight.accuracy_after(check=True)
    assert list(after) == ["clean", *AUTOATTACK_STANDARD]
    assert list(after.values()) == sorted(after.values(), reverse=True)
    assert after["square"] == pytest.approx(straight.autoattack_robust.mean(), abs=1e-6)

    state = tmp_path / "state"
    first = reference_attacks(model, x.float() / 255, y, n_check=6, state_dir=state, **kw)
    assert np.array_equal(first.broken_by, straight.broken_by)
    names = sorted(p.name for p in state.iterdir())
    assert names == ["reference-000000-000003-4.npz", "reference-000003-000006-4.npz"]
    # a kill after the first chunk: the second is recomputed, the first read back
    (state / names[1]).unlink()
    resumed = reference_attacks(model, x.float() / 255, y, n_check=6, state_dir=state, **kw)
    assert np.array_equal(resumed.broken_by, straight.broken_by)
    # with both chunks saved nothing is attacked again: the model is never called
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    again = reference_attacks(model, x.float() / 255, y, n_check=6, state_dir=state, **kw)
    assert calls == [] and np.array_equal(again.broken_by, straight.broken_by)


def test_the_check_subset_is_the_standard_autoattack_and_the_rest_the_verdict_tier(
        tmp_path: Path) -> None:
    x, y = _data(tmp_path, n=6)
    model = Quadrants(scale=2.0)
    kw = {"norm": "linf", "eps": 0.3, "num_classes": 4, "seed": 0, "chunk": 3,
          "batch_size": 6, "device": CPU, "log": lambda _: None}
    whole = reference_attacks(model, x.float() / 255, y, n_check=6, **kw)
    part = reference_attacks(model, x.float() / 255, y, n_check=3, **kw)
    # the check subset got all four attacks, exactly as the whole run's first chunk did
    assert np.array_equal(part.broken_by[:3], whole.broken_by[:3])
    assert np.array_equal(part.autoattack_robust, whole.autoattack_robust[:3])
    # beyond it only the verdict tier ran, with the same outcome under APGD-CE+T
    assert set(part.broken_by[3:].tolist()) <= {-1, 0, 1, 2}
    assert np.array_equal(part.verdict_robust, whole.verdict_robust)
    assert list(part.accuracy_after(check=False)) == ["clean", *VERDICT_ATTACKS]


def test_black_box_attacks_breaking_beyond_the_verdict_tier_fail_its_check(
        tmp_path: Path) -> None:
    """A model without input gradients: the APGD attacks of the verdict tier cannot move it,
    Square (black-box) can, so the verdict tier over-states it and the check says so."""
    x, y = _data(tmp_path, n=6)
    cfg = EvalConfig(n_verdict=6, n_autoattack=6, n_curve=0, batch_size=6,
                     autoattack_chunk=6)
    m, cols = evaluate_model(Quadrants(masked=True, scale=2.0), x, y, cfg, norm="linf",
                             eps=0.3, num_classes=4, seed=0, device=CPU)
    assert m["autoattack_beyond_verdict"] > 0
    assert m["verdict_acc"] > m["autoattack_acc"]
    assert m["checks"]["verdict_complete"] is False
    assert "verdict_complete" in eval_failed(m, ReportConfig())
    assert (cols["verdict"] >= cols["autoattack"]).all()


def test_the_check_subset_cannot_exceed_the_verdict_subset() -> None:
    with pytest.raises(ConfigError, match=r"eval\.n_autoattack"):
        EvalConfig(n_verdict=10, n_autoattack=20)
