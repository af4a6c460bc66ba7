"""Reading the report's inputs: each run's training and evaluation metrics and its
per-example table, and the check that the tables are pairable.

Every input is checked on the way in and a missing or damaged one is a one-line
:class:`~robustprune.errors.InputError` naming the stage that makes it, so the report fails
before computing anything rather than half-way through with a ``KeyError``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from robustprune.errors import InputError, require_file

Examples = dict[str, np.ndarray]
"""One model's per-example table, column by column (``clean``, ``pgd``, optionally
``verdict``, ``autoattack``, ``corruption``, ``label``, ``index``); a tier evaluated on the first n
examples holds −1 beyond them."""


class CleanRun(TypedDict):
    """The clean-trained (warm-up) model of one seed: its evaluation and per-example table."""

    eval: dict[str, Any]
    examples: Examples


class Run(CleanRun):
    """One trained run (method × seed): what training recorded, its evaluation and its table."""

    train: dict[str, Any]


Runs = dict[str, dict[int, Run]]
"""Per method, its runs by seed."""
Clean = dict[int, CleanRun]
"""Per seed, the clean-trained model (absent for seeds where it was not evaluated)."""


def read_json(path: Path, made_by: str) -> dict[str, Any]:
    """A metrics file, or a one-line error naming ``made_by`` (the stage to rerun)."""
    require_file(path, made_by)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        raise InputError(f"{path}: not valid JSON; rerun the {made_by} stage") from None


def read_examples(path: Path, made_by: str) -> Examples:
    """A per-example parquet table as numpy columns; it must hold ``clean`` and ``pgd``."""
    import pandas as pd

    require_file(path, made_by)
    try:
        table = pd.read_parquet(path)
    except Exception:  # pyarrow raises several kinds for a damaged file
        raise InputError(f"{path}: not a readable parquet table; rerun {made_by}") from None
    missing = {"clean", "pgd"} - set(table.columns)
    if missing:
        raise InputError(f"{path}: lacks column {sorted(missing)[0]}; rerun {made_by}")
    return {c: table[c].to_numpy() for c in table.columns}


def upgraded(ev: dict[str, Any], table: Examples) -> tuple[dict[str, Any], Examples]:
    """An evaluation made before the verdict tier existed had the standard AutoAttack as its
    only reference tier: read it as the verdict tier (it runs APGD-CE + APGD-T first and can
    only break more), under its own label, so older per-example tables can be re-analysed
    with today's statistics without attacking again."""
    if "verdict" not in table and "autoattack" in table:
        table = {**table, "verdict": table["autoattack"]}
    if "n_verdict" not in ev and ev.get("n_autoattack"):
        ev = {**ev, "verdict_acc": ev["autoattack_acc"], "n_verdict": ev["n_autoattack"],
              "verdict_label": ev.get("autoattack_label")}
    return ev, table


def _evaluated(metrics: Path, table: Path, made_by: str) -> tuple[dict[str, Any], Examples]:
    return upgraded(read_json(metrics, made_by), read_examples(table, made_by))


def collect(params: Any, metrics_dir: Path, examples_dir: Path) -> tuple[Runs, Clean]:
    """Per method and seed: the training and evaluation metrics and the per-example table;
    and per seed, the clean-trained (warm-up) model's evaluation."""
    runs: Runs = {}
    for name in params.methods:
        runs[name] = {}
        for seed in params.seeds:
            key = f"{name}-{seed}"
            ev, table = _evaluated(metrics_dir / "eval" / f"{key}.json",
                                   examples_dir / f"{key}.parquet", f"publish@{key}")
            runs[name][seed] = {
                "train": read_json(metrics_dir / "train" / f"{key}.json", f"publish@{key}"),
                "eval": ev, "examples": table}
    clean: Clean = {}
    for seed in params.seeds:
        path = metrics_dir / "eval_clean" / f"s{seed}.json"
        if path.exists():
            ev, table = _evaluated(path, examples_dir / f"clean-s{seed}.parquet",
                                   f"publish_clean@{seed}")
            clean[seed] = {"eval": ev, "examples": table}
    return runs, clean


def check_pairing(runs: Runs, clean: Clean, baseline: str, seeds: list[int]) -> None:
    """Paired comparisons zip per-example tables row by row: every table of a seed must hold
    the same test examples in the same order as the baseline's (same labels on the rows both
    have), else a Δ would pair different examples and look precise."""
    for seed in seeds:
        ref = runs[baseline][seed]["examples"]
        others = [(f"{n}-{seed}", runs[n][seed]["examples"]) for n in runs if n != baseline]
        if seed in clean:
            others.append((f"clean-s{seed}", clean[seed]["examples"]))
        for key, table in others:
            for col in ("label", "index"):
                if col not in ref or col not in table:
                    continue
                n = min(len(ref[col]), len(table[col]))
                bad = np.flatnonzero(np.asarray(ref[col][:n]) != np.asarray(table[col][:n]))
                if len(bad):
                    raise InputError(
                        f"per-example table {key}: its {col} differs from {baseline}-{seed}'s "
                        f"at row {int(bad[0])} ({table[col][bad[0]]} vs {ref[col][bad[0]]}): "
                        f"the two were evaluated on different test examples; rerun "
                        f"evaluate for both on the same data")
