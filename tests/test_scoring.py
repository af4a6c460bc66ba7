"""Static scores, forgetting events, the prune selector and the scoring stage."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from robustprune.attacks import PGD
from robustprune.config import params_from_dict
from robustprune.cost import CostMeter, CountingModel
from robustprune.errors import InputError
from robustprune.objectives import PGDAT
from robustprune.pipeline import api as pipeline
from robustprune.selection.base import SelectionContext
from robustprune.selection.prune import Prune, PruneOptions, ScoreTable, top_per_class
from robustprune.selection.scoring import ForgettingTracker, adversarial_scores
from tests.conftest import tiny_params


def test_forgetting_events_counted_from_minibatch_predictions():
    t = ForgettingTracker(4)
    y = torch.tensor([0, 0, 0, 0])
    right, wrong = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    # example 0: right, wrong, right, wrong -> 2 events; 1: always right -> 0;
    # 2: wrong then right -> 0; 3: never right -> never learned
    seq = [[right, right, wrong, wrong], [wrong, right, right, wrong],
           [right, right, right, wrong], [wrong, right, right, wrong]]
    for step in seq:
        t.observe(torch.cat(step), y, torch.arange(4))
    assert t.events.tolist() == [2, 0, 0, 0]
    assert t.counts().tolist() == [2, 0, 0, 3]  # never learned ranks as most forgotten
    other = ForgettingTracker(4)
    other.load_state_dict(t.state_dict())
    assert other.counts().tolist() == [2, 0, 0, 3]


def test_top_per_class_balance_ends_and_ties():
    y = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    s = torch.tensor([5.0, 1.0, 3.0, 3.0, 0.1, 0.9, 0.5, 7.0, 7.0, 1.0])
    hard = top_per_class(s, y, 0.5, 3, hardest=True)
    assert hard.tolist() == [0, 2, 5, 6, 7, 8]  # ceil(0.5*4)=2, ceil(0.5*3)=2, ties by index
    easy = top_per_class(s, y, 0.5, 3, hardest=False)
    assert easy.tolist() == [1, 2, 4, 6, 7, 9]


def test_adversarial_scores_match_definitions():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 6), nn.ReLU(), nn.Linear(6, 3))
    x = torch.randint(0, 256, (12, 1, 4, 4), dtype=torch.uint8)
    y = torch.arange(12) % 3
    meter = CostMeter()
    counted = CountingModel(model, meter)
    clean = adversarial_scores(counted, x, y, PGDAT(), PGD(eps=0.0, alpha=0.1, steps=2), meter,
                               batch_size=5)
    xf = x.float() / 255
    logits = model(xf)
    p = torch.softmax(logits, 1)
    onehot = torch.nn.functional.one_hot(y, 3).float()
    assert torch.allclose(clean["el2n"], (p - onehot).norm(dim=1), atol=1e-5)
    for i in (0, 5, 11):
        loss = torch.nn.functional.cross_entropy(model(xf[i:i + 1]), y[i:i + 1])
        gw, gb = torch.autograd.grad(loss, [model[-1].weight, model[-1].bias])
        assert clean["grand"][i].item() == pytest.approx(torch.cat([gw.flatten(), gb]).norm()
                                                         .item(), rel=1e-4)
    attacked = adversarial_scores(counted, x, y, PGDAT(), PGD(eps=0.2, alpha=0.05, steps=5),
                                  meter, batch_size=5)
    assert attacked["adv_loss"].mean() > clean["adv_loss"].mean()
    assert meter.forward["select"] == 12 * 2 + 12 + 12 * 5 + 12  # steps + the scoring forward


def _ctx(n: int, epoch: int, meter: CostMeter) -> SelectionContext:
    return SelectionContext(epoch=epoch, epochs=3, model=nn.Identity(),
                            x_train=torch.zeros(n, 1, 2, 2, dtype=torch.uint8),
                            y_train=torch.arange(n) % 2, num_classes=2, objective=PGDAT(),
                            attack=PGD(eps=0.1, alpha=0.1, steps=1), meter=meter, seed=0,
                            batch_size=2)


def test_prune_selector_reads_table_and_charges_scoring_once(tmp_path):
    table = tmp_path / "scores.parquet"
    pd.DataFrame({"index": range(6), "label": [0, 1] * 3, "adv_loss": [1, 9, 3, 2, 5, 4],
                  "el2n": [0.0] * 6, "grand": [0.0] * 6, "forgetting": [0] * 6}).to_parquet(table)
    cost = {"forward_passes": 100, "backward_passes": 60, "seconds": 2.5}
    meter = CostMeter()
    scores = ScoreTable(table, cost)
    sel = Prune(0.5, options=PruneOptions(score="adv_loss", keep="hardest"), scores=scores)
    picks = [sel.select(_ctx(6, e, meter)).indices.tolist() for e in range(3)]
    # class 0 = idx 0,2,4 (scores 1,3,5), class 1 = idx 1,3,5 (9,2,4); ceil(0.5*3) = 2 each
    assert picks == [[1, 2, 4, 5]] * 3
    assert meter.forward["select"] == 100 and meter.backward["select"] == 60
    assert meter.seconds["select"] == pytest.approx(2.5)
    resumed = Prune(0.5, scores=scores)
    resumed.load_state_dict(sel.state_dict())
    resumed.select(_ctx(6, 2, meter))
    assert meter.forward["select"] == 100  # not charged twice after a resume
    with pytest.raises(InputError, match="scores are for 6 examples"):
        Prune(0.5, scores=scores).select(_ctx(8, 0, CostMeter()))
    with pytest.raises(InputError, match="needs the scoring stage's table"):
        Prune(0.5)


def test_scoring_stage_then_prune_method_training(tmp_path, tiny_npz):
    raw = tiny_params(tiny_npz, train={"epochs": 1},
                      methods={"p": {"selector": "prune", "fraction": 0.25, "score": "el2n"}})
    params = params_from_dict(raw)
    cpu = torch.device("cpu")
    data = tmp_path / "d.npz"
    pipeline.prepare(params, data)
    pipeline.warmup(params, 0, data, tmp_path / "w.pt", tmp_path / "w.json", None, cpu,
                    tmp_path / "ck", forgetting_out=tmp_path / "f.pt")
    scored = pipeline.scoring(params, 0, data, tmp_path / "w.pt", tmp_path / "f.pt",
                            tmp_path / "s.parquet", tmp_path / "score.json", cpu)
    table = pd.read_parquet(tmp_path / "s.parquet")
    assert list(table.columns) == ["index", "label", "adv_loss", "el2n", "grand", "forgetting"]
    assert len(table) == scored["examples"] == 400
    assert (table["forgetting"] >= 0).all() and table["el2n"].between(0, 2 ** 0.5).all()
    with pytest.raises(InputError, match=r"^methods\.p: selector prune needs the scoring"):
        pipeline.train(params, 0, "p", data, tmp_path / "w.pt", tmp_path / "r.pt",
                       tmp_path / "t.json", None, cpu, tmp_path / "ck")
    trained = pipeline.train(params, 0, "p", data, tmp_path / "w.pt", tmp_path / "r.pt",
                             tmp_path / "t.json", None, cpu, tmp_path / "ck",
                             scores_path=tmp_path / "s.parquet",
                             scores_metrics=tmp_path / "score.json")
    assert trained["settings"]["selector_options"] == {"score": "el2n", "keep": "hardest",
                                                       "cut": 0.1, "bins": 50}
    assert trained["final"]["examples"] == 100  # ceil(0.25 * 100) for each of 4 classes
    assert trained["cost"]["select_forward"] == scored["cost"]["forward_passes"]
