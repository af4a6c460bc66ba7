"""One function per pipeline stage: what ``stages/*.py`` call after parsing arguments.

Each function validates everything it can (params, input files, compatibility of the inputs)
before any compute, computes, then writes its outputs atomically. They are plain functions of
(params, paths, device) so tests can run a stage in-process.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robustprune.attacks import build_attack
from robustprune.config import Params, as_dict, fingerprint
from robustprune.data import Splits, load_raw, load_splits, make_splits, save_splits
from robustprune.evaluation import EvalPlan, evaluate_model
from robustprune.io import atomic_write_json
from robustprune.models import (
    build_model,
    model_from_payload,
    model_spec,
    read_model_file,
    save_model,
)
from robustprune.objectives import Objective, build_objective
from robustprune.selection import MINERS, build_selector
from robustprune.training import Trainer, TrainResult, file_digest

CHECKPOINT_ROOT = Path(".cache/checkpoints")
"""Resume state lives outside DVC's outputs (which DVC deletes before a rerun), keyed by a hash
of the stage's params and input files, so a stale checkpoint can never be resumed."""


class InputError(ValueError):
    """A missing or incompatible input file; one line, names the file."""


def require_file(path: Path, made_by: str) -> None:
    if not path.is_file():
        raise InputError(f"{path}: not found; it is made by the {made_by} stage (dvc repro)")


def prepare(params: Params, out: Path, raw_root: Path = Path("data/raw")) -> dict[str, Any]:
    """Read the raw dataset, split off validation, write the canonical ``.npz``."""
    d = params.data
    raw = load_raw(d.name, d.path, raw_root=raw_root)
    splits = make_splits(raw, d.name, d.val_size, d.train_size, params.seed)
    _check_model_fits(params, splits)
    save_splits(splits, out)
    return {"dataset": d.name, "source": raw.source, "train": len(splits.y_train),
            "val": len(splits.y_val), "test": len(splits.y_test), "shape": list(splits.shape),
            "classes": list(splits.classes)}


def _check_model_fits(params: Params, splits: Splits) -> None:
    _, h, w = splits.shape
    if params.model.arch == "smallcnn" and min(h, w) < 14:
        raise InputError(f"model.arch = smallcnn needs images >= 14 px; {splits.name} is {h}x{w}")


def _spec(params: Params, splits: Splits) -> dict[str, Any]:
    c, h, _ = splits.shape
    return model_spec(params.model.arch, in_channels=c, num_classes=splits.num_classes,
                      image_size=h, mean=splits.mean, std=splits.std,
                      wrn_depth=params.model.wrn_depth, wrn_width=params.model.wrn_width)


def _finish(trainer: Trainer, result: TrainResult, model_out: Path, metrics_out: Path,
            spec: dict[str, Any], info: dict[str, Any], started: float) -> dict[str, Any]:
    metrics = {**info, "epochs": len(result.history),
               "final": {k: v for k, v in result.final.items() if k != "epoch"},
               "cost": result.cost, "stage_seconds": round(time.perf_counter() - started, 2)}
    save_model(trainer.model, spec, model_out, extra={"stage": info["stage"]})
    atomic_write_json(metrics_out, metrics)
    trainer.discard_checkpoint()
    return metrics


def warmup(params: Params, data_path: Path, model_out: Path, metrics_out: Path,
           live_dir: Path | None, device: torch.device,
           checkpoint_root: Path = CHECKPOINT_ROOT) -> dict[str, Any]:
    """W epochs of clean training from a seeded initialisation (W = 0 saves the init)."""
    started = time.perf_counter()
    require_file(data_path, "prepare")
    splits = load_splits(data_path)
    _check_model_fits(params, splits)
    spec = _spec(params, splits)
    torch.manual_seed(params.seed)
    model = build_model(**spec)
    key = fingerprint("warmup", params.seed, params.model, params.warmup, params.attack.eps,
                      params.attack.norm, file_digest(data_path))
    trainer = Trainer(model=model, data=splits, optim=params.warmup, objective=Objective(),
                      attack=build_attack(params.attack), selector=build_selector("full", 1, 0),
                      miner=MINERS["none"](), seed=params.seed, device=device,
                      checkpoint_dir=checkpoint_root / f"warmup-{key}", live_dir=live_dir)
    result = trainer.run()
    info = {"stage": "warmup", "objective": "clean", "train_examples": len(splits.y_train)}
    return _finish(trainer, result, model_out, metrics_out, spec, info, started)


def load_trained(path: Path, params: Params, splits: Splits) -> tuple[nn.Module, dict[str, Any]]:
    """A saved model, checked against the current params and data before any compute."""
    try:
        payload = read_model_file(path)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    spec = dict(payload.get("spec", {}))
    expected = _spec(params, splits)
    for key in ("arch", "in_channels", "num_classes", "image_size"):
        if spec.get(key) != expected[key]:
            raise InputError(f"{path}: built with {key} = {spec.get(key)} but the current "
                             f"params/data need {expected[key]}; rerun the warmup stage")
    try:
        return model_from_payload(payload, path), spec
    except ValueError as exc:
        raise InputError(str(exc)) from None


def train(params: Params, data_path: Path, init_path: Path, model_out: Path, metrics_out: Path,
          live_dir: Path | None, device: torch.device,
          checkpoint_root: Path = CHECKPOINT_ROOT) -> dict[str, Any]:
    """Robust training from the warm-up checkpoint with the configured selector."""
    started = time.perf_counter()
    require_file(data_path, "prepare")
    require_file(init_path, "warmup")
    splits = load_splits(data_path)
    model, spec = load_trained(init_path, params, splits)
    attack, objective = build_attack(params.attack), build_objective(params.objective)
    selector = build_selector(params.select.method, params.select.fraction, params.seed)
    key = fingerprint("train", params.seed, params.attack, params.objective, params.train,
                      params.select, file_digest(data_path), file_digest(init_path))
    trainer = Trainer(model=model, data=splits, optim=params.train, objective=objective,
                      attack=attack, selector=selector, miner=MINERS["none"](),
                      seed=params.seed, device=device,
                      checkpoint_dir=checkpoint_root / f"train-{key}", live_dir=live_dir)
    result = trainer.run()
    info = {"stage": "train", "method": params.select.method,
            "fraction": params.select.fraction, "objective": as_dict(params.objective),
            "attack": as_dict(params.attack), "train_examples": len(splits.y_train)}
    return _finish(trainer, result, model_out, metrics_out, spec, info, started)


def evaluate(params: Params, data_path: Path, model_path: Path, metrics_out: Path,
             device: torch.device) -> dict[str, Any]:
    """Clean / PGD / AutoAttack accuracy of a saved model on the test split."""
    started = time.perf_counter()
    require_file(data_path, "prepare")
    require_file(model_path, "warmup or train")
    splits = load_splits(data_path)
    model, _ = load_trained(model_path, params, splits)
    e = params.eval
    plan = EvalPlan(norm=params.attack.norm, eps=params.attack.eps,
                    num_classes=splits.num_classes, n_clean=e.n_clean, n_pgd=e.n_pgd,
                    pgd_steps=e.pgd_steps, pgd_restarts=e.pgd_restarts,
                    n_autoattack=e.n_autoattack, n_sanity=e.n_sanity,
                    sanity_factor=e.sanity_factor, batch_size=e.batch_size, seed=params.seed)
    metrics = {"model": str(model_path), **evaluate_model(model, splits.x_test, splits.y_test,
                                                          plan, device)}
    metrics["stage_seconds"] = round(time.perf_counter() - started, 2)
    atomic_write_json(metrics_out, metrics)
    return metrics
