"""One run, several processes: the train stage of a method as 1 and as N torchrun processes
(gloo on CPU, NCCL on GPUs), its passes per second against the one-process run, and how far
the N-process run's figures are from the one-process run's.

    python benchmarks/scaling.py --nproc 1 2 --method full --epochs 1

Both runs start from the default pipeline's prepared data and warm-up model
(``data/prepared/dataset.npz`` and ``models/warmup-s<seed>.pt``: run ``dvc repro warmup`` first)
with the committed params.yaml, ``train.epochs`` set to
``--epochs`` and ``scale.nproc`` to each count, through the same launcher dvc.yaml uses
(``python -m robustprune.launch``). On one machine the processes share its cores: each gets
ROBUSTPRUNE_THREADS / LOCAL_WORLD_SIZE threads (2 and 1 here), so on a 2-core CPU the
two-process run is about correctness, not speed. A benchmark: run it alone on the machine.
Writes benchmarks/results/scaling-<device>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import yaml  # noqa: E402


def _inputs(seed: int) -> tuple[Path, Path]:
    """The default pipeline's data and warm-up model (DVC makes them, not this script)."""
    data, warm = ROOT / "data" / "prepared" / "dataset.npz", ROOT / "models" / f"warmup-s{seed}.pt"
    for path in (data, warm):
        if not path.is_file():
            raise SystemExit(f"error: {path.relative_to(ROOT)} is missing; run `dvc repro "
                             f"warmup@{seed}` first")
    return data, warm


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    p.add_argument("--method", default="full")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    p.add_argument("--work", type=Path, default=ROOT / ".cache" / "scaling",
                   help="scratch folder for the runs' outputs")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    base = yaml.safe_load(args.params.read_text())
    args.work.mkdir(parents=True, exist_ok=True)
    data, warm = _inputs(args.seed)
    runs: dict[int, dict[str, Any]] = {}
    scratch = args.work
    for n in args.nproc:
        d = scratch / f"n{n}"
        d.mkdir(parents=True, exist_ok=True)
        raw = {**base, "train": {**base["train"], "epochs": args.epochs},
               "scale": {**base.get("scale", {}), "nproc": n}}
        (d / "params.yaml").write_text(yaml.safe_dump(raw))
        metrics = d / "train.json"
        cmd = [sys.executable, "-m", "robustprune.launch", str(n),
               str(ROOT / "stages" / "train.py"), "--params", str(d / "params.yaml"),
               "--method", args.method, "--seed", str(args.seed), "--device", args.device,
               "--data", str(data), "--init", str(warm), "--out", str(d / "model.pt"),
               "--metrics", str(metrics), "--live", str(d / "live")]
        start = time.perf_counter()
        subprocess.run(cmd, cwd=d, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        wall = time.perf_counter() - start
        m = json.loads(metrics.read_text())
        runs[n] = {"processes": n, "wall_seconds": round(wall, 1),
                   "stage_seconds": m["stage_seconds"], "passes": m["cost"]["passes"],
                   "device_seconds": m["cost"]["seconds"],
                   "passes_per_s": round(m["cost"]["passes"] / wall, 1),
                   "final": m["final"], "cost": m["cost"]}
        print(json.dumps(runs[n]), flush=True)
    name = (torch.cuda.get_device_name(0) if args.device.startswith("cuda") else
            f"{platform.machine()} CPU, {os.cpu_count()} cores, "
            f"{torch.backends.cpu.get_cpu_capability()}")
    one = runs.get(1)
    lines = [f"# One run as several processes: `{args.method}`, {args.epochs} epoch(s), {name}",
             "", "| processes | wall-clock s | passes | passes/s (wall) | vs 1 process | "
             "device-seconds | val clean | val PGD-10 |", "|---|---|---|---|---|---|---|---|"]
    for n, r in runs.items():
        rel = f"{r['passes_per_s'] / one['passes_per_s']:.2f}×" if one else "–"
        lines.append(f"| {n} | {r['wall_seconds']} | {r['passes']:,} | {r['passes_per_s']:,.0f}"
                     f" | {rel} | {r['device_seconds']} | {r['final']['val_clean_acc']:.4f} | "
                     f"{r['final']['val_pgd_acc']:.4f} |")
    lines += ["", f"Command: `python benchmarks/scaling.py --nproc {' '.join(map(str, args.nproc))}"
              f" --method {args.method} --epochs {args.epochs} --device {args.device}`; the "
              "committed params.yaml with `train.epochs` and `scale.nproc` changed; the same "
              f"warm-up model; torch {torch.__version__}. Wall-clock includes each process's "
              "start (torch import, process group) and validation; device-seconds are the "
              "training phases' time summed over the processes."]
    out = args.out or ROOT / "benchmarks" / "results" / (
        "scaling-" + ("cuda" if args.device.startswith("cuda") else "cpu"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"device": name, "runs": runs}, indent=2)
                                        + "\n")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
