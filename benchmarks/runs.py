"""The benchmarks' shared run machinery: one (params, method, seed) run of the pipeline's own
stage functions in a work directory, resumable at two levels (finished runs are the caller's to
skip; an interrupted one resumes from its epoch checkpoint in ``<work>/checkpoints``).

Work files: ``dataset.npz``; per seed the warm-up ``warmup-s<seed>.pt`` (shared by every run of
the seed) and the scores ``scores-<objective>-s<seed>.parquet``; per run
``<objective>-e<epochs>-<method>-s<seed>.{pt,parquet}`` with ``train-``/``eval-`` JSONs; the
corrupted test sets ``corrupted-n<n>-s<seed>.npz``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from robustprune.config import Params
from robustprune.pipeline import api as pipeline
from robustprune.report.load import read_examples
from robustprune.selection.registry import SELECTORS


def corrupted_set(params: Params, work: Path, n: int) -> Path | None:
    """The common-corruption test set of the first ``n`` test examples (made once, seeded by
    ``corruptions.seed``); None for ``n`` 0."""
    if n == 0:
        return None
    data = work / "dataset.npz"
    if not data.is_file():
        pipeline.prepare(params, data)
    path = work / f"corrupted-n{n}-s{params.corruptions.seed}.npz"
    if not path.is_file():
        raw = dataclasses.replace(params, corruptions=dataclasses.replace(params.corruptions, n=n))
        pipeline.corrupt(raw, data, path, path.with_suffix(".json"))
    return path


def _warm(params: Params, seed: int, work: Path, device: torch.device) -> tuple[Path, Path]:
    """The seed's warm-up model (trained once, shared by every run of the seed)."""
    data = work / "dataset.npz"
    if not data.is_file():
        pipeline.prepare(params, data)
    warm, forgetting = work / f"warmup-s{seed}.pt", work / f"forgetting-s{seed}.pt"
    if not warm.is_file():
        pipeline.warmup(params, seed, data, warm, work / f"warmup-s{seed}.json", None, device,
                        work / "checkpoints", forgetting_out=forgetting)
    return warm, forgetting


def clean_trained(params: Params, seed: int, work: Path, device: torch.device,
                  corrupted: Path | None) -> dict[str, Any]:
    """The warm-up (clean-trained) model's evaluation, the report's ``clean`` row and mCE
    reference: PGD-20 and, with ``corrupted``, the corruptions (no reference attacks)."""
    warm, _ = _warm(params, seed, work, device)
    tag = f"warmup-s{seed}" + (f"-{corrupted.stem}" if corrupted else "")
    out, examples = work / f"eval-{tag}.json", work / f"{tag}.parquet"
    if not (out.is_file() and examples.is_file()):
        quiet = dataclasses.replace(params, eval=dataclasses.replace(
            params.eval, n_verdict=0, n_autoattack=0))
        pipeline.evaluate(quiet, seed, work / "dataset.npz", warm, out, examples, device,
                          work / "checkpoints", corrupted_path=corrupted)
    return {"eval": json.loads(out.read_text()),
            "examples": read_examples(examples, "benchmarks/runs.py")}


def run_one(params: Params, method: str, seed: int, work: Path,
            device: torch.device, corrupted: Path | None = None) -> dict[str, Any]:
    """Warm-up (shared by every run of the seed), scoring when the selector needs it, training
    and evaluation (with ``corrupted``, also on the corruptions); returns the run's figures
    and its per-epoch validation curve."""
    ck = work / "checkpoints"
    data = work / "dataset.npz"
    warm, forgetting = _warm(params, seed, work, device)
    obj = params.objective.name
    scores = work / f"scores-{obj}-s{seed}.parquet"
    scores_json = scores.with_suffix(".json")
    if "scores" in SELECTORS[params.method(method).selector].needs and not scores.is_file():
        pipeline.scoring(params, seed, data, warm, forgetting, scores, scores_json, device)
    tag = f"{obj}-e{params.train.epochs}-{method}-s{seed}"
    model, train_json = work / f"{tag}.pt", work / f"train-{tag}.json"
    eval_json = work / f"eval-{tag}.json"
    tr = pipeline.train(params, seed, method, data, warm, model, train_json, None, device, ck,
                        scores_path=scores, scores_metrics=scores_json)
    examples = work / f"{tag}.parquet"
    ev = pipeline.evaluate(params, seed, data, model, eval_json, examples, device, ck,
                           corrupted_path=corrupted)
    return _result(params, method, seed, tr, ev, examples, device, corrupted)


def reevaluate(result: dict[str, Any], params: Params, work: Path, device: torch.device,
               corrupted: Path | None = None) -> dict[str, Any]:
    """Re-evaluate a finished run's model: with the reference AutoAttack on the first
    ``params.eval.n_autoattack`` test examples, and on ``corrupted`` (else on the corruptions
    it had). The other tiers are recomputed with the same seed and must give the same figures
    (evaluation is deterministic on one machine)."""
    tag = Path(result["examples"]).stem
    examples = work / f"{tag}.parquet"
    if corrupted is None and result.get("corrupted"):
        corrupted = Path(result["corrupted"])
    ev = pipeline.evaluate(params, result["seed"], work / "dataset.npz", work / f"{tag}.pt",
                           work / f"eval-{tag}.json", examples, device, work / "checkpoints",
                           corrupted_path=corrupted)
    if ev["pgd_acc"] != result["pgd_acc"]:
        raise SystemExit(f"{tag}: PGD-20 changed on re-evaluation ({result['pgd_acc']} -> "
                         f"{ev['pgd_acc']}); the model or the machine differs from the run's")
    tr = json.loads((work / f"train-{tag}.json").read_text())
    return _result(params, result["method"], result["seed"], tr, ev, examples, device,
                   corrupted)


def _result(params: Params, method: str, seed: int, tr: dict[str, Any], ev: dict[str, Any],
            examples: Path, device: torch.device,
            corrupted: Path | None = None) -> dict[str, Any]:
    obj = params.objective.name
    return {"corrupted": str(corrupted) if corrupted else None,
            "corruption_acc": ev.get("corruption_acc"),
            "objective": obj, "epochs": params.train.epochs, "method": method, "seed": seed,
            "settings": tr["settings"], "clean_acc": ev["clean_acc"], "pgd_acc": ev["pgd_acc"],
            "autoattack_acc": ev.get("autoattack_acc"), "n_autoattack": ev.get("n_autoattack", 0),
            "n_pgd": ev["n_pgd"], "passes": tr["cost"]["passes"],
            "train_seconds": tr["cost"]["seconds"], "examples": str(examples),
            "val_pgd_acc": tr["final"]["val_pgd_acc"],
            "curve": [{k: row[k] for k in ("epoch", "cum_passes", "cum_seconds", "val_pgd_acc",
                                           "val_clean_acc") if k in row}
                      for row in tr["history"]],
            "runtime": pipeline.runtime_info(device)}
