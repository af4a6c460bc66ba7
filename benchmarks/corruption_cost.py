"""What the common-corruption benchmark costs on the whole test set: generating the 15 × 5
corrupted copies of every test image, and evaluating one model on them, next to that model's
training time and its other evaluation tiers.

    python benchmarks/corruption_cost.py          # after `dvc repro` (uses models/full-0.pt)

Writes benchmarks/results/corruption-cost.{json,md}. Time it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from robustprune import load_model  # noqa: E402
from robustprune.config import load_params  # noqa: E402
from robustprune.data import load_splits  # noqa: E402
from robustprune.data.corrupted import generate  # noqa: E402
from robustprune.distributed import resolve_device  # noqa: E402
from robustprune.evaluation import corruption_eval  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT / "data/prepared/dataset.npz")
    p.add_argument("--model", type=Path, default=ROOT / "models/full-0.pt")
    p.add_argument("--train-metrics", type=Path, default=ROOT / "metrics/train/full-0.json")
    p.add_argument("--eval-metrics", type=Path, default=ROOT / "metrics/eval/full-0.json")
    p.add_argument("--n", type=int, default=0, help="test examples (0 = all)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/corruption-cost")
    args = p.parse_args(argv)
    params = load_params(ROOT / "params.yaml")
    splits = load_splits(args.data)
    device = resolve_device("auto")
    started = time.perf_counter()
    cset, per = generate(splits.x_test.numpy(), splits.y_test.numpy(), args.n,
                         params.corruptions.seed)
    generate_s = time.perf_counter() - started
    model = load_model(args.model)
    metrics, _ = corruption_eval(model, cset.x, cset.y, cset.names, cset.severities,
                                 params.eval.batch_size, device)
    train = json.loads(args.train_metrics.read_text())
    ev = json.loads(args.eval_metrics.read_text())
    images = int(np.prod(cset.x.shape[:3]))
    out = {"n_test": len(cset.y), "corrupted_images": images, "bytes": int(cset.x.nbytes),
           "generate_seconds": round(generate_s, 1), "generate_seconds_by_corruption": per,
           "evaluate_seconds": metrics["corruption_seconds"],
           "corruption_acc": metrics["corruption_acc"], "model": str(args.model),
           "train_seconds": train["cost"]["seconds"],
           "other_eval_seconds": ev.get("seconds", {}),
           "runtime": {"machine": platform.machine(), "threads": torch.get_num_threads(),
                       "torch": torch.__version__,
                       "cpu_capability": torch.backends.cpu.get_cpu_capability()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(out, indent=2) + "\n")
    slow = sorted(per.items(), key=lambda kv: -kv[1])[:3]
    tiers = ", ".join(f"{k} {v:.0f} s" for k, v in ev.get("seconds", {}).items()
                      if not k.startswith("autoattack_"))
    text = (
        "# Cost of the common-corruption benchmark on the whole test set\n\n"
        f"| step | images | seconds | vs training the model ({train['cost']['seconds']:.0f} s) |\n"
        "|---|---|---|---|\n"
        f"| generate 15 corruptions × 5 severities (once per dataset, cached by DVC) | "
        f"{images:,} | {generate_s:.0f} | {generate_s / train['cost']['seconds']:.2f}× |\n"
        f"| evaluate one model on them | {images:,} | {metrics['corruption_seconds']:.0f} | "
        f"{metrics['corruption_seconds'] / train['cost']['seconds']:.2f}× |\n\n"
        f"Model: {args.model.relative_to(ROOT) if args.model.is_relative_to(ROOT) else args.model}"
        f" (mean corruption accuracy {100 * metrics['corruption_acc']:.2f} %). Its other "
        f"evaluation tiers took {tiers}. Slowest corruptions to generate: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in slow)
        + f". The file is {cset.x.nbytes / 2**20:.0f} MiB (uint8). The default pipeline uses "
        f"the first {params.corruptions.n} test examples (`corruptions.n`).\n\n"
        f"Command: `python benchmarks/corruption_cost.py` on {platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}, nothing else running.\n")
    args.out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
