"""The long regime: where does full-data robust training stop improving, and what do the
selection methods buy there?

    # 1. where `full` plateaus: final accuracy of full-data training annealed to E epochs
    python benchmarks/long_regime.py plateau --epochs 4 8 16
    # 2. the grid at the plateau length E: the full-data frontier (budgets), the methods, seeds
    python benchmarks/long_regime.py grid --epochs 16 --objectives pgd-at trades --seeds 0 1 2 \
        --methods full full-50 full-25 bullettrain prune stack

Both phases train with the committed ``params.yaml`` (same data, split, warm-up, attack and
optimiser) and change only what their arguments name: ``train.epochs``, the objective, the seed
and the entries of ``methods`` (the named entries come from params.yaml or from :data:`EXTRA`).
Every model is evaluated on the whole test set with PGD-20 (and the reference AutoAttack on the
first ``--autoattack`` examples). Results go to ``benchmarks/results/long-regime.{json,md}``.

Resumable at two levels: a finished run is stored in the JSON and skipped, and an interrupted
run resumes from its last epoch checkpoint (``.cache/long-regime/checkpoints``). Timing is only
meaningful when nothing else runs on the machine; pass counts always are.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from robustprune import report  # noqa: E402
from robustprune.config import Params, params_from_dict  # noqa: E402
from robustprune.corruption_ops import mean_corruption_error  # noqa: E402
from robustprune.distributed import resolve_device  # noqa: E402
from robustprune.report.load import read_examples  # noqa: E402
from robustprune.report.paired import common, difference, shares  # noqa: E402
from robustprune.report.text import fmt_delta  # noqa: E402
from robustprune.stats import paired_difference, paired_share_difference  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from runs import clean_trained, corrupted_set, reevaluate, run_one  # noqa: E402

EXTRA: dict[str, dict[str, Any]] = {
    "full-50": {"budget": 0.5},
    "full-25": {"budget": 0.25},
    "random-online": {"selector": "random-online", "fraction": 0.3},
    "prune": {"selector": "prune", "fraction": 0.3},
    "gradmatch": {"selector": "coreset-gradmatch", "fraction": 0.3},
    "craig": {"selector": "coreset-craig", "fraction": 0.3},
    "glister": {"selector": "glister", "fraction": 0.3},
    "stack": {"selector": "prune", "fraction": 0.3, "miner": "bullettrain",
              "attack": "fgsm-rs", "alpha": 0.125},
    "bullettrain-r1": {"miner": "bullettrain", "robust_views": 1},
}
"""Method entries the grid may name besides those in params.yaml (params.yaml wins)."""


def run_params(base: dict[str, Any], epochs: int, objective: str, method: str,
               n_autoattack: int) -> Params:
    """The committed params with only the benchmark's knobs changed."""
    raw = json.loads(json.dumps(base))
    raw["train"]["epochs"] = epochs
    raw["objective"]["name"] = objective
    # the standard AutoAttack on the whole reference subset, as these regimes were run
    raw["eval"]["n_verdict"] = raw["eval"]["n_autoattack"] = n_autoattack
    entries = {**EXTRA, **(raw.get("methods") or {})}
    if method not in entries:
        raise SystemExit(f"--methods: {method} is neither in params.yaml nor in EXTRA; "
                         f"known: {', '.join(sorted(entries))}")
    raw["methods"] = {method: entries[method]}
    return params_from_dict(raw)


def _pgd_column(path: str) -> np.ndarray:
    import pandas as pd

    return pd.read_parquet(path)["pgd"].to_numpy()


def plateau_table(runs: list[dict[str, Any]]) -> str:
    """Final accuracy of `full` per epoch count, and the paired gain of each doubling."""
    runs = sorted(runs, key=lambda r: r["epochs"])
    lines = ["| objective | epochs | passes | train s | final val PGD-10 % (1 000) | test clean % "
             "| test PGD-20 % (10 000) | Δ PGD-20 vs previous row, pts [95 % CI] |",
             "|---|---|---|---|---|---|---|---|"]
    previous: dict[str, dict[str, Any]] = {}
    for r in runs:
        prev = previous.get(r["objective"])
        delta = "–"
        if prev is not None:
            iv = paired_difference(_pgd_column(r["examples"]),
                                   _pgd_column(prev["examples"]))
            delta = f"{100 * iv.estimate:+.2f} [{100 * iv.low:+.2f}, {100 * iv.high:+.2f}]"
        lines.append(f"| {r['objective']} | {r['epochs']} | {r['passes']:,} | "
                     f"{r['train_seconds']:.0f} | {100 * r['curve'][-1]['val_pgd_acc']:.1f} | "
                     f"{100 * r['clean_acc']:.2f} | {100 * r['pgd_acc']:.2f} | {delta} |")
        previous[r["objective"]] = r
    return "\n".join(lines)


def _eval_json(result: dict[str, Any]) -> dict[str, Any]:
    """The evaluation metrics a run's result points at (beside its per-example table)."""
    ex = Path(result["examples"])
    return json.loads(ex.with_name(f"eval-{ex.stem}.json").read_text())


def objective_comparison(results: dict[str, Any], epochs: int) -> str:
    """Each objective's ``full`` against the ``clean`` objective's ``full`` at the same epochs
    (standard training, the same warm-up and data order): paired Δ of clean, PGD and mean
    corruption accuracy over the seeds both have."""
    by: dict[str, dict[int, dict[str, Any]]] = {}
    for r in results.values():
        if r["epochs"] == epochs and r["method"] == "full":
            by.setdefault(r["objective"], {})[r["seed"]] = r
    if "clean" not in by or len(by) < 2:
        return ""
    lines = [f"## Each objective vs standard (clean) training, {epochs} epochs, method full\n",
             "| objective | seeds | clean % | Δ clean vs clean-objective, pts [95 % CI] | "
             "PGD-20 % | Δ PGD-20, pts [95 % CI] | corruption % | Δ corruption, pts "
             "[95 % CI] | mCE vs clean-objective | passes ÷ clean's |", "|" + "---|" * 10]
    for objective in sorted(set(by) - {"clean"}):
        seeds = sorted(set(by[objective]) & set(by["clean"]))
        if not seeds:
            continue
        ex = {o: [read_examples(Path(by[o][s]["examples"]), "long_regime.py")
                  for s in seeds] for o in (objective, "clean")}
        cells = []
        for col in ("clean", "pgd"):
            iv = difference(ex[objective], ex["clean"], col)
            mean = np.mean([by[objective][s][f"{col}_acc"] for s in seeds])
            cells += [f"{100 * mean:.2f}", fmt_delta(iv)]
        corr = "–", "–", "–"
        if all("corruption" in e for e in ex[objective] + ex["clean"]):
            evals = {o: [_eval_json(by[o][s]) for s in seeds] for o in (objective, "clean")}
            copies = evals[objective][0]["n_corrupted_copies"]
            pairs = [common(shares(a, copies), shares(b, copies))
                     for a, b in zip(ex[objective], ex["clean"], strict=True)]
            mce = np.mean([mean_corruption_error(a["corruption_grid"],
                                                 b["corruption_grid"])["mce"]
                           for a, b in zip(evals[objective], evals["clean"], strict=True)])
            corr = (f"{100 * np.mean([by[objective][s]['corruption_acc'] for s in seeds]):.2f}",
                    fmt_delta(paired_share_difference(pairs)), f"{mce:.3f}")
        ratio = (np.mean([by[objective][s]["passes"] for s in seeds])
                 / np.mean([by["clean"][s]["passes"] for s in seeds]))
        lines.append(f"| {objective} | {', '.join(map(str, seeds))} | {cells[0]} | {cells[1]} | "
                     f"{cells[2]} | {cells[3]} | {corr[0]} | {corr[1]} | {corr[2]} | "
                     f"{ratio:.2f}× |")
    return "\n".join(lines) + "\n"


SeedRuns = dict[str, dict[int, Any]]
"""Per method, its runs by seed."""


def seed_tables(runs: SeedRuns) -> list[tuple[list[int], SeedRuns]]:
    """The seed sets the grid is tabulated over, each with the methods run on all its seeds.

    Comparisons are paired over seeds, so a table may only hold methods that ran on every one
    of its seeds. The first table uses all of ``full``'s seeds; then each shorter prefix of
    them (first k seeds) gets a table when it admits more methods than the last one, so a
    method still missing its later seeds is compared over the seeds it has instead of
    dropping to a single seed.
    """
    seeds = sorted(runs["full"])
    tables: list[tuple[list[int], SeedRuns]] = []
    for k in range(len(seeds), 0, -1):
        used = seeds[:k]
        chosen = {m: {s: by[s] for s in used} for m, by in runs.items()
                  if all(s in by for s in used)}
        if not tables or len(chosen) > len(tables[-1][1]):
            tables.append((used, chosen))
    return tables


def grid_tables(results: dict[str, Any], epochs: int, params: Params,
                clean: dict[int, dict[str, Any]] | None = None) -> str:
    """Per objective, the report's own tables (accuracy, cost and budget-matched speed-ups,
    targets) over the grid's runs at ``epochs``, computed from the runs' metrics and
    per-example tables exactly as the pipeline's report stage does."""
    out = []
    for objective in sorted({r["objective"] for r in results.values()}):
        runs: dict[str, dict[int, dict[str, Any]]] = {}
        for r in results.values():
            if r["objective"] != objective or r["epochs"] != epochs:
                continue
            tag = Path(r["examples"]).stem
            work = Path(r["examples"]).parent
            runs.setdefault(r["method"], {})[r["seed"]] = {
                "train": json.loads((work / f"train-{tag}.json").read_text()),
                "eval": json.loads((work / f"eval-{tag}.json").read_text()),
                "examples": read_examples(Path(r["examples"]), "long_regime.py")}
        if "full" not in runs:
            continue
        for used, chosen in seed_tables(runs):
            order = ["full", *sorted(m for m in chosen if m.startswith("full-")),
                     *sorted(m for m in chosen if not m.startswith("full"))]
            base = {s: c for s, c in (clean or {}).items() if s in used}
            summary = report.summarise({m: chosen[m] for m in order}, base, "full",
                                       params.report)
            out.append(f"## {objective}, {epochs} epochs, seed{'s' if len(used) > 1 else ''} "
                       f"{', '.join(map(str, used))}\n\n"
                       + report.markdown(summary, base, report.targets(summary)))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("phase", choices=("plateau", "grid"))
    p.add_argument("--epochs", type=int, nargs="+", default=[4, 8, 16])
    p.add_argument("--objectives", nargs="+", default=["pgd-at"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--methods", nargs="+", default=["full"])
    p.add_argument("--autoattack", type=int, default=0,
                   help="reference AutoAttack on the first n test examples (0: PGD-20 only)")
    p.add_argument("--autoattack-methods", nargs="+", default=None,
                   help="the methods whose models get the AutoAttack (default: every one); "
                   "finished runs of these methods without it are re-evaluated")
    p.add_argument("--corruptions", type=int, default=0,
                   help="also evaluate on the common corruptions of the first n test examples "
                        "(and the clean-trained warm-up model, for mCE); 0: no corruptions")
    p.add_argument("--report-only", action="store_true",
                   help="only rewrite the results from the runs finished so far")
    p.add_argument("--note", default="", help="a sentence appended to the results (e.g. what "
                   "else ran on the machine)")
    p.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    p.add_argument("--work", type=Path, default=ROOT / ".cache" / "long-regime")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "long-regime")
    args = p.parse_args(argv)
    if args.phase == "plateau":
        args.methods = ["full"]
    base = yaml.safe_load(args.params.read_text())
    device = resolve_device("auto")
    args.work.mkdir(parents=True, exist_ok=True)
    state = args.out.with_suffix(".json")
    results: dict[str, Any] = json.loads(state.read_text()) if state.is_file() else {}
    started = time.perf_counter()
    first = run_params(base, args.epochs[0], args.objectives[0], "full", args.autoattack)
    corrupted = corrupted_set(first, args.work, args.corruptions)
    for objective in args.objectives:
        for epochs in args.epochs:
            for method in args.methods:
                for seed in args.seeds:
                    key = f"{objective}/e{epochs}/{method}/s{seed}"
                    n_aa = (args.autoattack if args.autoattack_methods is None
                            or method in args.autoattack_methods else 0)
                    done = results.get(key)
                    if args.report_only or (done and done["n_autoattack"] >= n_aa and (
                            corrupted is None or done.get("corrupted") == str(corrupted))):
                        continue
                    params = run_params(base, epochs, objective, method, n_aa)
                    print(f"== {key}{' (re-evaluated)' if done else ''}", flush=True)
                    results[key] = (reevaluate(done, params, args.work, device, corrupted)
                                    if done else run_one(params, method, seed, args.work,
                                                         device, corrupted))
                    state.parent.mkdir(parents=True, exist_ok=True)
                    state.write_text(json.dumps(results, indent=2) + "\n")
    full = [r for r in results.values() if r["method"] == "full" and r["seed"] == 0]
    grid = ""
    if args.phase == "grid":
        clean = ({s: clean_trained(first, s, args.work, device, corrupted)
                  for s in sorted({r["seed"] for r in results.values()})}
                 if corrupted is not None else None)
        grid = (grid_tables(results, args.epochs[0], first, clean)
                + objective_comparison(results, args.epochs[0])
                + f"\nCommand: `python benchmarks/long_regime.py grid --epochs {args.epochs[0]} "
                f"--objectives {' '.join(args.objectives)} --seeds "
                f"{' '.join(map(str, args.seeds))} --methods {' '.join(args.methods)} "
                f"--autoattack {args.autoattack}"
                + (f" --corruptions {args.corruptions}" if args.corruptions else "")
                + (f" --autoattack-methods {' '.join(args.autoattack_methods)}"
                   if args.autoattack_methods else "")
                + "`; a method run on fewer seeds than `full` appears in the tables of the "
                "first seeds it has.\n\n")
    lengths = " ".join(str(e) for e in sorted({r["epochs"] for r in full}))
    text = (f"# Long regime\n\n{grid}## Where full-data training plateaus\n\n"
            f"{plateau_table(full)}\n\nCommand: `python benchmarks/long_regime.py plateau "
            f"--epochs {lengths}` (seed 0) with the committed "
            f"params.yaml (only `train.epochs` changes; the one-cycle schedule anneals to each "
            f"length). Hardware of the last invocation: {platform.machine()}, "
            f"{torch.get_num_threads()} threads, torch {torch.__version__}, CPU capability "
            f"{torch.backends.cpu.get_cpu_capability()}"
            + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "")
            + "; the runs' training took "
            f"{sum(r['train_seconds'] for r in results.values()):.0f} s in all (each run's "
            f"machine and seconds are in the JSON). {args.note}\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    print(text)
    print(f"this invocation took {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
