"""Shared fixtures: a tiny learnable synthetic dataset in the user-npz format, and params."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("dvc.yaml", ".dvcignore", ".gitignore", "stages", "robustprune", "plots",
           ".dvc/config", ".dvc/.gitignore")


def copy_project(dest: Path) -> Path:
    """The pipeline's code and DVC files (no params, no outputs) copied to ``dest``."""
    for rel in PROJECT:
        src, dst = ROOT / rel, dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    return dest


def make_tiny_npz(path: Path, n_train: int = 480, n_test: int = 160, side: int = 16,
                  seed: int = 0) -> Path:
    """Four classes: a bright square in one quadrant over noise (learnable in one epoch)."""
    rng = np.random.default_rng(seed)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(n) % 4
        x = rng.integers(0, 90, size=(n, side, side, 1))
        h = side // 2
        for i, c in enumerate(y):
            r, q = divmod(int(c), 2)
            x[i, r * h:(r + 1) * h, q * h:(q + 1) * h, 0] += 150
        return x.clip(0, 255).astype(np.uint8), y.astype(np.int64)

    x, y = draw(n_train)
    xt, yt = draw(n_test)
    np.savez(path, x=x, y=y, x_test=xt, y_test=yt)
    return path


@pytest.fixture(scope="session")
def tiny_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_npz(tmp_path_factory.mktemp("data") / "tiny.npz")


def tiny_params(npz: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    """Params for a few-second run on the tiny dataset; ``sections`` override per section."""
    base: dict[str, Any] = {
        "seeds": [0],
        "data": {"name": "npz", "path": str(npz), "val_size": 80, "train_size": 0},
        "model": {"arch": "smallcnn"},
        "attack": {"norm": "linf", "eps": 0.1, "name": "pgd", "alpha": 0.03, "steps": 3},
        "objective": {"name": "pgd-at", "beta": 6.0, "jsd_lambda": 12.0, "mix_severity": 3,
                      "mix_width": 3, "mix_depth": -1, "mix_alpha": 1.0, "mix_views": 2},
        "warmup": {"epochs": 2, "batch_size": 32, "lr": 0.05, "schedule": "constant",
                   "val_n": 40},
        "train": {"epochs": 2, "batch_size": 32, "lr": 0.05, "schedule": "constant", "val_n": 40},
        "methods": {"full": {}},
        # the reference attacks cost seconds even here (Square's 5 000 queries): tests that
        # exercise them ask for them
        "eval": {"n_clean": 0, "n_pgd": 64, "pgd_steps": 5, "n_verdict": 0, "n_autoattack": 0,
                 "n_curve": 32, "batch_size": 64},
        "corruptions": {"source": "generated", "n": 24, "seed": 0, "path": ""},
        "report": {"pareto_axis": "adversarial", "chance_margin": 0.1},
        "scale": {"nproc": 1},  # dvc.yaml's commands read it
    }
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values} if isinstance(values, dict) else values
    return base
