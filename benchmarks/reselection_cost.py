"""What one coreset reselection costs, and of what: the attack and output-layer gradients of the
candidates, then each solver (CRAIG's facility location, GradMatch's non-negative OMP).

    python benchmarks/reselection_cost.py --regime benchmarks/regimes/screen

Run on a regime's prepared data and warm-up model after `dvc repro` of it (the warm-up is the
model the first reselection sees). For each setting (``--settings pool:select_steps``; the
default compares the defaults, all candidates under the training PGD-10, with the screen
regime's lean setting, a pool of 0.5 under PGD-2) it times one reselection with the library's
own code at fraction ``--fraction``, ``--runs`` times: mean ± std, as airbench reports. The
training attack is the regime's (``attack`` in its params.yaml). A benchmark, not a test: run it
alone on the machine. Writes benchmarks/results/reselection-cost-<cpu|cuda>.json and prints
a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from robustprune import load_model  # noqa: E402
from robustprune.atomic import atomic_write_json  # noqa: E402
from robustprune.attacks import PGD  # noqa: E402
from robustprune.cost import CostMeter, CountingModel  # noqa: E402
from robustprune.cpu_kernels import pin_cpu_kernels  # noqa: E402
from robustprune.objectives import PGDAT  # noqa: E402
from robustprune.selection.base import SelectionContext  # noqa: E402
from robustprune.selection.coreset import (  # noqa: E402
    CoresetCRAIG,
    CoresetGradMatch,
    CoresetOptions,
    output_gradients,
    selection_attack,
)


def setting(text: str) -> tuple[float, int]:
    """``pool:select_steps``, e.g. ``0.5:2``."""
    pool, steps = text.split(":")
    return float(pool), int(steps)


def mean_std(xs: list[float]) -> dict[str, float]:
    return {"mean": round(statistics.fmean(xs), 2),
            "std": round(statistics.stdev(xs), 2) if len(xs) > 1 else 0.0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--regime", type=Path, default=ROOT / "benchmarks" / "regimes" / "screen")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fraction", type=float, default=0.3)
    p.add_argument("--settings", type=setting, nargs="+", default=[(1.0, 0), (0.5, 2)])
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    data = args.regime / "data" / "prepared" / "dataset.npz"
    warm = args.regime / "models" / f"warmup-s{args.seed}.pt"
    for path in (data, warm):
        if not path.is_file():
            print(f"error: {path}: missing; run `dvc repro {args.regime}/dvc.yaml` first",
                  file=sys.stderr)
            return 2
    pin_cpu_kernels()
    params = yaml.safe_load((args.regime / "params.yaml").read_text())
    a = params["attack"]
    if a["name"] != "pgd" or params["objective"]["name"] != "pgd-at":
        print("error: attack.name / objective.name: this benchmark times pgd under pgd-at",
              file=sys.stderr)
        return 2
    with np.load(data, allow_pickle=False) as d:
        x, y = torch.from_numpy(d["x_train"]), torch.from_numpy(d["y_train"])
    meter = CostMeter()
    ctx = SelectionContext(
        epoch=1, epochs=params["train"]["epochs"], model=CountingModel(load_model(warm), meter),
        x_train=x, y_train=y, num_classes=int(y.max()) + 1, objective=PGDAT(),
        attack=PGD(eps=a["eps"], alpha=a["alpha"], steps=a["steps"], norm=a["norm"]),
        meter=meter, seed=args.seed, batch_size=params["train"]["batch_size"])
    rows = []
    for pool, steps in args.settings:
        opts = CoresetOptions(pool=pool, select_steps=steps)
        attack = selection_attack(ctx.attack, steps)
        times: dict[str, list[float]] = {"gradients": [], "craig": [], "gradmatch": []}
        for _ in range(args.runs):
            cand = CoresetCRAIG(args.fraction, args.seed, opts).candidates(ctx)
            xs, ys = (x, y) if cand is None else (x[cand], y[cand])
            t = time.perf_counter()
            grads = output_gradients(ctx, xs, ys, True, main_only=True, attack=attack)[0]
            times["gradients"].append(time.perf_counter() - t)
            for key, cls in (("craig", CoresetCRAIG), ("gradmatch", CoresetGradMatch)):
                t = time.perf_counter()
                cls(args.fraction, args.seed, opts).per_class(ctx, grads.double(), cand)
                times[key].append(time.perf_counter() - t)
        rows.append({"pool": pool, "select_steps": steps, "attack_steps": attack.steps,
                     "candidates": len(ys), **{k: mean_std(v) for k, v in times.items()}})
    regime = args.regime.resolve()
    result = {"regime": str(regime.relative_to(ROOT) if regime.is_relative_to(ROOT) else regime),
              "fraction": args.fraction, "runs": args.runs, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "rows": rows}
    out = args.out or ROOT / "benchmarks" / "results" / "reselection-cost-cpu.json"
    atomic_write_json(out, result)
    print("| pool | reselection attack | candidates | attack + gradients s | CRAIG solver s "
          "| GradMatch solver s |\n|---|---|---|---|---|---|")
    for r in rows:
        cells = [f"{r[k]['mean']:.1f} ± {r[k]['std']:.1f}" for k in ("gradients", "craig",
                                                                     "gradmatch")]
        print(f"| {r['pool']:g} | PGD-{r['attack_steps']} | {r['candidates']} | "
              + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
