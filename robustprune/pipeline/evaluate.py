"""Stage evaluate: a saved model on the test split, every tier, per example."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robustprune.atomic import atomic_write, atomic_write_json
from robustprune.data import load_splits
from robustprune.data.corrupted import load_corrupted
from robustprune.errors import InputError, require_file
from robustprune.evaluation import corruption_eval, evaluate_model
from robustprune.pipeline import CHECKPOINT_ROOT, STATE_FORMAT, file_digest, fingerprint
from robustprune.pipeline.checkpoints import load_for_data


def evaluate(params: Any, seed: int, data_path: Path, model_path: Path, metrics_out: Path,
             examples_out: Path | None, device: torch.device,
             checkpoint_root: Path = CHECKPOINT_ROOT,
             corrupted_path: Path | None = None) -> dict[str, Any]:
    """Every evaluation tier on the test split: metrics JSON plus the per-example table; with
    ``corrupted_path`` also accuracy on the common-corruption test set.

    The reference AutoAttack resumes chunk by chunk from a state directory keyed by the model,
    the data and the evaluation params, removed once the outputs are written.
    """
    import pandas as pd

    started = time.perf_counter()
    require_file(data_path, "prepare")
    require_file(model_path, "warmup or train")
    splits = load_splits(data_path)
    cset = None if corrupted_path is None else load_corrupted(corrupted_path)
    if cset is not None and (cset.x.shape[3:] != tuple(splits.x_test.shape[1:]) or not
                             np.array_equal(cset.y, splits.y_test.numpy()[:len(cset.y)])):
        raise InputError(f"{corrupted_path}: not made from the test split of {data_path} "
                         "(rerun the corrupt stage)")
    model = load_for_data(model_path, splits)
    key = fingerprint("evaluate", STATE_FORMAT, seed, params.eval, params.attack.norm,
                      params.attack.eps, file_digest(data_path), file_digest(model_path))
    state_dir = checkpoint_root / f"evaluate-{key}"
    metrics, cols = evaluate_model(model, splits.x_test, splits.y_test, params.eval,
                                   norm=params.attack.norm, eps=params.attack.eps,
                                   num_classes=splits.num_classes, seed=seed, device=device,
                                   state_dir=state_dir)
    if cset is not None:
        cm, counts = corruption_eval(model, cset.x, cset.y, cset.names, cset.severities,
                                     params.eval.batch_size, device)
        metrics["seconds"]["corruption"] = cm.pop("corruption_seconds")
        metrics.update(cm, corruption_source=cset.source,
                       n_corrupted_copies=len(cset.names) * len(cset.severities))
        cols["corruption"] = np.full(len(splits.y_test), -1, dtype=np.int16)
        cols["corruption"][:len(counts)] = counts
    metrics = {"model": str(model_path), "seed": seed, **metrics,
               "runtime": runtime_info(device),
               "stage_seconds": round(time.perf_counter() - started, 2)}
    if examples_out is not None:
        table = pd.DataFrame({"index": np.arange(len(splits.y_test)), **cols})
        atomic_write(examples_out, lambda tmp: table.to_parquet(tmp, index=False))
    atomic_write_json(metrics_out, metrics)
    shutil.rmtree(state_dir, ignore_errors=True)
    return metrics


def runtime_info(device: torch.device) -> dict[str, Any]:
    """What a figure was computed on: the things that can change float results between
    machines (kernel ISA, thread count, library versions), recorded beside the figures."""
    import os
    import platform

    from robustprune.cpu_kernels import PINNED

    info: dict[str, Any] = {"torch": torch.__version__, "device": str(device),
                            "threads": torch.get_num_threads(),
                            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                            "machine": platform.machine(),
                            **{k.lower(): os.environ.get(k, "") for k in PINNED}}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
