"""The benchmark regimes are DVC pipelines: each is the default pipeline rewritten onto its own
params file and folder (in sync with dvc.yaml), its params are valid, and one runs end to end
with `dvc repro`, everything it writes inside its folder."""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from robustprune.config import load_params
from tests.conftest import ROOT, tiny_params
from tests.test_dvc_e2e import _project, _run


def _build() -> ModuleType:
    sys.path.insert(0, str(ROOT / "benchmarks" / "regimes"))
    try:
        return importlib.import_module("build")
    finally:
        sys.path.remove(str(ROOT / "benchmarks" / "regimes"))


REGIMES = _build().regimes()


def test_there_are_regimes() -> None:
    assert {"averaging", "long", "long-trades", "augmix", "seeds"} <= set(REGIMES)


@pytest.mark.parametrize("name", REGIMES)
def test_each_regime_pipeline_is_the_default_rewritten(name: str) -> None:
    """Committed dvc.yaml == what build.py writes from today's default dvc.yaml (rerun it
    after changing dvc.yaml), so every regime runs exactly the default's stages and code."""
    committed = (ROOT / "benchmarks" / "regimes" / name / "dvc.yaml").read_text()
    assert committed == _build().pipeline(name), f"rerun: python benchmarks/regimes/build.py {name}"


@pytest.mark.parametrize("name", REGIMES)
def test_each_regime_params_are_the_default_with_only_its_changes(name: str) -> None:
    """Committed params.yaml == the default params.yaml with regime.yaml's values: a default
    changed later cannot be silently kept stale by a regime's copy."""
    folder = ROOT / "benchmarks" / "regimes" / name
    committed = (folder / "params.yaml").read_text()
    assert committed == _build().params_text(name), (
        f"rerun: python benchmarks/regimes/build.py {name}")
    changes = yaml.safe_load((folder / "regime.yaml").read_text())["set"]
    default, regime = (yaml.safe_load((ROOT / "params.yaml").read_text()),
                       yaml.safe_load(committed))
    for section, value in default.items():
        if isinstance(value, dict) and section != "methods":
            for key, v in value.items():
                want = changes.get(f"{section}.{key}", v)
                assert regime[section][key] == want, f"{section}.{key}"
        else:
            assert regime[section] == changes.get(section, value), section


def test_a_regime_key_that_is_not_in_the_default_is_refused(tmp_path: Path, monkeypatch) -> None:
    build = _build()
    monkeypatch.setattr(build, "REGIMES", tmp_path)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "regime.yaml").write_text("about: x\nset:\n  train.epoch: 16\n")
    with pytest.raises(build.RegimeError, match=r"regime\.yaml: set\.train\.epoch: no such key"):
        build.params_text("bad")
    lines = build._set(["train:", "  epochs: 4   # robust epochs", "eval:", "  n: 1"],
                       "train.epochs", 16)
    assert lines == ["train:", "  epochs: 16  # robust epochs", "eval:", "  n: 1"]


@pytest.mark.parametrize("name", REGIMES)
def test_each_regime_reads_its_own_params_and_writes_only_in_its_folder(name: str) -> None:
    prefix = f"benchmarks/regimes/{name}"
    load_params(ROOT / prefix / "params.yaml")  # the whole file is valid
    stages = yaml.safe_load((ROOT / prefix / "dvc.yaml").read_text())["stages"]
    default = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert set(stages) == set(default)
    for sname, stage in stages.items():
        body = stage.get("do", stage)
        assert body["wdir"] == "../../.."
        # every stage that reads params reads the regime's (publish reads none)
        assert (f"--params {prefix}/params.yaml" in body["cmd"]) == ("params" in body), sname
        assert all(list(p) == [f"{prefix}/params.yaml"] for p in body.get("params", []))
        for key in ("outs", "metrics"):
            for out in body.get(key, []):
                path = out if isinstance(out, str) else next(iter(out))
                assert path.startswith(prefix + "/"), (sname, path)
        code = [d for d in body["deps"] if d.startswith(("stages/", "robustprune/"))]
        default_body = default[sname].get("do", default[sname])
        assert code == [d for d in default_body["deps"]
                        if d.startswith(("stages/", "robustprune/"))], sname


def test_a_regime_runs_with_dvc_repro_inside_its_folder(tmp_path: Path, tiny_npz: Path) -> None:
    raw = tiny_params(tiny_npz, methods={"full": {}},
                      warmup={"epochs": 1}, train={"epochs": 1}, eval={"n_curve": 0},
                      corruptions={"n": 8})
    repo = _project(tmp_path, raw)
    regime = repo / "benchmarks" / "regimes" / "tiny"
    regime.mkdir(parents=True)
    shutil.copy2(ROOT / "benchmarks" / "regimes" / "build.py", repo / "benchmarks" / "regimes")
    (regime / "regime.yaml").write_text(yaml.safe_dump(
        {"about": "a tiny regime", "set": {"methods": {"full": {}, "full-ema": {"ema": 0.9}}}}))
    _run([sys.executable, "benchmarks/regimes/build.py", "tiny"], repo)
    out = _run(["dvc", "repro", "benchmarks/regimes/tiny/dvc.yaml"], repo)
    assert "Running stage 'benchmarks/regimes/tiny/dvc.yaml:report'" in out
    summary = json.loads((regime / "metrics" / "summary.json").read_text())
    assert set(summary["methods"]) == {"full", "full-ema"}
    assert (regime / "dvc.lock").is_file() and (regime / "models" / "full-ema-0.pt").is_file()
    assert (regime / "results" / "examples" / "full-ema-0.parquet").is_file()
    assert not (repo / "metrics").exists() and not (repo / "models").exists()
    assert "up to date" in _run(["dvc", "status", "benchmarks/regimes/tiny/dvc.yaml"], repo)
