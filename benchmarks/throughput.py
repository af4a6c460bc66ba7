"""Training throughput, clean vs PGD-10 adversarial training, in images/s per model and device,
and their ratio against the FLOP ratio: a PGD step is a forward and an input gradient (about 2
forward-equivalents), a training step about 3, so PGD-10 AT / clean ≈ (10·2 + 3)/3 ≈ 7.7×.

    python benchmarks/throughput.py                                   # CPU here, GPU when lent
    python benchmarks/throughput.py --device cuda --variants fp32 bf16 bf16-cl bf16-cl-compile

Each measurement trains ``--batches`` timed batches after ``--warmup`` untimed ones (kernels
chosen, caches filled, ``torch.compile`` done), synchronising the device before reading the
clock, and is repeated ``--runs`` times: mean ± std, as airbench reports. Synthetic
Fashion-MNIST-shaped inputs (1×28×28, 10 classes; throughput does not depend on the pixels),
data kept on the device, the library's own PGD and model builders. A benchmark, not a test:
run it alone on the machine. Writes benchmarks/results/throughput-<device>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from robustprune.attacks import PGD, cross_entropy_loss  # noqa: E402
from robustprune.config import ScaleConfig  # noqa: E402
from robustprune.distributed import resolve_device  # noqa: E402
from robustprune.models import build_model  # noqa: E402
from robustprune.scale import training_module  # noqa: E402

FLOP_RATIO = (10 * 2 + 3) / 3


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


VARIANTS = {"fp32": ScaleConfig(), "bf16": ScaleConfig(precision="bf16"),
            "bf16-cl": ScaleConfig(precision="bf16", channels_last=True),
            "bf16-cl-compile": ScaleConfig(precision="bf16", channels_last=True, compile=True),
            "fp32-compile": ScaleConfig(compile=True)}
"""The GPU-path settings measured (``scale`` params); on CPU only fp32 applies."""


def measure(arch: str, adversarial: bool, args: argparse.Namespace, device: torch.device,
            scale: ScaleConfig) -> list[float]:
    """Images per second of ``--runs`` runs of one (model, clean or PGD-10 AT, GPU-path
    setting), through the module training itself uses (:func:`training_module`)."""
    torch.manual_seed(0)
    model = build_model(arch, in_channels=1, num_classes=10, image_size=28, mean=(0.286,),
                        std=(0.353,)).to(device)
    net, _ = training_module(model, scale, device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    pgd = PGD(eps=0.1, alpha=0.02, steps=10)
    n = args.batches + args.warmup
    x_all = torch.rand(n, args.batch_size, 1, 28, 28, device=device)
    y_all = torch.randint(0, 10, (n, args.batch_size), device=device)
    rates = []
    for _ in range(args.runs):
        for b in range(n):
            if b == args.warmup:
                _sync(device)
                start = time.perf_counter()
            x, y = x_all[b], y_all[b]
            if adversarial:
                model.eval()
                x = pgd.perturb(net, x, cross_entropy_loss(y))
            model.train()
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync(device)
        rates.append(args.batches * args.batch_size / (time.perf_counter() - start))
    return rates


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["smallcnn", "preact-resnet18"])
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--batches", type=int, default=20, help="timed batches per run")
    p.add_argument("--warmup", type=int, default=3, help="untimed batches before each run")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--variants", nargs="+", default=["fp32"], choices=list(VARIANTS),
                   help="GPU-path settings to measure (cuda; on CPU only fp32 applies)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    variants = args.variants if device.type == "cuda" else ["fp32"]
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"{platform.machine()} CPU, {torch.get_num_threads()} threads, "
                 f"{torch.backends.cpu.get_cpu_capability()}")
    out = args.out or ROOT / "benchmarks" / "results" / f"throughput-{device.type}"
    out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for arch in args.models:
        for variant in variants:
            started = time.perf_counter()
            clean = measure(arch, False, args, device, VARIANTS[variant])
            adv = measure(arch, True, args, device, VARIANTS[variant])
            rows.append({"model": arch, "variant": variant, "clean_ips": clean,
                         "pgd10_ips": adv,
                         "ratio": statistics.mean(clean) / statistics.mean(adv),
                         "seconds": round(time.perf_counter() - started, 1)})
            print(json.dumps(rows[-1]), flush=True)
            _write(out, name, args, rows)  # after every row: a cut-short run keeps its rows
    print(out.with_suffix(".md").read_text())
    return 0


def _write(out: Path, name: str, args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    def ms(v: list[float]) -> str:
        return f"{statistics.mean(v):,.0f} ± {statistics.stdev(v) if len(v) > 1 else 0:,.0f}"

    lines = [f"# Training throughput on {name}", "",
             "| model | setting | clean training, img/s | PGD-10 AT, img/s | "
             f"PGD-10 AT / clean time | within the FLOP ratio ({FLOP_RATIO:.1f}×) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['variant']} | {ms(r['clean_ips'])} | "
                     f"{ms(r['pgd10_ips'])} | {r['ratio']:.2f}× | "
                     f"{'yes' if r['ratio'] <= FLOP_RATIO else 'no'} |")
    lines += ["", f"Command: `python benchmarks/throughput.py --device {args.device} "
              f"--batch-size {args.batch_size} --batches {args.batches} --warmup {args.warmup} "
              f"--runs {args.runs} --variants {' '.join(r for r in args.variants)}`; mean ± std "
              f"over runs; torch {torch.__version__}; synthetic 1×28×28 inputs, data on the "
              "device; settings are the `scale` params (bf16 autocast, channels-last, "
              "torch.compile) through the module training uses."]
    out.with_suffix(".json").write_text(json.dumps({"device": name, "torch": torch.__version__,
                                                    "rows": rows}, indent=2) + "\n")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
