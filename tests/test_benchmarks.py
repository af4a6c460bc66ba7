"""The AugMix benchmark end to end on the tiny dataset: its runs, its tables, and its resume
(a second invocation trains nothing and writes the same tables)."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

import yaml

from tests.conftest import ROOT, tiny_params


def _benchmark(name: str) -> ModuleType:
    """A script of ``benchmarks/`` as a module: the folder is not a package, so it is put on
    the path only while importing."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_augmix_benchmark_runs_resumes_and_tabulates(tmp_path: Path, tiny_npz: Path) -> None:
    raw = tiny_params(tiny_npz, warmup={"epochs": 1}, train={"epochs": 1},
                      methods={"full": {}, "bullettrain": {"miner": "bullettrain"}})
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    augmix = _benchmark("augmix")
    args = ["--seeds", "0", "--epochs", "1", "--methods", "full", "bullettrain",
            "--corruptions", "16", "--params", str(params), "--work", str(tmp_path / "work"),
            "--out", str(tmp_path / "out" / "augmix")]
    assert augmix.main(args) == 0
    results = json.loads((tmp_path / "out" / "augmix.json").read_text())
    assert sorted(results) == ["augmix/e1/bullettrain/s0", "augmix/e1/full/s0",
                               "clean/e1/full/s0"]
    full, bt = results["augmix/e1/full/s0"], results["augmix/e1/bullettrain/s0"]
    assert bt["passes"] < full["passes"] and full["corruption_acc"] is not None
    text = (tmp_path / "out" / "augmix.md").read_text()
    assert "BulletTrain for AugMix: ≥1.7× passes" in text
    assert "Each objective vs standard (clean) training" in text and "| augmix | 0 |" in text
    assert "mCE vs clean-trained" in text and "mCE vs clean-objective" in text
    stamp = (tmp_path / "work" / "augmix-e1-full-s0.pt").stat().st_mtime_ns
    assert augmix.main(args) == 0  # resumes: nothing is trained again
    assert (tmp_path / "work" / "augmix-e1-full-s0.pt").stat().st_mtime_ns == stamp
    assert json.loads((tmp_path / "out" / "augmix.json").read_text()) == results


def test_long_regime_tables_each_method_over_the_seeds_it_has() -> None:
    long_regime = _benchmark("long_regime")
    runs = {"full": {0: "f0", 1: "f1", 2: "f2"}, "bullettrain": {0: "b0", 1: "b1", 2: "b2"},
            "full-50": {0: "h0", 1: "h1"}, "prune": {1: "p1", 0: "p0"},
            "random-online": {0: "r0"}, "gradmatch": {1: "g1"}}
    tables = long_regime.seed_tables(runs)
    assert [used for used, _ in tables] == [[0, 1, 2], [0, 1], [0]]
    assert sorted(tables[0][1]) == ["bullettrain", "full"]
    assert sorted(tables[1][1]) == ["bullettrain", "full", "full-50", "prune"]
    assert tables[1][1]["prune"] == {0: "p0", 1: "p1"}
    assert sorted(tables[2][1]) == ["bullettrain", "full", "full-50", "prune", "random-online"]
    # every method on every seed: one table; one seed: one table
    assert len(long_regime.seed_tables({"full": {0: 1, 1: 2}, "prune": {0: 3, 1: 4}})) == 1
    assert long_regime.seed_tables({"full": {3: 1}, "prune": {3: 2}}) == [
        ([3], {"full": {3: 1}, "prune": {3: 2}})]
