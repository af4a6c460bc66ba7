"""How far the headline figures move from one training seed to the next.

    python benchmarks/seed_spread.py --seeds 1 2 --methods full [--autoattack 0]
    ATEN_CPU_CAPABILITY=avx512 ONEDNN_MAX_CPU_ISA=ALL MKL_CBWR= \
        python benchmarks/seed_spread.py --seeds 0 --methods full --label unpinned

Trains and evaluates each method for each seed with the committed ``params.yaml`` (same data,
same split: only the training seed changes), adds the default run's seed-0 results from
``metrics/`` when they are there, and writes benchmarks/results/seed-spread.{md,json}: per
method the clean, PGD-k (and AutoAttack) accuracy of every seed, their mean ± std, and the
largest pairwise gap. ``--label`` names a variant run under another environment (e.g. the
processor's own AVX-512 kernels instead of robustprune's AVX2 pin: what an unpinned run on an
AVX-512 machine computes), kept as its own row so it can be set against the same seed of the
default run. Resumable: finished (method, seed) runs are kept in the JSON beside the
work directory and skipped, and an interrupted run resumes from its epoch checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from robustprune.config import load_params  # noqa: E402
from robustprune.distributed import resolve_device  # noqa: E402
from robustprune.pipeline import api as pipeline  # noqa: E402
from robustprune.stats import mean_std  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
import runs  # noqa: E402

FIGURES = ("clean_acc", "pgd_acc", "autoattack_acc")


def run_one(params_path: Path, method: str, seed: int, work: Path, n_autoattack: int,
            device: torch.device) -> dict[str, float]:
    """Warm-up, scoring (only for selectors that need the scores), training and evaluation of
    one seed (:func:`runs.run_one`), reduced to the reported figures."""
    params = load_params(params_path)
    params = dataclasses.replace(params, eval=dataclasses.replace(
        params.eval, n_verdict=n_autoattack, n_autoattack=n_autoattack))
    r = runs.run_one(params, method, seed, work, device)
    return {**{k: r[k] for k in FIGURES if r.get(k) is not None}, "n_pgd": r["n_pgd"],
            "n_autoattack": r["n_autoattack"], "val_pgd_acc": r["val_pgd_acc"],
            "train_seconds": r["train_seconds"], "passes": r["passes"]}


def figures(ev: dict[str, Any], tr: dict[str, Any]) -> dict[str, float]:
    """The reported figures of one run, from its evaluation and training metrics."""
    return {**{k: ev[k] for k in FIGURES if k in ev}, "n_pgd": ev["n_pgd"],
            "n_autoattack": ev.get("n_autoattack", 0),
            "val_pgd_acc": tr["final"]["val_pgd_acc"], "train_seconds": tr["cost"]["seconds"],
            "passes": tr["cost"]["passes"]}


def from_default_run(method: str) -> dict[str, float] | None:
    """Seed 0 of the default pipeline (metrics/), if it ran with these params."""
    ev_path = ROOT / "metrics" / "eval" / f"{method}-0.json"
    tr_path = ROOT / "metrics" / "train" / f"{method}-0.json"
    if not (ev_path.is_file() and tr_path.is_file()):
        return None
    return figures(json.loads(ev_path.read_text()), json.loads(tr_path.read_text()))


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = ["| method | seeds | clean % | PGD-20 % | AutoAttack % (n) | largest gap between "
             "seeds, pts (clean / PGD-20) |", "|---|---|---|---|---|---|"]
    for method, by_seed in results.items():
        seeds = sorted(by_seed, key=int)

        def stat(key: str, rows: list[dict[str, float]]) -> str:
            vals = [r[key] for r in rows if key in r]
            if not vals:
                return "–"
            m, s = mean_std(vals)
            return f"{100 * m:.2f} ± {100 * s:.2f} ({', '.join(f'{100 * v:.2f}' for v in vals)})"

        rows = [by_seed[s] for s in seeds]
        aa_rows = [r for r in rows if r.get("n_autoattack")]
        gaps = [max(abs(a[k] - b[k]) for a, b in itertools.combinations(rows, 2)) * 100
                if len(rows) > 1 else 0.0 for k in ("clean_acc", "pgd_acc")]
        lines.append(f"| {method} | {', '.join(seeds)} | {stat('clean_acc', rows)} | "
                     f"{stat('pgd_acc', rows)} | {stat('autoattack_acc', aa_rows)} "
                     f"({aa_rows[0]['n_autoattack'] if aa_rows else 0}) | "
                     f"{gaps[0]:.2f} / {gaps[1]:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--methods", nargs="+", default=["full"])
    p.add_argument("--autoattack", type=int, default=0,
                   help="eval.n_autoattack for the extra seeds (0: PGD tier only)")
    p.add_argument("--label", default="", help="a variant's name (e.g. unpinned); its runs "
                   "get their own row and work directory")
    p.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    p.add_argument("--work", type=Path, default=ROOT / ".cache" / "seed-spread")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "seed-spread")
    args = p.parse_args(argv)
    device = resolve_device("auto")
    args.work.mkdir(parents=True, exist_ok=True)
    state = args.out.with_suffix(".json")
    results: dict[str, dict[str, dict[str, float]]] = (
        json.loads(state.read_text()) if state.is_file() else {})
    started = time.perf_counter()
    for method in args.methods:
        row = f"{method} ({args.label})" if args.label else method
        results.setdefault(row, {})
        default = None if args.label else from_default_run(method)
        if default is not None:
            results[row]["0"] = default
        work = args.work / (args.label or "pinned")
        work.mkdir(parents=True, exist_ok=True)
        for seed in args.seeds:
            if str(seed) in results[row]:
                continue
            results[row][str(seed)] = {**run_one(args.params, method, seed, work,
                                                 args.autoattack, device),
                                       "runtime": pipeline.runtime_info(device)}
            state.parent.mkdir(parents=True, exist_ok=True)
            state.write_text(json.dumps(results, indent=2) + "\n")
    text = (f"# Seed spread\n\n{table(results)}\n\nCommands: the two in this script's "
            f"docstring, with the committed params.yaml; seed 0 of an unlabelled row is the "
            f"default pipeline's run. Only the training seed (or, in a labelled row, the "
            f"kernel environment: see each run's `runtime` in the JSON) changes; data split and "
            f"test examples are the same. Hardware of the last invocation: "
            f"{platform.machine()}, {torch.get_num_threads()} threads, torch "
            f"{torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}; "
            f"it took {time.perf_counter() - started:.0f} s.\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    state.write_text(json.dumps(results, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
