"""Stages as functions and as CLI scripts: determinism, kill-and-resume, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from robustprune import load_model
from robustprune.config import params_from_dict
from robustprune.pipeline import api as pipeline
from robustprune.report import ReportConfig, eval_failed
from tests.conftest import ROOT, tiny_params


def strip_timing(obj: object) -> object:
    """Metrics without wall-clock values (which legitimately differ run to run) and paths."""
    if isinstance(obj, dict):
        return {k: strip_timing(v) for k, v in obj.items()
                if not k.endswith("seconds") and k not in ("model", "runtime")}
    if isinstance(obj, list):
        return [strip_timing(v) for v in obj]
    return obj


def run_all(root: Path, raw: dict, seed: int = 0, method: str = "full") -> dict[str, dict]:
    params = params_from_dict(raw)
    cpu = torch.device("cpu")
    data = root / "data.npz"
    pipeline.prepare(params, data)
    ck = root / "ck"
    warm = pipeline.warmup(params, seed, data, root / "warmup.pt", root / "warmup.json", None,
                           cpu, ck)
    trained = pipeline.train(params, seed, method, data, root / "warmup.pt", root / "robust.pt",
                             root / "train.json", None, cpu, ck)
    ev = pipeline.evaluate(params, seed, data, root / "robust.pt", root / "eval.json",
                           root / "examples.parquet", cpu, ck)
    return {"warmup": warm, "train": trained, "eval": ev}


def test_same_seed_identical_metrics_and_different_seed_differs(tmp_path, tiny_npz):
    a = run_all(tmp_path / "a", tiny_params(tiny_npz))
    b = run_all(tmp_path / "b", tiny_params(tiny_npz))
    assert strip_timing(a) == strip_timing(b)
    wa = load_model(tmp_path / "a" / "robust.pt").state_dict()
    wb = load_model(tmp_path / "b" / "robust.pt").state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (tmp_path / "a" / "examples.parquet").read_bytes() == (
        tmp_path / "b" / "examples.parquet").read_bytes()
    c = run_all(tmp_path / "c", tiny_params(tiny_npz), seed=1)
    assert strip_timing(c["train"]) != strip_timing(a["train"])
    # finished runs leave no resume state behind
    assert not any((tmp_path / "a" / "ck").iterdir())


def test_training_actually_learns_and_cost_matches_pgd_accounting(tmp_path, tiny_npz):
    out = run_all(tmp_path, tiny_params(tiny_npz, train={"epochs": 2}))
    assert out["warmup"]["final"]["val_clean_acc"] > 0.6  # 4 classes: chance is 0.25
    n, k, epochs = out["train"]["train_examples"], 3, 2
    cost = out["train"]["cost"]
    # PGD-AT: k attack forwards+backwards and one training forward+backward per example
    assert cost["attack_forward"] == cost["attack_backward"] == n * k * epochs
    assert cost["train_forward"] == cost["train_backward"] == n * epochs
    assert cost["passes"] == 2 * n * (k + 1) * epochs


def _write_params(root: Path, raw: dict) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _stage(name: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "stages" / f"{name}.py"), *args],
                          cwd=cwd, capture_output=True, text=True, env={**os.environ})


def test_kill_at_any_point_then_resume_gives_uninterrupted_metrics(tmp_path, tiny_npz):
    raw = tiny_params(tiny_npz, train={"epochs": 6, "val_n": 0})
    dirs = {}
    for label in ("straight", "killed"):
        d = tmp_path / label
        _write_params(d, raw)
        assert _stage("prepare", d).returncode == 0
        assert _stage("warmup", d, "--device", "cpu").returncode == 0
        dirs[label] = d
    assert _stage("train", dirs["straight"], "--device", "cpu").returncode == 0

    d = dirs["killed"]
    proc = subprocess.Popen([sys.executable, str(ROOT / "stages" / "train.py"),
                             "--device", "cpu"], cwd=d, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ckpts = d / ".cache" / "checkpoints"
    deadline = time.time() + 120
    while time.time() < deadline and not list(ckpts.glob("train-*/last.pt")):
        time.sleep(0.05)
    time.sleep(0.3)  # land somewhere inside a later epoch
    assert proc.poll() is None, "training finished before it could be killed; make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (d / "metrics" / "train" / "full-0.json").exists()  # no partial output
    state = torch.load(next(ckpts.glob("train-*/last.pt")), weights_only=True)
    assert 1 <= state["epoch"] < 6

    resumed = _stage("train", d, "--device", "cpu")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    a = json.loads((dirs["straight"] / "metrics" / "train" / "full-0.json").read_text())
    b = json.loads((d / "metrics" / "train" / "full-0.json").read_text())
    assert strip_timing(a) == strip_timing(b)
    wa = load_model(dirs["straight"] / "models" / "full-0.pt").state_dict()
    wb = load_model(d / "models" / "full-0.pt").state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # the per-epoch plots hold every epoch exactly once after the resume
    series = d / "dvclive" / "train" / "full-0" / "plots" / "metrics"
    rows = (series / "val_pgd_acc.tsv").read_text()
    assert len(rows.strip().splitlines()) == 1 + 6
    assert not list(ckpts.glob("train-*"))


@pytest.mark.parametrize(("section", "values", "needle", "readers"), [
    ("attack", {"eps": -0.1}, "attack.eps = -0.1", ("warmup", "train", "evaluate")),
    ("methods", {"full": {"fraction": 0}}, "methods.full.fraction = 0", ("train", "report")),
    ("train", {"epochs": "three"}, 'train.epochs = "three"', ("scoring", "train")),
    ("train", {"epoch": 3}, "train.epoch: unknown key", ("scoring", "train")),
    ("report", {"trust_gap": -1}, "report.trust_gap = -1", ("report",)),
])
def test_bad_params_one_line_error_before_any_output(tmp_path, tiny_npz, section, values,
                                                     needle, readers):
    """The whole-file check (`python -m robustprune.config`, run by `make repro` before `dvc
    repro`) refuses a bad key of any section; every stage that reads the section refuses it
    too, before touching anything; the others do not read it (so they do not depend on its
    code)."""
    _write_params(tmp_path, tiny_params(tiny_npz, **{section: values}))
    for stage in ("config", *readers):
        extra = ("--model", "m.pt", "--out", "e.json") if stage == "evaluate" else ()
        res = (subprocess.run([sys.executable, "-m", "robustprune.config"], cwd=tmp_path,
                              capture_output=True, text=True) if stage == "config"
               else _stage(stage, tmp_path, *extra))
        assert res.returncode == 2, stage
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], stage
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_missing_inputs_and_incompatible_model_are_one_line_errors(tmp_path, tiny_npz):
    _write_params(tmp_path, tiny_params(tiny_npz))
    res = _stage("train", tmp_path, "--device", "cpu")
    assert res.returncode == 2
    assert res.stderr.strip() == ("error: data/prepared/dataset.npz: not found; it is made by "
                                  "the prepare stage (dvc repro)")
    assert _stage("prepare", tmp_path).returncode == 0
    assert _stage("warmup", tmp_path, "--device", "cpu").returncode == 0
    _write_params(tmp_path, tiny_params(tiny_npz, model={"arch": "preact-resnet18"}))
    res = _stage("train", tmp_path, "--device", "cpu")
    assert res.returncode == 2 and "models/warmup-s0.pt: built with arch = smallcnn" in res.stderr
    assert not (tmp_path / "models" / "full-0.pt").exists()


def test_missing_dataset_names_what_was_looked_for(tmp_path):
    raw = tiny_params(Path("unused.npz"), data={"name": "cifar10", "path": str(tmp_path / "c")})
    _write_params(tmp_path, raw)
    res = subprocess.run([sys.executable, str(ROOT / "stages" / "prepare.py")], cwd=tmp_path,
                         capture_output=True, text=True,
                         env={**os.environ, "no_proxy": "*", "NO_PROXY": "*"}, timeout=120)
    assert res.returncode == 2
    line = res.stderr.strip()
    assert "\n" not in line and "cifar10" in line and "cifar-10-binary.tar.gz" in line
    assert not (tmp_path / "data" / "prepared").exists()


def test_evaluation_tiers_of_a_robust_model(tmp_path, tiny_npz):
    # lr 0.01: at 0.02 the model ends at 56 %, 82 % or 100 % clean under three kernel settings
    # of one processor (chaotic, chance is 25 %); at 0.01 at 100 % under all three
    raw = tiny_params(tiny_npz, train={"epochs": 3, "lr": 0.01},
                      eval={"n_verdict": 8, "n_autoattack": 6, "autoattack_chunk": 3})
    ev = run_all(tmp_path, raw)["eval"]
    assert 0 <= ev["verdict_acc"] <= ev["clean_acc_verdict_subset"]
    assert ev["verdict_label"].startswith("APGD-CE+T (reference pyautoattack")
    assert "100 iterations, 3 targets" in ev["verdict_label"]  # 4 classes: 3 targets
    assert ev["autoattack_label"].startswith("AutoAttack standard (reference pyautoattack")
    assert ev["pgd_label"] == "PGD-5 (step eps/4, 1 restart)"
    assert (ev["n_verdict"], ev["n_autoattack"], ev["n_pgd"], ev["n_clean"]) == (8, 6, 64, 160)
    assert ev["pgd_acc"] <= ev["clean_acc"]
    assert list(ev["eps_curve"]) == ["0.5", "1", "2", "4"]
    assert ev["trust_gap"] == pytest.approx(ev["pgd_acc_verdict_subset"] - ev["verdict_acc"])
    # checks without a threshold are the evaluation's; the rest the report's (report.*)
    assert set(ev["checks"]) == {"autoattack_no_flags", "curve_decreasing", "verdict_complete"}
    assert "above_chance" not in eval_failed(ev, ReportConfig())
    import pandas as pd

    table = pd.read_parquet(tmp_path / "examples.parquet")
    assert len(table) == 160 and (table["index"] == np.arange(160)).all()
    assert [(table[c] >= 0).sum() for c in ("pgd", "verdict", "autoattack")] == [64, 8, 6]
    assert (table["pgd"] <= table["clean"]).all()  # robust implies clean-correct
    assert table["verdict"][:8].mean() == pytest.approx(ev["verdict_acc"])
    assert table["autoattack"][:6].mean() == pytest.approx(ev["autoattack_acc"])
    # the check continues the verdict tier: it can only break more
    assert (table["autoattack"][:6] <= table["verdict"][:6]).all()
    assert ev["autoattack_beyond_verdict"] == int((table["verdict"][:6]
                                                   - table["autoattack"][:6]).sum())


def test_cpu_kernels_and_threads_are_pinned_unless_the_user_chose(tmp_path):
    code = ("import os, robustprune, torch; print(torch.backends.cpu.get_cpu_capability(), "
            "os.environ['ONEDNN_MAX_CPU_ISA'], os.environ['MKL_CBWR'], torch.get_num_threads())")
    clean_env = {k: v for k, v in os.environ.items()
                 if k not in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR",
                              "ROBUSTPRUNE_THREADS", "OMP_NUM_THREADS")}

    def run(**extra: str) -> list[str]:
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**clean_env, **extra}, cwd=tmp_path, check=True)
        return res.stdout.split()

    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file() or " avx2 " not in cpuinfo.read_text():
        pytest.skip("the AVX2 pin applies to x86-64 processors with AVX2")
    assert run() == ["AVX2", "AVX2", "AVX2", "2"]
    assert run(ONEDNN_MAX_CPU_ISA="ALL", ROBUSTPRUNE_THREADS="1")[1:] == ["ALL", "AVX2", "1"]


def test_a_warmup_at_chance_says_why_in_steps(tmp_path, tiny_npz, capsys):
    """A few epochs of a small dataset are a few SGD steps: a warm-up that ends at chance
    says so, in steps, with a setting that gives enough, in its metrics and on stderr."""
    raw = tiny_params(tiny_npz, warmup={"epochs": 1, "batch_size": 128, "lr": 1e-5})
    params = params_from_dict(raw)
    data = tmp_path / "data.npz"
    pipeline.prepare(params, data)
    out = pipeline.warmup(params, 0, data, tmp_path / "w.pt", tmp_path / "w.json", None,
                          torch.device("cpu"), tmp_path / "ck")
    hint = out["hint"]
    assert "is at chance" in hint and "= 4 SGD steps" in hint and "-S warmup.epochs=" in hint
    assert f"warning: {hint}" in capsys.readouterr().err
    learned = pipeline.warmup(params_from_dict(tiny_params(tiny_npz)), 0, data,
                              tmp_path / "w2.pt", tmp_path / "w2.json", None,
                              torch.device("cpu"), tmp_path / "ck")
    assert "hint" not in learned
