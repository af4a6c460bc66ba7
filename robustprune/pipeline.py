"""One function per pipeline stage: what ``stages/*.py`` call after parsing arguments.

Each function validates everything it can (params, input files, compatibility of the inputs)
before any compute, computes, then writes its outputs atomically. They are plain functions of
(params, paths, device) so tests can run a stage in-process.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from robustprune import distributed
from robustprune.attacks import build_attack
from robustprune.config import Params, as_dict, fingerprint
from robustprune.cost import CostMeter, CountingModel
from robustprune.data import Splits, load_raw, load_splits, make_splits, save_splits
from robustprune.data.corrupted import (
    CIFAR_C,
    generate,
    load_corrupted,
    read_cifar_c,
    save_corrupted,
)
from robustprune.errors import InputError, require_file
from robustprune.evaluation import corruption_eval, evaluate_model
from robustprune.io import atomic_torch_save, atomic_write, atomic_write_json
from robustprune.models import (
    ARCHS,
    build_model,
    model_from_payload,
    model_spec,
    read_model_file,
    save_model,
)
from robustprune.objectives import Objective, build_objective
from robustprune.selection import (
    SELECTORS,
    BatchMiner,
    Full,
    ScoreTable,
    build_miner,
    build_selector,
)
from robustprune.selection.scoring import ForgettingTracker, adversarial_scores
from robustprune.training import Trainer, TrainResult, file_digest, passes_per_example

CHECKPOINT_ROOT = Path(".cache/checkpoints")
STATE_FORMAT = 4
"""Part of every resume key: bumped when the layout of the resume state or the meaning of a
setting changes, so a checkpoint written by older code is never resumed by newer code."""
"""Resume state lives outside DVC's outputs (which DVC deletes before a rerun), keyed by a hash
of the stage's params and input files, so a stale checkpoint can never be resumed."""


def prepare(params: Params, out: Path, raw_root: Path = Path("data/raw"),
            metrics_out: Path | None = None) -> dict[str, Any]:
    """Read the raw dataset, split off validation (and a test set when the dataset has none),
    write the canonical ``.npz``; returns the prepare metrics (sizes, where the test set came
    from)."""
    d = params.data
    raw = load_raw(d.name, d.path, raw_root=raw_root)
    splits = make_splits(raw, d.name, d.val_size, d.train_size, d.seed, test_size=d.test_size)
    info = {"dataset": d.name, "source": raw.source, "train": len(splits.y_train),
            "val": len(splits.y_val), "test": len(splits.y_test),
            "test_split": splits.test_source, "shape": list(splits.shape),
            "classes": list(splits.classes)}
    save_splits(splits, out)
    if metrics_out is not None:
        atomic_write_json(metrics_out, info)
    return info


def corrupt(params: Params, data_path: Path, out: Path, metrics_out: Path | None = None,
            raw_root: Path = Path("data/raw")) -> dict[str, Any]:
    """The corrupted test set: generated from the prepared test split (seeded), or read from
    an official CIFAR-C archive; checked against the test split's labels so the examples pair
    with the clean ones."""
    require_file(data_path, "prepare")
    c = params.corruptions
    splits = load_splits(data_path)
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    if c.source == "generated":
        cset, seconds = generate(splits.x_test.numpy(), splits.y_test.numpy(), c.n, c.seed)
    else:
        spec = CIFAR_C[c.source]
        cset = read_cifar_c(Path(c.path) if c.path else raw_root / c.source, spec, c.n)
        if not np.array_equal(cset.y, splits.y_test.numpy()[:len(cset.y)]):
            raise InputError(f"corruptions.source = {c.source}: its labels differ from the "
                             f"prepared test split's ({data_path}); prepare {spec.dataset} "
                             "with its official test set")
    if cset.x.shape[3:] != tuple(splits.x_test.shape[1:]):
        raise InputError(f"corrupted images are {cset.x.shape[3:]} but the test split's are "
                         f"{tuple(splits.x_test.shape[1:])} (C,H,W)")
    save_corrupted(cset, out)
    info = {"source": cset.source, "n": len(cset.y), "corruptions": list(cset.names),
            "severities": list(cset.severities), "seconds": seconds,
            "stage_seconds": round(time.perf_counter() - started, 2)}
    if metrics_out is not None:
        atomic_write_json(metrics_out, info)
    return info


def _check_model_fits(params: Params, splits: Splits) -> None:
    _, h, w = splits.shape
    need = ARCHS[params.model.arch].min_image_size
    if min(h, w) < need:
        raise InputError(f"model.arch = {params.model.arch} needs images >= {need} px; "
                         f"{splits.name} is {h}x{w}")


def _spec(params: Params, splits: Splits) -> dict[str, Any]:
    c, h, _ = splits.shape
    return model_spec(params.model.arch, in_channels=c, num_classes=splits.num_classes,
                      image_size=h, mean=splits.mean, std=splits.std,
                      wrn_depth=params.model.wrn_depth, wrn_width=params.model.wrn_width)


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


def _finish(trainer: Trainer, result: TrainResult, model_out: Path, metrics_out: Path,
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
        save_model(trainer.model, spec, model_out, extra={"stage": info["stage"]})
        atomic_write_json(metrics_out, metrics)
    trainer.discard_checkpoint()
    return metrics


def warmup(params: Params, seed: int, data_path: Path, model_out: Path, metrics_out: Path,
           live_dir: Path | None, device: torch.device,
           checkpoint_root: Path = CHECKPOINT_ROOT,
           forgetting_out: Path | None = None) -> dict[str, Any]:
    """W epochs of clean training from a seeded initialisation (W = 0 saves the init).

    Also records per-example forgetting events (for the selection-scoring stage)."""
    started = time.perf_counter()
    require_file(data_path, "prepare")
    splits = load_splits(data_path)
    _check_model_fits(params, splits)
    spec = _spec(params, splits)
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
                         params.warmup.batch_size, params.eval.chance_margin)
    if hint is not None:
        info["hint"] = hint
        if distributed.world().main:
            print(f"warning: {hint}", file=sys.stderr, flush=True)
    return _finish(trainer, result, model_out, metrics_out, spec, info, started)


def scoring(params: Params, seed: int, data_path: Path, init_path: Path, forgetting_path: Path,
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


def _read_model(path: Path, expected: dict[str, Any], keys: tuple[str, ...],
                what: str) -> tuple[nn.Module, dict[str, Any]]:
    """A saved model whose spec matches ``expected`` on ``keys``, before any compute."""
    try:
        payload = read_model_file(path)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    spec = dict(payload.get("spec", {}))
    for key in keys:
        if spec.get(key) != expected[key]:
            raise InputError(f"{path}: built with {key} = {spec.get(key)} but the current "
                             f"{what} need {expected[key]}; rerun the warmup stage")
    try:
        return model_from_payload(payload, path), spec
    except ValueError as exc:
        raise InputError(str(exc)) from None


def load_trained(path: Path, params: Params, splits: Splits) -> tuple[nn.Module, dict[str, Any]]:
    """A model to train further: it must be the current params' architecture for this data."""
    return _read_model(path, _spec(params, splits),
                       ("arch", "in_channels", "num_classes", "image_size"), "params/data")


def load_for_data(path: Path, splits: Splits) -> nn.Module:
    """A model to evaluate: any architecture, as long as it fits the data's images and classes
    (so evaluation reads no model params)."""
    c, h, _ = splits.shape
    expected = {"in_channels": c, "num_classes": splits.num_classes, "image_size": h}
    return _read_model(path, expected, tuple(expected), "data")[0]


def train(params: Params, seed: int, method: str, data_path: Path, init_path: Path,
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
                      budget_passes=budget, full_epoch_passes=full_epoch, scale=params.scale)
    result = trainer.run()
    info = {"stage": "train", "seed": seed, "name": method,
            "settings": {**as_dict(m), "objective": as_dict(params.objective),
                         "attack": {"name": m.attack.name, "norm": attack.norm,
                                    "eps": attack.eps, "alpha": attack.alpha,
                                    "steps": attack.steps}},
            "train_examples": len(splits.y_train), "budget_passes": budget}
    return _finish(trainer, result, model_out, metrics_out, spec, info, started)


def full_epoch_passes(params: Params, model: nn.Module, objective: Objective, splits: Splits,
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


def evaluate(params: Params, seed: int, data_path: Path, model_path: Path, metrics_out: Path,
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

    from robustprune.runtime import PINNED

    info: dict[str, Any] = {"torch": torch.__version__, "device": str(device),
                            "threads": torch.get_num_threads(),
                            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                            "machine": platform.machine(),
                            **{k.lower(): os.environ.get(k, "") for k in PINNED}}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
