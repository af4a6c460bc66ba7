"""Pass budgets (``methods.<m>.budget``) and the catastrophic-overfitting guard
(``train.co_drop``, ``train.co_rollback``) on the tiny dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from robustprune import load_model, training
from robustprune.config import ConfigError, params_from_dict
from robustprune.pipeline import api as pipeline
from tests.conftest import tiny_params

CPU = torch.device("cpu")


def _prepared(root: Path, raw: dict[str, Any]) -> tuple[Any, Path, Path]:
    params = params_from_dict(raw)
    root.mkdir(parents=True, exist_ok=True)
    data, warm = root / "data.npz", root / "warm.pt"
    pipeline.prepare(params, data)
    pipeline.warmup(params, 0, data, warm, root / "warm.json", None, CPU, root / "ck")
    return params, data, warm


def _train(root: Path, params: Any, data: Path, warm: Path, method: str,
           tag: str = "") -> dict[str, Any]:
    return pipeline.train(params, 0, method, data, warm, root / f"{method}{tag}.pt",
                          root / f"{method}{tag}.json", None, CPU, root / "ck")


@pytest.mark.parametrize("objective", ["pgd-at", "trades", "mart"])
@pytest.mark.parametrize("attack", [{"name": "pgd"}, {"name": "fgsm-rs", "alpha": 0.125}])
def test_budget_unit_is_what_full_data_training_spends(tmp_path, tiny_npz, objective, attack):
    """The counted step the budget is measured in equals the passes of real full-data
    training, for every objective and attack."""
    raw = tiny_params(tiny_npz, objective={"name": objective}, attack=attack,
                      warmup={"epochs": 0}, train={"epochs": 1, "val_n": 8})
    params, data, warm = _prepared(tmp_path, raw)
    spent = _train(tmp_path, params, data, warm, "full")["cost"]["passes"]
    splits = pipeline.load_splits(data)
    model, _ = pipeline.load_trained(warm, params, splits)
    from robustprune.objectives import build_objective

    assert pipeline.full_epoch_passes(params, model, build_objective(params.objective),
                                      splits, CPU) == spent


def test_a_budget_stops_within_one_batch_and_anneals_to_it(tmp_path, tiny_npz):
    raw = tiny_params(tiny_npz, train={"epochs": 2, "schedule": "onecycle", "val_n": 8},
                      methods={"full": {}, "short": {"budget": 0.3},
                               "rand": {"selector": "random-online", "fraction": 0.5,
                                        "budget": 0.75}})
    params, data, warm = _prepared(tmp_path, raw)
    full = _train(tmp_path, params, data, warm, "full")
    per_batch = full["cost"]["passes"] / full["train_examples"] / 2 * 32  # one batch of 32
    short = _train(tmp_path, params, data, warm, "short")
    budget = short["budget_passes"]
    assert budget == round(0.3 * full["cost"]["passes"])
    assert budget <= short["cost"]["passes"] < budget + per_batch
    assert short["epochs"] == 1  # 0.3 of two epochs: cut inside the first
    # the schedule ran on the budget: the last step's LR is near the end of the one-cycle
    assert short["history"][-1]["lr"] < 0.05 * (1 - (budget - per_batch) / budget) / 0.75 + 1e-9
    rand = _train(tmp_path, params, data, warm, "rand")
    # half the data per epoch, 3/4 of full's passes: three epochs, the third cut short
    assert rand["epochs"] == 3 and rand["budget_passes"] <= rand["cost"]["passes"]
    assert rand["settings"]["budget"] == 0.75 and full["budget_passes"] is None


def test_an_interrupted_budget_run_resumes_to_the_same_model(tmp_path, tiny_npz, monkeypatch):
    raw = tiny_params(tiny_npz, train={"epochs": 2, "val_n": 8, "lr": 0.01,
                                       "schedule": "onecycle"},
                      methods={"b": {"selector": "random-online", "fraction": 0.5,
                                     "budget": 1.2}})
    params, data, warm = _prepared(tmp_path, raw)
    straight = _train(tmp_path, params, data, warm, "b", "-straight")
    epoch = training.Trainer._epoch
    calls = {"n": 0}

    def dies_in_epoch_three(self: training.Trainer, e: int) -> dict[str, float]:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return epoch(self, e)

    monkeypatch.setattr(training.Trainer, "_epoch", dies_in_epoch_three)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path, params, data, warm, "b", "-resumed")
    monkeypatch.setattr(training.Trainer, "_epoch", epoch)
    resumed = _train(tmp_path, params, data, warm, "b", "-resumed")
    assert resumed["cost"]["passes"] == straight["cost"]["passes"]
    assert [r["lr"] for r in resumed["history"]] == [r["lr"] for r in straight["history"]]
    assert [r["val_pgd_acc"] for r in resumed["history"]] == [
        r["val_pgd_acc"] for r in straight["history"]]
    a = load_model(tmp_path / "b-straight.pt").state_dict()
    b = load_model(tmp_path / "b-resumed.pt").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("rollback", [False, True])
def test_collapse_is_flagged_and_optionally_rolled_back(tmp_path, tiny_npz, monkeypatch,
                                                        rollback):
    """Scripted validation: 0.6, 0.7, then a fall to 0.3 (> co_drop = 0.2 below the best)."""
    raw = tiny_params(tiny_npz, train={"epochs": 4, "val_n": 8, "co_rollback": rollback})
    params, data, warm = _prepared(tmp_path, raw)
    script, weights = iter([0.6, 0.7, 0.3, 0.8]), []

    def scripted(self: training.Trainer, epoch: int = -1) -> dict[str, float]:
        weights.append({k: v.clone() for k, v in self.model.state_dict().items()})
        return {"val_clean_acc": 0.9, "val_pgd_acc": next(script)}

    monkeypatch.setattr(training.Trainer, "_validate", scripted)
    out = _train(tmp_path, params, data, warm, "full")
    flags = [r["collapsed"] for r in out["history"]]
    kept = load_model(tmp_path / "full.pt").state_dict()
    if rollback:  # stops at the collapse and keeps epoch 2's weights
        assert flags == [0.0, 0.0, 1.0] and out["rolled_back_to_epoch"] == 2
        assert out["final"]["val_pgd_acc"] == 0.7
        assert all(torch.equal(kept[k], weights[1][k]) for k in kept)
    else:  # flags the epoch and trains on
        assert flags == [0.0, 0.0, 1.0, 0.0] and "rolled_back_to_epoch" not in out
        assert all(torch.equal(kept[k], weights[3][k]) for k in kept)


def test_a_rollback_survives_a_resume(tmp_path, tiny_npz, monkeypatch):
    """Killed right after the collapsed epoch's checkpoint: the rerun stops at once and keeps
    the best epoch's weights, from the checkpoint."""
    raw = tiny_params(tiny_npz, train={"epochs": 4, "val_n": 8, "co_rollback": True})
    params, data, warm = _prepared(tmp_path, raw)
    script, weights = iter([0.6, 0.7, 0.3]), []

    def scripted(self: training.Trainer, epoch: int = -1) -> dict[str, float]:
        weights.append({k: v.clone() for k, v in self.model.state_dict().items()})
        return {"val_clean_acc": 0.9, "val_pgd_acc": next(script)}

    def killed(self: training.Trainer) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(training.Trainer, "_validate", scripted)
    monkeypatch.setattr(training.Trainer, "discard_checkpoint", killed)  # dies after training
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path, params, data, warm, "full")
    monkeypatch.undo()

    def no_more_training(self: training.Trainer, e: int) -> dict[str, float]:
        raise AssertionError(f"epoch {e + 1} trained after the collapse")

    monkeypatch.setattr(training.Trainer, "_epoch", no_more_training)
    out = _train(tmp_path, params, data, warm, "full")
    assert out["rolled_back_to_epoch"] == 2 and len(out["history"]) == 3
    kept = load_model(tmp_path / "full.pt").state_dict()
    assert all(torch.equal(kept[k], weights[1][k]) for k in kept)


def test_a_budgeted_coreset_plans_its_warm_start_over_the_budget(tmp_path, tiny_npz):
    """Budget 0.5 of 4 epochs = 2 full-data epochs: the warm start (half) is 1 epoch, then
    subsets, instead of spending the whole budget on 2 warm epochs."""
    raw = tiny_params(tiny_npz, train={"epochs": 4, "val_n": 8},
                      methods={"cs": {"selector": "coreset-craig", "fraction": 0.5,
                                      "budget": 0.5}})
    params, data, warm = _prepared(tmp_path, raw)
    out = _train(tmp_path, params, data, warm, "cs")
    n = out["train_examples"]
    assert out["history"][0]["examples"] == n
    assert all(r["examples"] < n for r in out["history"][1:]) and len(out["history"]) > 1
    assert out["budget_passes"] <= out["cost"]["passes"]


def test_budget_must_be_a_share(tiny_npz):
    with pytest.raises(ConfigError, match=r"methods.full.budget = -1"):
        params_from_dict(tiny_params(tiny_npz, methods={"full": {"budget": -1}}))
    with pytest.raises(ConfigError, match=r"train.epochs = 0: must be > 0 for methods.full"):
        params_from_dict(tiny_params(tiny_npz, train={"epochs": 0},
                                     methods={"full": {"budget": 0.5}}))
