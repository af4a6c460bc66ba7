"""Training throughput, clean vs PGD-10 adversarial training, in images/s per model and device,
and their ratio against the FLOP ratio: a PGD step is a forward and an input gradient (about 2
forward-equivalents), a training step about 3, so PGD-10 AT / clean ≈ (10·2 + 3)/3 ≈ 7.7×.

    python benchmarks/throughput.py                                   # CPU here, GPU when lent
    python benchmarks/throughput.py --device cuda --bf16 --channels-last [--compile]

Each measurement trains ``--batches`` timed batches after ``--warmup`` untimed ones (kernels
chosen, caches filled, ``torch.compile`` done), synchronising the device before reading the
clock, and is repeated ``--runs`` times: mean ± std, as airbench reports. Synthetic
Fashion-MNIST-shaped inputs (1×28×28, 10 classes; throughput does not depend on the pixels),
data kept on the device, the library's own PGD and model builders. A benchmark, not a test:
run it alone on the machine. Writes benchmarks/results/throughput-<device>.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
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
from robustprune.models import build_model  # noqa: E402
from robustprune.training import resolve_device  # noqa: E402

FLOP_RATIO = (10 * 2 + 3) / 3


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(arch: str, adversarial: bool, args: argparse.Namespace,
            device: torch.device) -> list[float]:
    """Images per second of ``--runs`` runs of one (model, clean or PGD-10 AT) setting."""
    torch.manual_seed(0)
    model = build_model(arch, in_channels=1, num_classes=10, image_size=28, mean=(0.286,),
                        std=(0.353,)).to(device)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    net = torch.compile(model) if args.compile else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    pgd = PGD(eps=0.1, alpha=0.02, steps=10)
    n = args.batches + args.warmup
    x_all = torch.rand(n, args.batch_size, 1, 28, 28, device=device)
    y_all = torch.randint(0, 10, (n, args.batch_size), device=device)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if args.bf16
                else contextlib.nullcontext())
    rates = []
    for _ in range(args.runs):
        for b in range(n):
            if b == args.warmup:
                _sync(device)
                start = time.perf_counter()
            x = x_all[b].contiguous(memory_format=fmt)
            y = y_all[b]
            with autocast:
                if adversarial:
                    net.eval()
                    x = pgd.perturb(net, x, cross_entropy_loss(y))
                net.train()
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
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    rows: dict[str, Any] = {}
    for arch in args.models:
        clean = measure(arch, False, args, device)
        adv = measure(arch, True, args, device)
        rows[arch] = {"clean_ips": clean, "pgd10_ips": adv,
                      "ratio": statistics.mean(clean) / statistics.mean(adv)}
        print(arch, json.dumps(rows[arch]), flush=True)
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"{platform.machine()} CPU, {torch.get_num_threads()} threads, "
                 f"{torch.backends.cpu.get_cpu_capability()}")
    flags = " ".join(f for f, on in (("--bf16", args.bf16), ("--channels-last",
                                     args.channels_last), ("--compile", args.compile)) if on)

    def ms(v: list[float]) -> str:
        return f"{statistics.mean(v):,.0f} ± {statistics.stdev(v) if len(v) > 1 else 0:,.0f}"

    lines = [f"# Training throughput on {name}", "",
             "| model | clean training, img/s | PGD-10 AT, img/s | PGD-10 AT / clean time | "
             f"FLOP ratio ({FLOP_RATIO:.1f}×) met |", "|---|---|---|---|---|"]
    for arch, r in rows.items():
        lines.append(f"| {arch} | {ms(r['clean_ips'])} | {ms(r['pgd10_ips'])} | "
                     f"{r['ratio']:.2f}× | {'yes' if r['ratio'] <= FLOP_RATIO else 'no'} |")
    lines += ["", f"Command: `python benchmarks/throughput.py --device {args.device} "
              f"--batch-size {args.batch_size} --batches {args.batches} --warmup {args.warmup} "
              f"--runs {args.runs}{' ' + flags if flags else ''}`; mean ± std over runs; "
              f"torch {torch.__version__}; synthetic 1×28×28 inputs, data on the device."]
    out = args.out or ROOT / "benchmarks" / "results" / f"throughput-{device.type}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"device": name, "flags": flags,
                                                    "rows": rows}, indent=2) + "\n")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
