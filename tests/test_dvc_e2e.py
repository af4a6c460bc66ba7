"""End to end: the project copied into a fresh git repo, `dvc repro` on tiny params."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT, tiny_params

PROJECT = ("dvc.yaml", ".dvcignore", ".gitignore", "stages", "robustprune", ".dvc/config",
           ".dvc/.gitignore")
METHODS = {"full": {}, "random-online": {"method": "random-online", "fraction": 0.5},
           "stack": {"method": "score", "fraction": 0.5, "mining": "bullettrain",
                     "attack": "fgsm-rs", "alpha": 0.125}}


def _run(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout}\n{res.stderr}"
    return res.stdout + res.stderr


def test_dvc_repro_then_cached_then_experiment(tmp_path, tiny_npz):
    repo = tmp_path / "repo"
    for rel in PROJECT:
        src, dst = ROOT / rel, repo / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    raw = tiny_params(tiny_npz, methods=METHODS, eval={"n_autoattack": 4})
    (repo / "params.yaml").write_text(yaml.safe_dump(raw))
    _run(["git", "init", "-q"], repo)
    _run(["git", "add", "-A"], repo)
    _run(["git", "commit", "-qm", "project"], repo)

    out = _run(["dvc", "repro"], repo)
    stages = ["prepare", "warmup@0", "score@0", "evaluate_clean@0", "report"]
    stages += [f"{s}@{m}-0" for s in ("train", "evaluate") for m in METHODS]
    for stage in stages:
        assert f"Running stage '{stage}'" in out

    metrics = repo / "metrics"
    for name in ("warmup/s0.json", "score/s0.json", "eval_clean/s0.json", "summary.json"):
        assert json.loads((metrics / name).read_text())
    for m in METHODS:
        ev = json.loads((metrics / "eval" / f"{m}-0.json").read_text())
        assert 0 <= ev["autoattack_acc"] <= 1 and ev["n_autoattack"] == 4
        assert "above_chance" in ev["checks"] and "pgd_trusted" in ev["checks"]
        assert (repo / "data" / "examples" / f"{m}-0.parquet").is_file()
        train = json.loads((metrics / "train" / f"{m}-0.json").read_text())
        assert train["cost"]["passes"] > 0 and train["seed"] == 0
    summary = json.loads((metrics / "summary.json").read_text())
    rows = summary["methods"]
    assert set(rows) == set(METHODS) and rows["full"]["speedup_passes"] == 1.0
    assert rows["random-online"]["speedup_passes"] == 2.0  # exactly half the examples
    stack_cost = json.loads((metrics / "train" / "stack-0.json").read_text())["cost"]
    score_cost = json.loads((metrics / "score" / "s0.json").read_text())["cost"]
    assert stack_cost["select_forward"] >= score_cost["forward_passes"] > 0  # scoring is paid
    assert rows["stack"]["speedup_passes"] > 1.0
    assert rows["stack"]["attack"] == "fgsm-rs" and rows["stack"]["mining"] == "bullettrain"
    assert summary["pareto_front"] and summary["clean_trained"]["0"]["n_autoattack"] == 4
    assert rows["random-online"]["delta_calibrated"]["n"] == 64  # eval.n_pgd
    table = (metrics / "summary.md").read_text()
    assert "| stack | score | 0.5 | bullettrain | fgsm-rs |" in table
    assert (metrics / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (repo / "dvclive" / "train" / "stack-0" / "plots" / "metrics" /
            "bt_robust_share.tsv").is_file()

    assert "score" in _run(["dvc", "dag"], repo)
    again = _run(["dvc", "repro"], repo)
    assert "Running stage" not in again and "up to date" in again
    assert json.loads(_run(["dvc", "metrics", "show", "--json"], repo))
    assert "val_pgd_acc" in _run(["dvc", "plots", "show", "--json"], repo)

    _run(["git", "add", "-A"], repo)
    _run(["git", "commit", "-qm", "baseline run"], repo)
    exp = _run(["dvc", "exp", "run", "-S", "methods.random-online.fraction=0.25"], repo)
    assert "Running stage 'train@random-online-0'" in exp
    for untouched in ("warmup@0", "score@0", "train@full-0", "train@stack-0", "evaluate@full-0"):
        assert f"Running stage '{untouched}'" not in exp
    assert "Running stage 'report'" in exp
    assert "metrics/train/random-online-0.json" in _run(["dvc", "metrics", "diff", "--json"],
                                                        repo)
