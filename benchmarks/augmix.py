"""AugMix and BulletTrain for AugMix on the default regime, measured on the common corruptions.

    python benchmarks/augmix.py --seeds 0 1 2

Trains, from each seed's warm-up model and with the committed params.yaml otherwise:

- the ``clean`` objective (standard training, the equal-epochs baseline AugMix is compared with),
- AugMix (``objective.name=augmix``) with the methods ``full``, ``bullettrain`` (boundary examples
  get both views, robust ones and outliers none) and ``bullettrain-r1`` (robust examples one view),

then evaluates every model and the clean-trained warm-up model on the generated
common-corruption test set (the first ``--corruptions`` test examples × 15 corruptions × 5
severities) besides clean and PGD-20. Tables: the report's own (accuracy, cost, corruption
table, the BulletTrain-for-AugMix target) and each objective against standard training. The
same runs through DVC: ``dvc exp run -S objective.name=augmix`` trains AugMix for every entry of
``methods`` (docs/corruptions.md; measured: benchmarks/results/README.md).

Resumable like ``long_regime.py`` (the same run machinery, ``benchmarks/runs.py``, and work
directory): finished runs are kept in ``benchmarks/results/augmix.json`` and skipped, an
interrupted one resumes from its last epoch. Timing is meaningful only when nothing else runs
on the machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import long_regime as lr
import runs

from robustprune.distributed import resolve_device

ROOT = lr.ROOT


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=4, help="train.epochs (default: params')")
    p.add_argument("--methods", nargs="+", default=["full", "bullettrain", "bullettrain-r1"],
                   help="AugMix methods (the clean objective trains full only)")
    p.add_argument("--corruptions", type=int, default=2000)
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--note", default="")
    p.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    p.add_argument("--work", type=Path, default=ROOT / ".cache" / "long-regime")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "augmix")
    args = p.parse_args(argv)
    base = yaml.safe_load(args.params.read_text())
    device = resolve_device("auto")
    args.work.mkdir(parents=True, exist_ok=True)
    state = args.out.with_suffix(".json")
    results = json.loads(state.read_text()) if state.is_file() else {}
    started = time.perf_counter()
    first = lr.run_params(base, args.epochs, "augmix", "full", 0)
    corrupted = runs.corrupted_set(first, args.work, args.corruptions)
    for objective, methods in (("clean", ["full"]), ("augmix", args.methods)):
        for method in methods:
            for seed in args.seeds:
                key = f"{objective}/e{args.epochs}/{method}/s{seed}"
                if args.report_only or key in results:
                    continue
                params = lr.run_params(base, args.epochs, objective, method, 0)
                print(f"== {key}", flush=True)
                results[key] = runs.run_one(params, method, seed, args.work, device, corrupted)
                state.parent.mkdir(parents=True, exist_ok=True)
                state.write_text(json.dumps(results, indent=2) + "\n")
    clean = {s: runs.clean_trained(first, s, args.work, device, corrupted)
             for s in sorted({r["seed"] for r in results.values()})}
    gen = json.loads(corrupted.with_suffix(".json").read_text()) if corrupted else {}
    text = (f"# AugMix and BulletTrain for AugMix\n\n"
            f"{lr.grid_tables(results, args.epochs, first, clean)}\n"
            f"{lr.objective_comparison(results, args.epochs)}\n"
            f"Command: `python benchmarks/augmix.py --seeds {' '.join(map(str, args.seeds))} "
            f"--epochs {args.epochs} --methods {' '.join(args.methods)} --corruptions "
            f"{args.corruptions}` with the committed params.yaml (only `objective.name`, "
            f"`train.epochs` and the method entries change; AutoAttack not run: these models "
            f"are not adversarially trained). Corrupted test set: {gen.get('source', '–')}, "
            f"{gen.get('n', 0)} examples × 75, generated in {gen.get('stage_seconds', 0):.0f} s. "
            f"Hardware of the last invocation: {platform.machine()}, {torch.get_num_threads()} "
            f"threads, torch {torch.__version__}, CPU capability "
            f"{torch.backends.cpu.get_cpu_capability()}; the runs' training took "
            f"{sum(r['train_seconds'] for r in results.values()):.0f} s in all (each run's "
            f"machine and seconds are in the JSON). {args.note}\n")
    print(f"this invocation took {time.perf_counter() - started:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
