"""The report stage on hand-written metrics and per-example tables: speed-ups, paired deltas
with intervals, the APGD-CE+T-calibrated delta, verdicts, checks, the Pareto front, and a
one-line error for a missing input."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from robustprune import report
from robustprune.config import params_from_dict
from robustprune.errors import InputError

METHODS = {
    "full": {},
    "full-50": {"budget": 0.5},
    "full-25": {"budget": 0.25},
    "random-online": {"selector": "random-online", "fraction": 0.3},
    "score": {"selector": "prune", "fraction": 0.3},
    "bullettrain": {"miner": "bullettrain"},
    "stack": {"selector": "prune", "fraction": 0.3, "miner": "bullettrain", "attack": "fgsm-rs",
              "alpha": 0.125},
}
# name -> (passes, seconds, clean, pgd, verdict tier): rates on a shared latent per example, so
# method a's correct examples contain method b's when a's rate is higher (as nested as
# possible), and every paired delta is exactly the difference of the rates.
MEASURED = {
    "full": (1_000_000, 400.0, 0.80, 0.70, 0.68),
    "full-50": (500_000, 200.0, 0.79, 0.66, 0.64),
    "full-25": (250_000, 100.0, 0.76, 0.60, 0.58),
    "random-online": (300_000, 100.0, 0.75, 0.60, 0.58),
    "score": (310_000, 200.0, 0.74, 0.66, 0.64),
    "bullettrain": (480_000, 210.0, 0.82, 0.699, 0.679),
    "stack": (100_000, 80.0, 0.70, 0.55, 0.50),
}
N, N_AA, N_CHECK = 4000, 1000, 200


def _columns(clean: float, pgd: float, aa: float | None, seed: int) -> dict[str, np.ndarray]:
    """Per-example columns; ``aa``: the verdict tier's rate on its subset (the check subset
    agrees with it); None: no reference tier was run."""
    u = (np.arange(N) + 0.5) / N
    u = np.random.default_rng(seed).permutation(u)
    cols = {"index": np.arange(N), "label": (np.arange(N) % 10).astype(np.int16),
            "clean": (u < clean).astype(np.int8), "pgd": (u < pgd).astype(np.int8)}
    if aa is not None:
        cols["verdict"] = np.full(N, -1, dtype=np.int8)
        cols["verdict"][:N_AA] = u[:N_AA] < aa
        cols["autoattack"] = np.full(N, -1, dtype=np.int8)
        cols["autoattack"][:N_CHECK] = cols["verdict"][:N_CHECK]
    return cols


def _write(root: Path, measured: dict[str, tuple[float, ...]], seeds: tuple[int, ...] = (0,),
           history: dict[str, list[float]] | None = None,
           failed: dict[str, list[str]] | None = None,
           methods: dict[str, Any] | None = None,
           majority: float = 0.0) -> tuple[Path, Path]:
    metrics, examples = root / "metrics", root / "examples"
    for d in ("train", "eval", "eval_clean"):
        (metrics / d).mkdir(parents=True, exist_ok=True)
    examples.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        for name, (passes, seconds, clean, pgd, aa) in measured.items():
            # what training recorded: METHODS' entries, plus any a test adds
            m = params_from_dict({"methods": {**(methods or {}), **METHODS}}).method(name)
            accs = (history or {}).get(name, [0.5, 0.6])
            hist = [{"epoch": i + 1, "val_pgd_acc": v,
                     "collapsed": float(v < max(accs[:i + 1]) - 0.2),
                     "cum_passes": passes * (i + 1) / len(accs),
                     "cum_seconds": seconds * (i + 1) / len(accs)} for i, v in enumerate(accs)]
            (metrics / "train" / f"{name}-{seed}.json").write_text(json.dumps(
                {"settings": {"selector": m.selector, "fraction": m.fraction, "miner": m.miner,
                              "budget": m.budget, "ema": m.ema,
                              "selector_options": dataclasses.asdict(m.selector_options),
                              "miner_options": dataclasses.asdict(m.miner_options),
                              "attack": {"name": m.attack.name, "steps": m.attack.steps},
                              "objective": {"name": "pgd-at"}}, "history": hist,
                 "cost": {"passes": passes, "seconds": seconds + seed}}))
            cols = _columns(clean, pgd, aa, seed)
            (metrics / "eval" / f"{name}-{seed}.json").write_text(json.dumps(
                {"clean_acc": float(cols["clean"].mean()), "pgd_acc": float(cols["pgd"].mean()),
                 **({"verdict_acc": float(cols["verdict"][:N_AA].mean()), "n_verdict": N_AA,
                     "autoattack_acc": float(cols["autoattack"][:N_CHECK].mean()),
                     "n_autoattack": N_CHECK} if "verdict" in cols else
                    {"verdict_acc": None, "n_verdict": 0, "autoattack_acc": None,
                     "n_autoattack": 0}),
                 "n_pgd": N, "pgd_label": "PGD-20 (step eps/4, 1 restart)",
                 "verdict_label": "APGD-CE+T (reference)",
                 "autoattack_label": "AutoAttack standard (reference)",
                 "majority_rate": majority,
                 "checks_failed": (failed or {}).get(name, [])}))
            pd.DataFrame(cols).to_parquet(examples / f"{name}-{seed}.parquet")
        cols = _columns(0.82, 0.03, 0.01, seed)
        (metrics / "eval_clean" / f"s{seed}.json").write_text(json.dumps(
            {"clean_acc": 0.82, "pgd_acc": 0.03, "verdict_acc": 0.01, "n_verdict": N_AA,
             "autoattack_acc": 0.01, "n_pgd": N, "n_autoattack": N_CHECK,
             "checks_failed": []}))
        pd.DataFrame(cols).to_parquet(examples / f"clean-s{seed}.parquet")
    return metrics, examples


def _run(tmp_path: Path, methods: dict[str, Any] | None = None, seeds: tuple[int, ...] = (0,),
         measured: dict[str, tuple[float, ...]] | None = None,
         history: dict[str, list[float]] | None = None,
         failed: dict[str, list[str]] | None = None,
         report_cfg: dict[str, Any] | None = None,
         majority: float = 0.0) -> dict[str, Any]:
    params = params_from_dict({"methods": METHODS if methods is None else methods,
                               "seeds": list(seeds), **({"report": report_cfg} if report_cfg
                                                        else {})})
    metrics, examples = _write(tmp_path, MEASURED if measured is None else measured, seeds,
                               history, failed, methods, majority)
    return report.report(params, metrics, examples, tmp_path / "summary.json",
                         tmp_path / "summary.md", tmp_path / "pareto.png",
                         tmp_path / "curves.csv", tmp_path / "headline.json")


def test_speedups_deltas_and_intervals_against_the_baseline(tmp_path: Path) -> None:
    rows = _run(tmp_path)["methods"]
    assert rows["full"]["speedup_passes"] == 1.0 and rows["full"]["delta_pgd"]["estimate"] == 0
    assert rows["random-online"]["speedup_passes"] == pytest.approx(1_000_000 / 300_000, 1e-3)
    assert rows["bullettrain"]["speedup_seconds"] == pytest.approx(400 / 210, 1e-3)
    assert rows["stack"]["relative_cost"] == 0.1
    score = rows["score"]
    assert score["delta_pgd"]["estimate"] == pytest.approx(0.66 - 0.70)
    # the verdict subset is a sample of the latent: its delta is the rates' up to sampling
    assert score["delta_verdict"]["estimate"] == pytest.approx(0.64 - 0.68, abs=0.015)
    assert score["delta_verdict"]["n"] == N_AA and score["delta_pgd"]["n"] == N
    assert score["n_verdict"] == N_AA and score["n_autoattack"] == N_CHECK
    # calibrated: PGD delta on all + (verdict tier - PGD) gap delta on the subset
    sub = {k: pd.read_parquet(tmp_path / "examples" / f"{k}-0.parquet")[:N_AA]
           for k in ("score", "full")}
    gap = {k: (t["verdict"] - t["pgd"]).mean() for k, t in sub.items()}
    assert score["delta_calibrated"]["estimate"] == pytest.approx(
        -0.04 + gap["score"] - gap["full"], abs=1e-6)
    for key in ("delta_pgd", "delta_verdict", "delta_calibrated"):
        d = score[key]
        assert d["low"] <= d["estimate"] <= d["high"]
    # the subset alone is 4x smaller: its interval is wider than the calibrated one
    width = {k: score[k]["high"] - score[k]["low"] for k in ("delta_verdict",
                                                             "delta_calibrated")}
    assert width["delta_calibrated"] < width["delta_verdict"]
    assert rows["stack"]["attack"] == "fgsm-rs" and rows["score"]["attack"] == "pgd-10"


def test_random_at_equal_cost_is_a_verdict_from_the_interval(tmp_path: Path) -> None:
    rows = _run(tmp_path)["methods"]
    # score spends 310 k passes, random-online 300 k: within ±10 %, +6 pts on 4 000 examples
    assert rows["score"]["vs_random"]["random"] == "random-online"
    assert rows["score"]["vs_random"]["verdict"] == "met"
    # no random run near 100 k (stack) or 480 k (bullettrain) passes: said, not guessed
    for name in ("stack", "bullettrain"):
        assert rows[name]["vs_random"]["random"] is None
        assert rows[name]["vs_random"]["verdict"] is None
    # random runs and the frontier are not compared with random
    assert rows["random-online"]["vs_random"] is None and rows["full-25"]["vs_random"] is None
    worse = dict(MEASURED, score=(290_000, 200.0, 0.74, 0.52, 0.50))
    assert _run(tmp_path / "w", measured=worse)["methods"]["score"]["vs_random"][
        "verdict"] == "not met"
    close = dict(MEASURED, score=(310_000, 200.0, 0.74, 0.6005, 0.5805))
    assert _run(tmp_path / "c", measured=close)["methods"]["score"]["vs_random"][
        "verdict"] == "inconclusive"
    far = dict(MEASURED, score=(340_000, 200.0, 0.74, 0.66, 0.64))  # 13 % dearer
    assert _run(tmp_path / "f", measured=far)["methods"]["score"]["vs_random"][
        "random"] is None


def test_effective_speedup_against_the_full_data_frontier(tmp_path: Path) -> None:
    """Frontier: full at 250 k (60 %), 500 k (66 %), 1 M (70 %) passes, PGD-20."""
    rows = _run(tmp_path)["methods"]
    assert [n for n, r in rows.items() if r["frontier"]] == ["full", "full-50", "full-25"]
    # score reaches 66 % with 310 k passes; the frontier needs 500 k
    sp = rows["score"]["effective_speedup"]
    assert sp["estimate"] == {"value": pytest.approx(500 / 310, abs=1e-4), "side": 0}
    assert sp["low"]["value"] <= sp["estimate"]["value"] <= sp["high"]["value"]
    assert rows["score"]["effective_speedup"]["position"] == "above"
    # bullettrain at 480 k: log-cost interpolation between 500 k and 1 M on the verdict
    # scale, APGD-CE+T-calibrated accuracy (the scale every run here has)
    cal = {n: rows[n]["robust_calibrated"]["estimate"] for n in ("full-50", "full", "bullettrain")}
    expected = 500_000 * 2 ** ((cal["bullettrain"] - cal["full-50"])
                               / (cal["full"] - cal["full-50"])) / 480_000
    assert rows["bullettrain"]["effective_speedup"]["scale"] == "APGD-CE+T-calibrated"
    assert rows["bullettrain"]["effective_speedup"]["estimate"]["value"] == pytest.approx(
        expected, rel=1e-3)
    # random-online (60 % at 300 k) is no better than full's smallest budget: censored "≤"
    ro = rows["random-online"]["effective_speedup"]
    assert ro["estimate"] == {"value": pytest.approx(250 / 300, abs=1e-4), "side": -1}
    assert ro["text"].startswith("≤0.83×") and ro["position"] != "above"
    # a frontier point is on its own frontier
    assert rows["full-50"]["effective_speedup"]["estimate"]["value"] == pytest.approx(1.0)
    # seconds: the same interpolation on the frontier's seconds (100, 200, 400 s)
    assert rows["score"]["effective_speedup_seconds"]["estimate"]["value"] == pytest.approx(
        200 / 200, abs=1e-4)
    assert rows["full"]["budget"] == 0.0 and rows["full-25"]["budget"] == 0.25


def test_the_frontier_is_read_on_the_calibrated_scale_not_on_pgd(tmp_path: Path) -> None:
    """A method that PGD-k over-states more than the frontier runs (BulletTrain's trust gap is
    the largest) is above the frontier on PGD-k but not on the AutoAttack-calibrated scale;
    without the AutoAttack tier the frontier falls back to PGD-k and says so."""
    flattered = dict(MEASURED, bullettrain=(480_000, 210.0, 0.82, 0.699, 0.62))
    row = _run(tmp_path / "a", measured=flattered)["methods"]["bullettrain"]
    sp = row["effective_speedup"]
    assert sp["scale"] == "APGD-CE+T-calibrated" and sp["position"] == "below"
    no_aa = {n: (*v[:4], None) for n, v in flattered.items()}
    row = _run(tmp_path / "b", measured=no_aa)["methods"]["bullettrain"]
    assert row["effective_speedup"]["scale"] == "PGD-k"
    assert row["effective_speedup"]["position"] == "above"


def test_without_a_frontier_there_is_no_effective_speedup(tmp_path: Path) -> None:
    methods = {k: v for k, v in METHODS.items() if not k.startswith("full-")}
    measured = {k: v for k, v in MEASURED.items() if not k.startswith("full-")}
    result = _run(tmp_path, methods=methods, measured=measured)
    assert all(r["effective_speedup"] is None for r in result["methods"].values())
    subset = next(t for t in result["targets"] if t["target"].startswith("best subset"))
    assert subset["verdict"] == "inconclusive" and "no full-data frontier" in subset["measured"]


def test_time_to_target_reads_the_validation_curves(tmp_path: Path) -> None:
    """Target: full's final validation accuracy (0.6) − report.target_drop (0.01)."""
    history = {"score": [0.55, 0.595, 0.62], "stack": [0.4, 0.45], "bullettrain": [0.62, 0.63]}
    rows = _run(tmp_path, history=history)["methods"]
    assert rows["full"]["to_target"]["target"] == pytest.approx(0.59)
    assert rows["full"]["to_target"]["passes"] == 1_000_000  # reached at its last epoch
    assert rows["score"]["to_target"]["passes"] == round(310_000 * 2 / 3)
    assert rows["bullettrain"]["to_target"]["passes"] == 240_000
    assert rows["stack"]["to_target"] == {"metric": "val_pgd_acc", "target": pytest.approx(0.59),
                                          "reached": 0, "of": 1, "passes": None,
                                          "seconds": None}
    assert "| not reached |" in (tmp_path / "summary.md").read_text()


def test_curves_csv_has_every_epoch_of_every_run(tmp_path: Path) -> None:
    _run(tmp_path, seeds=(0, 1))
    curves = pd.read_csv(tmp_path / "curves.csv")
    assert tuple(curves.columns) == report.CURVE_COLUMNS
    assert len(curves) == len(METHODS) * 2 * 2  # methods x seeds x epochs
    full = curves[curves["run"] == "full-1"]
    assert full["passes"].tolist() == [500_000, 1_000_000]
    assert full["val_pgd_acc"].tolist() == [0.5, 0.6]


def test_seeds_are_aggregated(tmp_path: Path) -> None:
    rows = _run(tmp_path, seeds=(0, 1, 2))["methods"]
    r = rows["score"]
    assert r["seeds"] == [0, 1, 2] and r["delta_pgd"]["seeds"] == 3
    assert r["delta_pgd"]["method"] == "seeds-crossed"
    assert r["seconds"] == pytest.approx(201.0)  # mean over seeds of 200, 201, 202
    assert r["pgd_acc"]["std"] == pytest.approx(0.0, abs=1e-12)  # same rate every seed
    table = (tmp_path / "summary.md").read_text()
    assert "Seeds: 0, 1, 2" in table and " ± " in table
    # every seed has the same accuracies on differently drawn examples: all of the spread is
    # example x seed interaction, none of it training noise
    sd = r["seed_sd"]
    assert sd["method"] == "seed-sd-pivot" and sd["seeds"] == 3
    assert sd["estimate"] == pytest.approx(0.0, abs=1e-12) and sd["low"] == 0.0
    assert 0.0 < sd["high"] < 0.05
    assert r["pgd_by_seed"] == [pytest.approx(r["pgd_acc"]["mean"])] * 3
    seed_rows = [line for line in table.splitlines() if line.startswith("| score | 3 |")]
    assert len(seed_rows) == 1 and "training SD" in table


def test_one_seed_has_no_seed_spread(tmp_path: Path) -> None:
    rows = _run(tmp_path)["methods"]
    assert all(r["seed_sd"] is None for r in rows.values())
    assert "training SD" not in (tmp_path / "summary.md").read_text()


def test_autoattack_on_some_seeds_only_is_left_out_not_averaged(tmp_path: Path) -> None:
    """A model evaluated with AutoAttack on seed 0 but not yet on seed 1 has no AutoAttack
    figure over both seeds (a subset mean would pass for the seeds' mean); its PGD stays."""
    params = params_from_dict({"methods": METHODS, "seeds": [0, 1]})
    metrics, examples = _write(tmp_path, MEASURED, (0, 1))
    ev = json.loads((metrics / "eval" / "bullettrain-1.json").read_text())
    del ev["autoattack_acc"], ev["verdict_acc"]
    ev["n_autoattack"] = ev["n_verdict"] = 0
    (metrics / "eval" / "bullettrain-1.json").write_text(json.dumps(ev))
    table = pd.read_parquet(examples / "bullettrain-1.parquet").drop(
        columns=["autoattack", "verdict"])
    table.to_parquet(examples / "bullettrain-1.parquet")
    rows = report.report(params, metrics, examples, tmp_path / "summary.json",
                         tmp_path / "summary.md", tmp_path / "pareto.png",
                         tmp_path / "curves.csv", tmp_path / "headline.json")["methods"]
    bt = rows["bullettrain"]
    assert bt["autoattack_acc"] is None and bt["n_autoattack"] == 0
    assert bt["verdict_acc"] is None and bt["n_verdict"] == 0
    assert bt["delta_verdict"] is None and bt["delta_calibrated"] is None
    assert bt["delta_pgd"]["seeds"] == 2
    assert rows["score"]["autoattack_acc"] is not None
    # the headline's robust figure and Δ fall back to PGD-k without AutoAttack
    head = json.loads((tmp_path / "headline.json").read_text())["bullettrain"]
    assert head["robust"] == round(100 * bt["pgd_interval"]["estimate"], 2)
    assert head["delta"] == round(100 * bt["delta_pgd"]["estimate"], 2)


def test_corruptions_on_some_seeds_only_are_left_out(tmp_path: Path) -> None:
    """Common corruptions evaluated on seed 0 but not on seed 1: no corruption figures over
    the two seeds (and no KeyError from the seed that lacks them)."""
    params = params_from_dict({"methods": METHODS, "seeds": [0, 1]})
    metrics, examples = _write(tmp_path, MEASURED, (0, 1))
    for name in METHODS:
        ev = json.loads((metrics / "eval" / f"{name}-0.json").read_text())
        ev.update(corruption_acc=0.6, n_corruption=N, n_corrupted_copies=75,
                  corruption_acc_by_severity={"1": 0.7}, corruption_acc_by_name={"fog": 0.5})
        (metrics / "eval" / f"{name}-0.json").write_text(json.dumps(ev))
        table = pd.read_parquet(examples / f"{name}-0.parquet")
        table["corruption"] = np.full(N, 45, dtype=np.int16)
        table.to_parquet(examples / f"{name}-0.parquet")
    rows = report.report(params, metrics, examples, tmp_path / "summary.json",
                         tmp_path / "summary.md", tmp_path / "pareto.png",
                         tmp_path / "curves.csv")["methods"]
    assert all(r["corruption"] is None for r in rows.values())
    assert rows["score"]["delta_pgd"]["seeds"] == 2


def test_report_level_checks_name_the_failure(tmp_path: Path) -> None:
    collapsed = dict(MEASURED, stack=(100_000, 80.0, 0.30, 0.25, 0.2))
    rows = _run(tmp_path, measured=collapsed,
                history={"stack": [0.4, 0.45, 0.1]})["methods"]
    assert rows["stack"]["checks_failed"] == ["catastrophic_overfitting", "clean_collapse"]
    assert rows["full"]["checks_failed"] == [] and rows["full"]["checks_passed"]
    row = next(line for line in (tmp_path / "summary.md").read_text().splitlines()
               if line.startswith("| stack |"))
    assert row.endswith("| failed: catastrophic_overfitting (voids comparisons), "
                        "clean_collapse (voids comparisons) |")
    # a voided model is compared with nothing: no Δ, no speed-up, no frontier, no verdict
    stack = rows["stack"]
    assert stack["blocked_by"] == ["stack: catastrophic_overfitting", "stack: clean_collapse"]
    assert stack["delta_calibrated"] is None and stack["speedup_passes"] is None
    assert stack["effective_speedup"] is None and stack["vs_random"] is None
    assert "| blocked | blocked |" in row


def test_a_model_at_chance_blocks_every_verdict(tmp_path: Path) -> None:
    """Every model at chance (a run that learned nothing): no target reads "met"."""
    failed = {name: ["above_chance"] for name in MEASURED}
    result = _run(tmp_path, failed=failed)
    assert {t["verdict"] for t in result["targets"]} == {"blocked"}
    assert all("full: above_chance" in t["measured"] for t in result["targets"])
    rows = result["methods"]
    assert all(r["speedup_passes"] is None and r["effective_speedup"] is None
               and not r["frontier"] for r in rows.values())
    assert result["pareto_front"] == []
    text = (tmp_path / "summary.md").read_text()
    assert "| failed: above_chance (voids comparisons) |" in text and "| met |" not in text


def test_the_at_chance_threshold_is_the_reports(tmp_path: Path) -> None:
    """The evaluation records clean accuracy and the majority rate; `report.chance_margin`
    decides: with every model within the margin of the largest class, nothing is compared."""
    # MEASURED's clean accuracies are 0.70-0.82 (± 0.007 sampling); a largest class of 0.675
    # puts those below 0.775 within 0.1 of it
    low = {n for n, v in MEASURED.items() if v[2] < 0.775}
    assert low == {"full-25", "random-online", "score", "stack"}
    rows = _run(tmp_path, majority=0.675)["methods"]
    assert {n for n, r in rows.items() if "above_chance" in r["voided_by"]} == low
    rows = _run(tmp_path, majority=0.675, report_cfg={"chance_margin": 0.0})["methods"]
    assert not any("above_chance" in r["voided_by"] for r in rows.values())


def test_a_baseline_at_chance_blocks_the_comparisons_of_every_method(tmp_path: Path) -> None:
    rows = _run(tmp_path, failed={"full": ["above_chance"]})["methods"]
    assert rows["bullettrain"]["blocked_by"] == ["full: above_chance"]
    assert rows["bullettrain"]["voided_by"] == []
    assert rows["score"]["delta_pgd"] is None and rows["score"]["effective_speedup"] is None


def test_pgd_trust_does_not_block(tmp_path: Path) -> None:
    rows = _run(tmp_path, failed={"bullettrain": ["pgd_trusted"]})["methods"]
    assert rows["bullettrain"]["blocked_by"] == []
    assert rows["bullettrain"]["delta_calibrated"] is not None


def test_a_target_is_met_when_any_candidate_meets_it(tmp_path: Path) -> None:
    """Two BulletTrain candidates: the one with the higher Δ misses the pass ratio (not met),
    the other meets both parts: the target is met, and names the deciding candidate."""
    methods = {**METHODS, "bt-slow": {"miner": "bullettrain", "gamma": 0.7}}
    measured = {**MEASURED, "bt-slow": (700_000, 300.0, 0.82, 0.70, 0.68)}
    result = _run(tmp_path, methods=methods, measured=measured)
    bt = next(t for t in result["targets"] if t["target"].startswith("BulletTrain"))
    assert bt["candidates"] == {"bt-slow": "not met", "bullettrain": "met"}
    assert bt["verdict"] == "met" and bt["method"] == "bullettrain"
    # all candidates miss: not met; one inconclusive: inconclusive, named
    measured["bullettrain"] = (700_000, 300.0, 0.82, 0.699, 0.679)
    bt = next(t for t in _run(tmp_path, methods=methods, measured=measured)["targets"]
              if t["target"].startswith("BulletTrain"))
    assert bt["verdict"] == "not met" and set(bt["candidates"].values()) == {"not met"}


def test_pairing_checks_the_examples_are_the_same(tmp_path: Path) -> None:
    params = params_from_dict({"methods": METHODS})
    metrics, examples = _write(tmp_path, MEASURED)
    table = pd.read_parquet(examples / "score-0.parquet")
    table["label"] = np.roll(table["label"].to_numpy(), 1)
    table.to_parquet(examples / "score-0.parquet")
    with pytest.raises(InputError, match=r"score-0: its label differs from full-0's at row 0"):
        report.report(params, metrics, examples, tmp_path / "s.json",
                      tmp_path / "s.md", None)


def test_pareto_front_keeps_only_undominated_points() -> None:
    points = {"a": (1.0, 68.0), "b": (0.5, 67.5), "c": (0.3, 62.0), "d": (0.5, 60.0),
              "e": (0.25, 55.0), "f": (0.6, 66.0)}
    assert report.pareto_front(points) == ["e", "c", "b", "a"]


def test_outputs_table_and_plot(tmp_path: Path) -> None:
    result = _run(tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text()) == result
    table = (tmp_path / "summary.md").read_text().splitlines()
    stack = [line for line in table if line.startswith("| stack |")]
    assert len(stack) == 2 and "-15.00 [" in stack[0]  # accuracy row, then cost row
    assert "| 10.00× / 5.00× |" in stack[1] and "| no random run at this cost |" in stack[1]
    assert table[0].count("[95 % CI]") == 2
    score = [line for line in table if line.startswith("| score |")][1]
    assert "| 1.61× [" in score and "| above |" in score and "| met vs random-online (" in score
    assert any(line.startswith("| clean-trained (warm-up only) |") for line in table)
    assert (tmp_path / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # full-25 and random-online tie on accuracy: the cheaper one is on the front
    assert result["pareto_front"] == ["stack", "full-25", "score", "bullettrain", "full"]
    full = [line for line in table if line.startswith("| full |")][1]
    assert "| 1.00× [1.00×, ≥1.00×] |" in full and "| frontier run |" in full


def test_missing_metrics_is_a_one_line_error_naming_the_stage(tmp_path: Path) -> None:
    params = params_from_dict({"methods": METHODS})
    metrics, examples = _write(tmp_path, MEASURED)
    (examples / "stack-0.parquet").unlink()
    # the report reads the publish stage's copies: that stage names what to rerun
    with pytest.raises(InputError, match=r"made by the publish@stack-0 stage") as err:
        report.report(params, metrics, examples, tmp_path / "s.json",
                      tmp_path / "s.md", None)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "s.json").exists()


def test_settings_come_from_what_training_recorded_not_the_current_params(tmp_path):
    """Editing an entry after training does not relabel the trained model in the report."""
    edited = {**METHODS, "random-online": {"selector": "random-online", "fraction": 0.9}}
    rows = _run(tmp_path, methods=edited)["methods"]
    assert rows["random-online"]["fraction"] == 0.3  # what the metrics say it trained with


HEADLINE_KEYS = {"clean", "robust", "delta", "passes_x", "seconds_x", "effective_x"}


def test_headline_is_a_few_flat_scalars_per_method(tmp_path: Path) -> None:
    """metrics/headline.json is for `dvc exp show`, which makes a column of every leaf: per
    method a handful of scalars under short keys, then each target's verdict."""
    result = _run(tmp_path)
    head = json.loads((tmp_path / "headline.json").read_text())
    assert set(head) == set(METHODS) | {"verdicts"}
    for name in METHODS:
        assert set(head[name]) == HEADLINE_KEYS and len(head[name]) < 8
        assert all(v is None or isinstance(v, int | float) for v in head[name].values())
    assert head["verdicts"] == {t_key: t["verdict"] for t_key, t in zip(
        ("bullettrain", "subset", "stack"), result["targets"], strict=True)}
    assert set(head["verdicts"].values()) <= {"met", "not met", "inconclusive", "blocked",
                                              "not assessed"}
    score, rows = head["score"], result["methods"]
    assert score["clean"] == round(100 * rows["score"]["clean_acc"]["mean"], 2)
    assert score["robust"] == round(100 * rows["score"]["robust_calibrated"]["estimate"], 2)
    assert score["delta"] == round(100 * rows["score"]["delta_calibrated"]["estimate"], 2)
    assert score["passes_x"] == pytest.approx(3.23) and score["seconds_x"] == 2.0
    assert score["effective_x"] == pytest.approx(round(500 / 310, 2))
    assert head["full"]["delta"] == 0.0 and head["full"]["passes_x"] == 1.0


def test_headline_gives_null_for_blocked_comparisons(tmp_path: Path) -> None:
    collapsed = dict(MEASURED, stack=(100_000, 80.0, 0.30, 0.25, 0.2))
    _run(tmp_path, measured=collapsed, history={"stack": [0.4, 0.45, 0.1]})
    stack = json.loads((tmp_path / "headline.json").read_text())["stack"]
    assert {k for k, v in stack.items() if v is None} == {"delta", "passes_x", "seconds_x",
                                                           "effective_x"}
    assert stack["clean"] == 30.0 and stack["robust"] is not None  # its own figures stay
    _run(tmp_path / "chance", failed={name: ["above_chance"] for name in MEASURED})
    head = json.loads((tmp_path / "chance" / "headline.json").read_text())
    assert set(head.pop("verdicts").values()) == {"blocked"}
    assert all(r["delta"] is None and r["passes_x"] is None for r in head.values())


def test_headline_is_optional_and_a_method_may_not_shadow_its_verdicts(tmp_path: Path) -> None:
    params = params_from_dict({"methods": METHODS})
    metrics, examples = _write(tmp_path, MEASURED)
    report.report(params, metrics, examples, tmp_path / "s.json", tmp_path / "s.md", None)
    assert not (tmp_path / "headline.json").exists()
    methods = {**METHODS, "verdicts": METHODS["score"]}
    with pytest.raises(InputError, match="'verdicts' collides"):
        _run(tmp_path / "v", methods=methods, measured={**MEASURED, "verdicts": MEASURED["score"]})
    assert not (tmp_path / "v" / "summary.json").exists()  # nothing written


def test_tables_from_before_the_verdict_tier_read_autoattack_as_it(tmp_path: Path) -> None:
    """Older evaluations had the standard AutoAttack as their only reference tier: the report
    reads it as the verdict tier, with the same statistics a table holding both would give."""
    new = _run(tmp_path / "new")["methods"]
    params = params_from_dict({"methods": METHODS, "seeds": [0]})
    metrics, examples = _write(tmp_path / "old", MEASURED)
    for path in (examples).glob("*.parquet"):
        table = pd.read_parquet(path)
        table["autoattack"] = table["verdict"]
        table.drop(columns="verdict").to_parquet(path)
    for path in (metrics / "eval").glob("*.json"):
        ev = json.loads(path.read_text())
        ev.update(autoattack_acc=ev.pop("verdict_acc"), n_autoattack=ev.pop("n_verdict"))
        path.write_text(json.dumps(ev))
    old = report.report(params, metrics, examples, tmp_path / "s.json", tmp_path / "s.md",
                        None)["methods"]
    for key in ("delta_calibrated", "robust_calibrated", "delta_verdict"):
        assert old["score"][key] == new["score"][key]
    assert old["score"]["n_verdict"] == N_AA


def test_a_verdict_tier_that_misses_breaks_voids_the_model(tmp_path: Path) -> None:
    """FAB-T or Square broke what APGD-CE+T did not (``verdict_complete`` failed): the verdict
    tier over-states the model, so no Δ, speed-up or verdict is read from it."""
    rows = _run(tmp_path, failed={"score": ["verdict_complete"]})["methods"]
    assert rows["score"]["voided_by"] == ["verdict_complete"]
    assert rows["score"]["delta_calibrated"] is None and rows["score"]["speedup_passes"] is None
    assert rows["bullettrain"]["delta_calibrated"] is not None


def test_a_class_a_model_gave_up_on_is_named(tmp_path: Path) -> None:
    """A model that never predicts one class: its overall accuracy moves by a tenth, the
    report names the class (``class_given_up``) with both accuracies, and voids nothing."""
    params = params_from_dict({"methods": METHODS, "seeds": [0]})
    metrics, examples = _write(tmp_path, MEASURED)
    for path in examples.glob("*.parquet"):
        table = pd.read_parquet(path)
        right = table["clean"].to_numpy() == 1
        label = table["label"].to_numpy()
        pred = np.where(right, label, (label + 1) % 10)
        if path.stem == "score-0":
            pred = np.where(label == 3, 4, pred)  # never says 3
        table["clean_pred"] = pred.astype(np.int16)
        table.to_parquet(path)
    out = report.report(params, metrics, examples, tmp_path / "s.json", tmp_path / "s.md",
                        None)["methods"]
    assert list(out["score"]["classes_given_up"]) == ["3"]
    assert out["score"]["classes_given_up"]["3"]["clean_acc"] == 0.0
    assert "class_given_up" in out["score"]["checks_failed"] and not out["score"]["voided_by"]
    assert all(not r["classes_given_up"] for n, r in out.items() if n != "score")
    assert "score: class 3 0.0 % vs" in (tmp_path / "s.md").read_text()


def test_a_stack_names_its_components_and_where_each_stands(tmp_path: Path) -> None:
    """The stack (prune 0.3 × BulletTrain × FGSM-RS) against the runs that make each saving
    alone: `score` (prune 0.3), `bullettrain`; no run trains FGSM-RS alone."""
    result = _run(tmp_path)
    rows = result["methods"]
    stack = rows["stack"]["stack"]
    parts = {c["axis"]: c for c in stack["components"]}
    assert list(parts) == ["selection", "mining", "attack"]
    assert parts["selection"]["run"] == "score" and parts["selection"]["what"] == "prune 0.3"
    assert parts["selection"]["position"] == "above"
    assert parts["mining"]["run"] == "bullettrain"
    assert parts["mining"]["position"] == rows["bullettrain"]["effective_speedup"]["position"]
    assert parts["attack"] == {"axis": "attack", "what": "fgsm-rs", "run": None,
                               "position": None, "effective_speedup": None}
    # a component read as not above decides; else the missing one leaves it open
    not_above = [n for n in ("score", "bullettrain")
                 if rows[n]["effective_speedup"]["position"] != "above"]
    assert stack["not_above"] == not_above
    assert stack["all_above"] is (False if not_above else None)
    # runs that save on one axis, the frontier and the baseline are no stacks
    assert all(rows[n]["stack"] is None for n in METHODS if n != "stack")
    text = (tmp_path / "summary.md").read_text()
    assert "Stacks and their components" in text
    assert "stack = selection score: above, " in text
    assert "attack fgsm-rs: no run of it alone" in text


def test_a_stack_of_components_each_above_the_frontier_says_so(tmp_path: Path) -> None:
    # every saving alone beats the frontier: prune at 310 k passes reaches full-50's 66 %,
    # BulletTrain at 300 k and FGSM-RS at 200 k too; a BulletTrain with other options,
    # listed first, is not the stack's component
    methods = {"bt-gamma": {"miner": "bullettrain", "gamma": 0.5}, **METHODS,
               "fgsm": {"attack": "fgsm-rs", "alpha": 0.125}}
    measured = {**MEASURED, "bullettrain": (300_000, 150.0, 0.80, 0.70, 0.68),
                "fgsm": (200_000, 60.0, 0.78, 0.66, 0.64),
                "bt-gamma": (900_000, 390.0, 0.70, 0.50, 0.45)}
    rows = _run(tmp_path, methods=methods, measured=measured)["methods"]
    stack = rows["stack"]["stack"]
    assert [c["run"] for c in stack["components"]] == ["score", "bullettrain", "fgsm"]
    assert [c["position"] for c in stack["components"]] == ["above"] * 3
    assert stack["all_above"] is True and stack["not_above"] == []
    assert "(every component above the frontier)" in (tmp_path / "summary.md").read_text()
    # the same stack at half the passes, or with weight averaging, is made of components
    # with the same budget or averaging: none here
    varied = {**methods, "stack-50": {**METHODS["stack"], "budget": 0.5},
              "stack-ema": {**METHODS["stack"], "ema": 0.99}}
    rows = _run(tmp_path / "v", methods=varied,
                measured={**measured, "stack-50": (50_000, 40.0, 0.68, 0.50, 0.45),
                          "stack-ema": (100_000, 80.0, 0.70, 0.55, 0.50)})["methods"]
    for name in ("stack-50", "stack-ema"):
        assert [c["run"] for c in rows[name]["stack"]["components"]] == [None] * 3
        assert rows[name]["stack"]["all_above"] is None
    assert [c["run"] for c in rows["stack"]["stack"]["components"]] == [
        "score", "bullettrain", "fgsm"]
