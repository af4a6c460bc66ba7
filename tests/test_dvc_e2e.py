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
    (repo / "params.yaml").write_text(yaml.safe_dump(tiny_params(tiny_npz)))
    _run(["git", "init", "-q"], repo)
    _run(["git", "add", "-A"], repo)
    _run(["git", "commit", "-qm", "project"], repo)

    out = _run(["dvc", "repro"], repo)
    for stage in ("prepare", "warmup", "train", "evaluate@warmup", "evaluate@robust", "report"):
        assert f"Running stage '{stage}'" in out

    metrics = {p.name: json.loads(p.read_text()) for p in (repo / "metrics").glob("*.json")}
    assert set(metrics) == {"warmup.json", "train.json", "eval_warmup.json", "eval_robust.json",
                            "summary.json"}
    for name in ("eval_warmup.json", "eval_robust.json"):
        ev = metrics[name]
        assert 0 <= ev["autoattack_acc"] <= 1 and ev["n_autoattack"] == 8
        assert set(ev["checks"]) == {"pgd_le_clean", "autoattack_le_pgd", "large_eps_near_zero"}
    assert metrics["train.json"]["cost"]["passes"] > metrics["warmup.json"]["cost"]["passes"] > 0
    rows = metrics["summary.json"]["rows"]
    assert set(rows) == {"clean", "robust"} and rows["robust"]["speedup_passes"] == 1.0
    assert "| robust |" in (repo / "metrics" / "summary.md").read_text()
    assert (repo / "dvclive" / "train" / "plots" / "metrics" / "val_pgd_acc.tsv").is_file()

    assert "warmup" in _run(["dvc", "dag"], repo)
    again = _run(["dvc", "repro"], repo)
    assert "Running stage" not in again and "up to date" in again
    shown = json.loads(_run(["dvc", "metrics", "show", "--json"], repo))
    assert shown  # DVC itself reads every declared metrics file
    plots = _run(["dvc", "plots", "show", "--json"], repo)
    assert "val_pgd_acc" in plots

    _run(["git", "add", "-A"], repo)
    _run(["git", "commit", "-qm", "baseline run"], repo)
    exp = _run(["dvc", "exp", "run", "-S", "train.epochs=1"], repo)
    assert "Running stage 'train'" in exp and "Running stage 'warmup'" not in exp
    diff = _run(["dvc", "metrics", "diff", "--json"], repo)
    assert "metrics/train.json" in diff
