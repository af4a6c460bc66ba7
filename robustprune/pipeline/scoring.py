"""Stage scoring: per-example selection scores from one attack of the training set."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from robustprune import distributed
from robustprune.atomic import atomic_write, atomic_write_json
from robustprune.attacks import build_attack
from robustprune.cost import CostMeter, CountingModel
from robustprune.data import load_splits
from robustprune.errors import InputError, require_file
from robustprune.objectives import build_objective
from robustprune.pipeline.checkpoints import load_trained
from robustprune.selection.scoring import adversarial_scores


def scoring(params: Any, seed: int, data_path: Path, init_path: Path, forgetting_path: Path,
          table_out: Path, metrics_out: Path, device: torch.device) -> dict[str, Any]:
    """Selection scoring: attack the training set once with the warm-up model and write
    per-example scores (adv_loss, el2n, grand, forgetting) with their cost."""
    import pandas as pd

    started = time.perf_counter()
    require_file(data_path, "prepare")
    require_file(init_path, "warmup")
    require_file(forgetting_path, "warmup")
    splits = load_splits(data_path)
    model, _ = load_trained(init_path, params, splits)
    forgetting = torch.load(forgetting_path, map_location="cpu", weights_only=True)
    if not isinstance(forgetting, torch.Tensor) or forgetting.shape != splits.y_train.shape:
        raise InputError(f"{forgetting_path}: does not match the training set; rerun warmup")
    model.to(device)
    meter = CostMeter(device)
    scores = adversarial_scores(CountingModel(model, meter), splits.x_train.to(device),
                                splits.y_train.to(device), build_objective(params.objective),
                                build_attack(params.attack), meter, 4 * params.train.batch_size,
                                seed=seed)
    table = pd.DataFrame({"index": range(len(splits.y_train)), "label": splits.y_train.numpy(),
                          **{k: v.numpy() for k, v in scores.items()},
                          "forgetting": forgetting.numpy()})
    world = distributed.world()
    cost = meter.merged().summary()  # every rank: a collective under torchrun
    metrics = {"stage": "scoring", "seed": seed, "examples": len(table), "cost": cost,
               "stage_seconds": round(time.perf_counter() - started, 2)}
    if world.distributed:
        metrics["runtime"] = {"processes": world.size}
    if world.main:
        atomic_write(table_out, lambda tmp: table.to_parquet(tmp, index=False))
        atomic_write_json(metrics_out, metrics)
    return metrics
