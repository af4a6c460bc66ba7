"""Weight averaging (``methods.<m>.ema``) and InfoBatch through the training stage on tiny
data: the saved model is the average, it is what validation scored, a killed run resumes to
the same average, the frontier keeps averaged and plain runs apart, and InfoBatch spends
fewer passes than full data without any selection pass."""

from __future__ import annotations

from pathlib import Path

import torch

from robustprune import load_model
from robustprune.attacks import build_attack
from robustprune.averaging import WeightAverage
from robustprune.config import params_from_dict
from robustprune.data import load_splits
from robustprune.objectives import build_objective
from robustprune.pipeline import api as pipeline
from robustprune.pipeline.checkpoints import load_trained
from robustprune.report.budget import same_but_budget
from robustprune.selection.registry import build_miner, build_selector
from robustprune.training import Trainer
from tests.conftest import tiny_params

CPU = torch.device("cpu")
METHODS = {"full": {}, "full-ema": {"ema": 0.9}, "ib": {"selector": "infobatch",
                                                      "prune_ratio": 0.5, "anneal": 0.25}}


def _prepared(root: Path, npz: Path, **sections: dict) -> tuple:
    params = params_from_dict(tiny_params(npz, methods=METHODS, **sections))
    data = root / "data.npz"
    pipeline.prepare(params, data)
    pipeline.warmup(params, 0, data, root / "warmup.pt", root / "warmup.json", None, CPU,
                    root / "ck")
    return params, data


def _train(params, data: Path, root: Path, method: str) -> dict:
    return pipeline.train(params, 0, method, data, root / "warmup.pt", root / f"{method}.pt",
                          root / f"{method}.json", None, CPU, root / "ck")


def test_the_saved_model_is_the_weight_average_and_validation_scored_it(tmp_path, tiny_npz):
    params, data = _prepared(tmp_path, tiny_npz, train={"epochs": 3})
    plain, ema = _train(params, data, tmp_path, "full"), _train(params, data, tmp_path,
                                                                  "full-ema")
    assert ema["settings"]["ema"] == 0.9 and plain["settings"]["ema"] == 0.0
    # the same steps: the raw weights of both runs are identical, so the cost is too
    assert ema["cost"]["passes"] == plain["cost"]["passes"]
    wp = load_model(tmp_path / "full.pt").state_dict()
    we = load_model(tmp_path / "full-ema.pt").state_dict()
    assert any(not torch.equal(wp[k], we[k]) for k in wp)
    # the saved model is what validation scored: its validation figures differ from plain's
    assert ema["final"] != plain["final"]
    # averaged and plain runs are different trainings: never on one frontier
    assert not same_but_budget(plain["settings"], ema["settings"])


def test_a_resumed_run_ends_with_the_same_average(tmp_path, tiny_npz):
    params, data = _prepared(tmp_path, tiny_npz)
    splits = load_splits(data)
    m = params.method("full-ema")

    def trainer(epochs: int, ck: Path) -> Trainer:
        model, _ = load_trained(tmp_path / "warmup.pt", params, splits)
        optim = type(params.train)(**{**params.train.__dict__, "epochs": epochs})
        return Trainer(model=model, data=splits, optim=optim,
                       objective=build_objective(params.objective),
                       attack=build_attack(m.attack), selector=build_selector("full", 1.0, 0),
                       miner=build_miner("none"), seed=0, device=CPU, checkpoint_dir=ck,
                       log=lambda _: None, ema=m.ema)

    straight = trainer(4, tmp_path / "a")
    straight.run()
    trainer(2, tmp_path / "b").run()  # "killed" after epoch 2: its checkpoint stays
    resumed = trainer(4, tmp_path / "b")  # constant schedule: the same steps from there
    resumed.run()
    sa, sb = straight.evaluated.state_dict(), resumed.evaluated.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_the_decay_warms_up_then_holds() -> None:
    model = torch.nn.Linear(1, 1, bias=False)
    avg = WeightAverage(model, 0.5)
    values = []
    for v in (1.0, 2.0, 3.0, 4.0):
        model.weight.data.fill_(v)
        avg.update(model)
        values.append(float(avg.module.weight.detach()))
    # the first update copies; then d = min(0.5, (1 + t) / (10 + t)) after t updates
    d1, d2, d3 = (min(0.5, (1 + t) / (10 + t)) for t in (1, 2, 3))
    expect = [1.0]
    for v, d in zip((2.0, 3.0, 4.0), (d1, d2, d3), strict=True):
        expect.append(expect[-1] * d + v * (1 - d))
    assert all(abs(a - b) < 1e-6 for a, b in zip(values, expect, strict=True))


def test_infobatch_trains_on_fewer_examples_and_pays_no_selection_pass(tmp_path, tiny_npz):
    params, data = _prepared(tmp_path, tiny_npz, train={"epochs": 4})
    full, ib = _train(params, data, tmp_path, "full"), _train(params, data, tmp_path, "ib")
    seen = [row["examples"] for row in ib["history"]]
    n = full["history"][0]["examples"]
    assert seen[0] == n and seen[-1] == n  # first epoch: no losses yet; last: annealed
    assert min(seen[1:3]) < n  # in between it skips well-learned examples
    assert ib["cost"]["passes"] < full["cost"]["passes"]
    assert ib["cost"]["select_forward"] == ib["cost"]["select_backward"] == 0
