"""AugMix: the Jensen-Shannon term on hand-computed cases, the views' mixing weights, exact pass
counts for AugMix and BulletTrain for AugMix, and AugMix through the pipeline."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2

from robustprune.config import ConfigError, params_from_dict
from robustprune.cost import CostMeter, CountingModel
from robustprune.objectives import OBJECTIVES, AugMixObjective, Views, jensen_shannon
from robustprune.passes import passes_per_example
from robustprune.pipeline import api as pipeline
from robustprune.selection.base import BatchMiner
from robustprune.selection.bullettrain import BulletTrainOptions
from robustprune.selection.registry import BulletTrain
from tests.conftest import tiny_params


def test_jensen_shannon_hand_computed() -> None:
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    half = torch.tensor([[0.5, 0.5]])
    # two disjoint distributions: M = (½, ½), each KL(p ‖ M) = log 2, JS = log 2
    assert jensen_shannon([a, b]).item() == pytest.approx(math.log(2), abs=1e-6)
    # three: KLs log 2, log 2, 0 -> JS = 2·log 2 / 3
    assert jensen_shannon([a, b, half]).item() == pytest.approx(2 * math.log(2) / 3, abs=1e-6)
    assert jensen_shannon([half, half, half]).item() == pytest.approx(0.0, abs=1e-7)
    # a general case against the definition
    p = torch.tensor([[0.7, 0.2, 0.1]])
    q = torch.tensor([[0.1, 0.6, 0.3]])
    m = (p + q) / 2
    expected = 0.5 * ((p * (p / m).log()).sum() + (q * (q / m).log()).sum())
    assert jensen_shannon([p, q]).item() == pytest.approx(expected.item(), abs=1e-6)


class Probe(nn.Module):
    """Logits = a fixed linear map of the mean intensity of each image's quadrants."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(F.adaptive_avg_pool2d(x, 2).flatten(1))


def test_loss_is_ce_plus_lambda_js_with_joint_forward() -> None:
    obj = AugMixObjective(jsd_lambda=12.0)
    model = Probe()
    x = torch.rand(5, 1, 8, 8)
    y = torch.tensor([0, 1, 2, 0, 1])
    views = torch.rand(5, 2, 1, 8, 8)
    loss, first = obj.losses(model, x, Views(views, torch.tensor([2, 2, 1, 0, 2])), y)
    with torch.no_grad():
        lc, l1, l2 = model(x), model(views[:, 0]), model(views[:, 1])
    pc, p1, p2 = (F.softmax(t, 1) for t in (lc, l1, l2))
    ce = F.cross_entropy(lc, y, reduction="none")
    want = ce.clone()
    for i in (0, 1, 4):
        want[i] += 12.0 * jensen_shannon([pc[i:i + 1], p1[i:i + 1], p2[i:i + 1]])[0]
    want[2] += 12.0 * jensen_shannon([pc[2:3], p1[2:3]])[0]  # one view: JS of two
    torch.testing.assert_close(loss.detach(), want, atol=1e-5, rtol=1e-5)
    # logits handed back: on the first view, the clean ones where there is none
    torch.testing.assert_close(first.detach()[[0, 1, 2, 4]], l1[[0, 1, 2, 4]])
    torch.testing.assert_close(first.detach()[3], lc[3])


def test_views_mix_the_chains_with_the_sampled_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each view = m₀·x + m₁·Σᵢ wᵢ·chainᵢ(x): the Beta pair m and the chain weights w are the
    Dirichlet draws (patched to known values); every chain's single operation is patched to a
    known constant image per call."""
    draws = iter([torch.tensor([[0.25, 0.75]]), torch.tensor([[0.2, 0.3, 0.5]])] * 10)
    monkeypatch.setattr(v2.AugMix, "_sample_dirichlet", lambda self, params: next(draws))
    calls = {"n": 0}

    def op(self, image, *args, **kwargs):  # chain i's operation -> constant 30·(i+1)
        calls["n"] += 1
        return torch.full_like(image, 30 * calls["n"])

    monkeypatch.setattr(v2.AugMix, "_apply_image_or_video_transform", op)
    obj = AugMixObjective(width=3, depth=1)
    x = torch.full((1, 1, 4, 4), 100 / 255)
    view = obj.adversarial(nn.Identity(), x, torch.tensor([0]), None)
    expected = 0.25 * 100 + 0.75 * (0.2 * 30 + 0.3 * 60 + 0.5 * 90)
    assert calls["n"] == 3
    assert torch.allclose(view * 255, torch.full_like(view, expected), atol=1.0)


def test_views_are_reproducible_and_differ_per_example() -> None:
    obj = AugMixObjective()
    x = torch.rand(6, 1, 16, 16)
    torch.manual_seed(3)
    a = obj.training_inputs(nn.Identity(), x, torch.zeros(6, dtype=torch.long), None)
    torch.manual_seed(3)
    b = obj.training_inputs(nn.Identity(), x, torch.zeros(6, dtype=torch.long), None)
    assert torch.equal(a.x, b.x) and a.x.shape == (6, 2, 1, 16, 16)
    assert a.count.tolist() == [2] * 6
    assert not torch.equal(a.x[:, 0], a.x[:, 1])  # two independent views
    assert a.x.min() >= 0 and a.x.max() <= 1


def test_augmix_passes_per_example_is_six() -> None:
    """Clean + 2 views forward, and their backward: 6 passes per example, counted."""
    model = Probe()
    x, y = torch.rand(8, 1, 8, 8), torch.randint(0, 3, (8,))
    assert passes_per_example(model, AugMixObjective(), None, x, y) == 6.0
    assert passes_per_example(model, AugMixObjective(views=1), None, x, y) == 4.0


def test_bullettrain_for_augmix_views_and_exact_passes() -> None:
    """Categories from the training step's own clean forward; boundary examples get every
    view, robust ``robust_views``, outliers ``outlier_views``; passes = 2 per example + 2 per
    view, with no separate scoring forward."""
    model = Probe()
    meter = CostMeter()
    counted = CountingModel(model, meter)
    x = torch.rand(16, 1, 8, 8)
    with torch.no_grad():
        y = model(x).argmax(1)
    y[12:] = (y[12:] + 1) % 3  # 12 right (robust or boundary), 4 wrong (outliers)
    miner = BulletTrain(BulletTrainOptions(robust_views=1, outlier_views=0))
    miner.r = 0.25
    obj = AugMixObjective()
    inputs = miner.adversarial(counted, x, y, obj, None, meter)
    assert isinstance(inputs, Views) and inputs.x is None
    assert meter.total_passes == 0  # nothing spent before the loss
    loss, _ = obj.loss_and_logits(counted, x, inputs, y)
    loss.backward()
    shares = miner.epoch_metrics()
    n_out = round(shares["bt_outlier_share"] * 16)
    n_rob = round(shares["bt_robust_share"] * 16)
    n_bnd = round(shares["bt_boundary_share"] * 16)
    assert (n_out, n_rob, n_bnd) == (4, 4, 8)
    assert meter.total_passes == 2 * 16 + 2 * (2 * n_bnd + 1 * n_rob)
    # r learns from the accuracy on the views of the examples that got some, not from the
    # clean logits of the others (right by construction when robust, wrong when outliers)
    viewed = miner._viewed.clone()
    _, first = obj.loss_and_logits(counted, x, Views(None, None, decide=miner._views), y)
    miner.r = 0.0
    miner.observe(first.detach(), y, torch.arange(16))
    acc = (first.detach()[viewed].argmax(1) == y[viewed]).float().mean().item()
    assert miner.r == pytest.approx(0.1 * 0.8 * acc)
    miner._viewed = torch.zeros(16, dtype=torch.bool)
    miner.observe(first.detach(), y, torch.arange(16))  # no views this step: r kept
    assert miner.r == pytest.approx(0.1 * 0.8 * acc)
    # the same batch through plain AugMix costs 6 per example
    meter2 = CostMeter()
    c2 = CountingModel(model, meter2)
    plain = BatchMiner().adversarial(c2, x, y, obj, None, meter2)
    obj.loss(c2, x, plain, y).backward()
    assert meter2.total_passes == 6 * 16


def test_bullettrain_augmix_zero_views_is_clean_cross_entropy() -> None:
    model = Probe()
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    obj = AugMixObjective()
    none = Views(None, None, decide=lambda logits, y: torch.zeros(len(y), dtype=torch.long))
    loss, first = obj.losses(model, x, none, y)
    with torch.no_grad():
        clean = model(x)
    torch.testing.assert_close(loss.detach(), F.cross_entropy(clean, y, reduction="none"))
    torch.testing.assert_close(first.detach(), clean)


def test_registry_and_params() -> None:
    assert "augmix" in OBJECTIVES and not OBJECTIVES["augmix"].uses_attack
    assert OBJECTIVES["augmix"].views_based and OBJECTIVES["pgd-at"].uses_attack
    assert OBJECTIVES["clean"]().name == "clean" and not OBJECTIVES["clean"].uses_attack
    p = params_from_dict({"objective": {"name": "augmix", "jsd_lambda": 6, "mix_width": 2}})
    obj = OBJECTIVES["augmix"].from_params(p.objective)
    assert (obj.jsd_lambda, obj.width, obj.severity, obj.depth, obj.views) == (6.0, 2, 3, -1, 2)
    with pytest.raises(ConfigError, match=r"objective\.mix_depth = 0"):
        params_from_dict({"objective": {"name": "augmix", "mix_depth": 0}})
    with pytest.raises(ConfigError, match=r"objective\.mix_severity"):
        params_from_dict({"objective": {"name": "augmix", "mix_severity": 11}})


def test_augmix_and_bullettrain_augmix_train_through_the_pipeline(tmp_path, tiny_npz) -> None:
    raw = tiny_params(tiny_npz, objective={"name": "augmix"},
                      methods={"full": {}, "bt": {"miner": "bullettrain"}},
                      train={"epochs": 1})
    params = params_from_dict(raw)
    cpu = torch.device("cpu")
    data = tmp_path / "data.npz"
    pipeline.prepare(params, data)
    ck = tmp_path / "ck"
    pipeline.warmup(params, 0, data, tmp_path / "w.pt", tmp_path / "w.json", None, cpu, ck)
    out = {}
    for m in ("full", "bt"):
        out[m] = pipeline.train(params, 0, m, data, tmp_path / "w.pt", tmp_path / f"{m}.pt",
                                tmp_path / f"{m}.json", None, cpu, ck)
    n = out["full"]["train_examples"]
    assert out["full"]["cost"]["passes"] == 6 * n
    hist = out["bt"]["history"][0]
    boundary = round(hist["bt_boundary_share"] * n)
    # defaults: robust and outlier examples get no views
    assert out["bt"]["cost"]["passes"] == 2 * n + 4 * boundary
    assert out["bt"]["cost"]["passes"] < out["full"]["cost"]["passes"]
    assert out["full"]["settings"]["objective"]["name"] == "augmix"
    assert np.isfinite(hist["train_loss"])
