"""Stage warmup: clean training from a seeded initialisation (also the clean baseline)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch

from robustprune import distributed
from robustprune.atomic import atomic_torch_save
from robustprune.attacks import build_attack
from robustprune.data import load_splits
from robustprune.errors import require_file
from robustprune.models import build_model
from robustprune.objectives import Objective
from robustprune.pipeline import CHECKPOINT_ROOT, STATE_FORMAT, file_digest, fingerprint
from robustprune.pipeline.checkpoints import check_model_fits, spec_for
from robustprune.pipeline.fit import AT_CHANCE_MARGIN, finish, learning_hint
from robustprune.selection.base import BatchMiner
from robustprune.selection.full import Full
from robustprune.selection.scoring import ForgettingTracker
from robustprune.training import Trainer


def warmup(params: Any, seed: int, data_path: Path, model_out: Path, metrics_out: Path,
           live_dir: Path | None, device: torch.device,
           checkpoint_root: Path = CHECKPOINT_ROOT,
           forgetting_out: Path | None = None) -> dict[str, Any]:
    """W epochs of clean training from a seeded initialisation (W = 0 saves the init).

    Also records per-example forgetting events (for the selection-scoring stage)."""
    started = time.perf_counter()
    require_file(data_path, "prepare")
    splits = load_splits(data_path)
    check_model_fits(params, splits)
    spec = spec_for(params, splits)
    torch.manual_seed(seed)
    model = build_model(**spec)
    key = fingerprint("warmup", STATE_FORMAT, seed, params.model, params.warmup, params.scale,
                      params.attack.eps, params.attack.norm, file_digest(data_path))
    forgetting = ForgettingTracker(len(splits.y_train))
    trainer = Trainer(model=model, data=splits, optim=params.warmup, objective=Objective(),
                      attack=build_attack(params.attack), selector=Full(), miner=BatchMiner(),
                      seed=seed, device=device, checkpoint_dir=checkpoint_root / f"warmup-{key}",
                      live_dir=live_dir, observers=[forgetting], scale=params.scale)
    result = trainer.run()
    if forgetting_out is not None and distributed.world().main:
        atomic_torch_save(forgetting.counts(), forgetting_out)
    info: dict[str, Any] = {"stage": "warmup", "seed": seed, "objective": "clean",
                            "train_examples": len(splits.y_train)}
    hint = learning_hint("warm-up", "warmup", result, splits, params.warmup.epochs,
                         params.warmup.batch_size, AT_CHANCE_MARGIN)
    if hint is not None:
        info["hint"] = hint
        if distributed.world().main:
            print(f"warning: {hint}", file=sys.stderr, flush=True)
    return finish(trainer, result, model_out, metrics_out, spec, info, started)
