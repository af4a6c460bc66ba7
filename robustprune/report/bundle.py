"""The report's inputs in two git-tracked files, so its statistics can be re-analysed where
the stage outputs are gone.

Why: the models, the per-stage metrics and the per-example tables are DVC-cached outputs (so
warm-up, training and evaluation stay run-cacheable), and without a DVC remote they exist only
on the machine that ran the pipeline; a fresh clone has the report's tables but not what they
were computed from. The report therefore also writes what it read: every run's training and
evaluation metrics (``runs.json``) and the per-example columns the statistics use, all runs in
one table (``examples.parquet``; a few kB per run, int8 columns compressed). ``python
stages/report.py --reanalyse`` reads these instead of the stage outputs and gives the same
summary (tests/test_report.py checks it), with today's statistics and thresholds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from robustprune.atomic import atomic_write, atomic_write_json
from robustprune.errors import InputError, require_file
from robustprune.report.load import Clean, Examples, Runs

COLUMNS = ("index", "label", "clean", "clean_pred", "pgd", "verdict", "autoattack",
           "corruption")
"""The per-example columns the report reads (the rest of each table stays in the DVC cache)."""


def _key(name: str | None, seed: int) -> str:
    return f"clean-s{seed}" if name is None else f"{name}-{seed}"


def write(runs: Runs, clean: Clean, runs_out: Path, examples_out: Path) -> None:
    """Both bundle files, atomically."""
    import pandas as pd

    tables: list[tuple[str, Examples]] = []
    record: dict[str, Any] = {"runs": {}, "clean": {}}
    for name, by_seed in runs.items():
        for seed, run in by_seed.items():
            record["runs"].setdefault(name, {})[str(seed)] = {"train": run["train"],
                                                              "eval": run["eval"]}
            tables.append((_key(name, seed), run["examples"]))
    for seed, c in clean.items():
        record["clean"][str(seed)] = {"eval": c["eval"]}
        tables.append((_key(None, seed), c["examples"]))
    parts = []
    for key, table in tables:
        cols = {c: np.asarray(table[c]) for c in COLUMNS if c in table}
        n = len(next(iter(cols.values())))
        frame = pd.DataFrame({"run": np.full(n, key), **cols})
        parts.append(frame)
    joined = pd.concat(parts, ignore_index=True)
    joined["run"] = joined["run"].astype("category")
    for c in COLUMNS:  # absent in some tables: -1 (not evaluated), like a tier's tail
        if c in joined:
            joined[c] = joined[c].fillna(-1).astype(np.int16 if c in ("index", "clean_pred",
                                                                      "corruption", "label")
                                                    else np.int8)
    atomic_write(examples_out, lambda tmp: joined.to_parquet(tmp, index=False,
                                                             compression="zstd"))
    atomic_write_json(runs_out, record)


def read(params: Any, runs_path: Path, examples_path: Path) -> tuple[Runs, Clean]:
    """The report's inputs from a bundle, for the methods and seeds in ``params``."""
    import pandas as pd

    require_file(runs_path, "report")
    require_file(examples_path, "report")
    record = json.loads(runs_path.read_text())
    table = pd.read_parquet(examples_path)
    have = set(table.columns)
    by_run = {str(k): g for k, g in table.groupby("run", observed=True)}

    def examples(key: str) -> Examples:
        if key not in by_run:
            raise InputError(f"{examples_path}: has no rows for {key}; it was written by a "
                             "report over other methods or seeds")
        g = by_run[key]
        # a tier a run never had is all -1 here (the table is shared): leave it out again
        return {c: g[c].to_numpy() for c in COLUMNS
                if c in have and (c in ("index", "label", "clean", "pgd")
                                  or not (g[c] == -1).all())}

    runs: Runs = {}
    for name in params.methods:
        runs[name] = {}
        for seed in params.seeds:
            entry = record["runs"].get(name, {}).get(str(seed))
            if entry is None:
                raise InputError(f"{runs_path}: has no run {name}-{seed}; re-analysis covers "
                                 "the methods and seeds the pipeline ran")
            runs[name][seed] = {"train": entry["train"], "eval": entry["eval"],
                                "examples": examples(_key(name, seed))}
    clean: Clean = {seed: {"eval": record["clean"][str(seed)]["eval"],
                           "examples": examples(_key(None, seed))}
                    for seed in params.seeds if str(seed) in record["clean"]}
    return runs, clean
