"""Stage train: robust training of one ``methods`` entry from the warm-up model."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robustprune.attacks import build_attack
from robustprune.data import Splits, load_splits
from robustprune.errors import InputError, require_file
from robustprune.objectives import Objective, build_objective
from robustprune.passes import passes_per_example
from robustprune.pipeline import CHECKPOINT_ROOT, STATE_FORMAT, file_digest, fingerprint
from robustprune.pipeline.checkpoints import load_trained
from robustprune.pipeline.fit import finish
from robustprune.schema import as_dict
from robustprune.selection.prune import ScoreTable
from robustprune.selection.registry import SELECTORS, build_miner, build_selector
from robustprune.training import Trainer


def train(params: Any, seed: int, method: str, data_path: Path, init_path: Path,
          model_out: Path, metrics_out: Path, live_dir: Path | None, device: torch.device,
          checkpoint_root: Path = CHECKPOINT_ROOT, scores_path: Path | None = None,
          scores_metrics: Path | None = None) -> dict[str, Any]:
    """Robust training of entry ``methods.<method>`` from the warm-up checkpoint.

    The scoring stage's table (``scores_path`` with its cost in ``scores_metrics``) is read
    only when the method's selector declares it needs ``scores``.
    """
    started = time.perf_counter()
    m = params.method(method)
    require_file(data_path, "prepare")
    require_file(init_path, "warmup")
    inputs: dict[str, Any] = {}
    digests = [file_digest(data_path), file_digest(init_path)]
    if "scores" in SELECTORS[m.selector].needs:
        if scores_path is None or scores_metrics is None:
            raise InputError(f"methods.{method}: selector {m.selector} needs the scoring "
                             "stage's table and metrics (--scores, --scores-metrics)")
        require_file(scores_path, "scoring")
        require_file(scores_metrics, "scoring")
        try:
            cost = json.loads(scores_metrics.read_text())["cost"]
        except (ValueError, KeyError, TypeError):
            raise InputError(f"{scores_metrics}: not the scoring stage's metrics (no cost); "
                             "rerun the scoring stage") from None
        inputs["scores"] = ScoreTable(scores_path, cost)
        digests.append(file_digest(scores_path))
    splits = load_splits(data_path)
    if SELECTORS[m.selector].needs_val and len(splits.y_val) == 0:
        raise InputError(f"methods.{method}: selector {m.selector} selects against the "
                         f"validation split, but {data_path} has none (data.val_size = 0)")
    model, spec = load_trained(init_path, params, splits)
    selector = build_selector(m.selector, m.fraction, seed, m.selector_options, inputs)
    key = fingerprint("train", STATE_FORMAT, seed, m, params.objective, params.train, params.scale,
                      params.attack, *digests)
    attack, objective = build_attack(m.attack), build_objective(params.objective)
    budget = full_epoch = None
    if m.budget:
        full_epoch = round(full_epoch_passes(params, model, objective, splits, device))
        budget = max(1, round(m.budget * params.train.epochs * full_epoch))
    trainer = Trainer(model=model, data=splits, optim=params.train, objective=objective,
                      attack=attack, selector=selector,
                      miner=build_miner(m.miner, m.miner_options), seed=seed, device=device,
                      checkpoint_dir=checkpoint_root / f"train-{key}", live_dir=live_dir,
                      budget_passes=budget, full_epoch_passes=full_epoch, scale=params.scale,
                      ema=m.ema)
    result = trainer.run()
    info = {"stage": "train", "seed": seed, "name": method,
            "settings": {**as_dict(m), "objective": as_dict(params.objective),
                         "attack": {"name": m.attack.name, "norm": attack.norm,
                                    "eps": attack.eps, "alpha": attack.alpha,
                                    "steps": attack.steps}},
            "train_examples": len(splits.y_train), "budget_passes": budget}
    return finish(trainer, result, model_out, metrics_out, spec, info, started)


def full_epoch_passes(params: Any, model: nn.Module, objective: Objective, splits: Splits,
                      device: torch.device) -> float:
    """Example-passes of one full-data epoch with this objective and the ``attack`` section's
    attack: ``methods.<m>.budget`` is a share of ``train.epochs`` of these. Counted on one step
    of two training examples, so it is exact for every objective and attack (full-data
    training spends the same passes on every example)."""
    x = splits.x_train[:2].to(device).float().div_(255.0)
    y = splits.y_train[:2].to(device)
    model.to(device)
    per_example = passes_per_example(model, objective, build_attack(params.attack), x, y)
    return per_example * len(splits.y_train)
