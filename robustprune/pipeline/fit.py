"""What the two training stages (warm-up and robust training) share after the loop: the
at-chance hint and writing the model and metrics."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from robustprune import distributed
from robustprune.atomic import atomic_write_json
from robustprune.data import Splits
from robustprune.models import save_model
from robustprune.training import Trainer, TrainResult

AT_CHANCE_MARGIN = 0.1
"""The hint fires when validation clean accuracy is within this of the largest class's share.
A fixed hint threshold, not the report's ``report.chance_margin``: a report threshold must not
rerun training."""


def learning_hint(stage: str, section: str, result: TrainResult, splits: Splits,
                  epochs: int, batch_size: int, margin: float) -> str | None:
    """A one-line explanation when a run ends with validation clean accuracy at chance
    (within ``margin`` of the majority class's share), said in SGD steps: on a small dataset
    a few epochs are a few dozen steps, too few to learn, and the epoch count alone hides it.
    None when the run learned (or validated nothing)."""
    final = result.final or (result.history[-1] if result.history else {})
    if "val_clean_acc" not in final or len(splits.y_val) == 0:
        return None
    majority = float(np.bincount(splits.y_val.numpy()).max()) / len(splits.y_val)
    acc = float(final["val_clean_acc"])
    if acc >= majority + margin:
        return None
    n = len(splits.y_train)
    steps = epochs * -(-n // batch_size)
    want = max(2 * epochs, -(-300 * batch_size // max(n, 1)))
    return (f"{stage}: validation clean accuracy {100 * acc:.1f} % is at chance (largest "
            f"class {100 * majority:.1f} %) after {epochs} epochs of {n} examples at batch "
            f"{batch_size} = {steps} SGD steps, too few to learn; give it ≥ 300 steps, e.g. "
            f"-S {section}.epochs={want} or a smaller {section}.batch_size")


def finish(trainer: Trainer, result: TrainResult, model_out: Path, metrics_out: Path,
            spec: dict[str, Any], info: dict[str, Any], started: float) -> dict[str, Any]:
    """Write the model and metrics (rank 0 of a torchrun run; the ranks hold the same model)
    and drop the resume state."""
    if result.rolled_back_to is not None:
        info = {**info, "rolled_back_to_epoch": result.rolled_back_to}
    metrics = {**info, "epochs": len(result.history),
               "final": {k: v for k, v in result.final.items() if k != "epoch"},
               "history": [{k: round(v, 6) for k, v in row.items()} for row in result.history],
               "cost": result.cost, "stage_seconds": round(time.perf_counter() - started, 2)}
    if trainer.runtime["processes"] > 1 or any(
            trainer.runtime[k] != v for k, v in (("precision", "fp32"),
                                                  ("channels_last", False), ("compile", False))):
        metrics["runtime"] = trainer.runtime
    if distributed.world().main:
        save_model(trainer.evaluated, spec, model_out, extra={"stage": info["stage"]})
        atomic_write_json(metrics_out, metrics)
    trainer.discard_checkpoint()
    return metrics
