"""Record one pipeline run's results as benchmarks/results/<name>.md and <name>.json.

    python benchmarks/record.py <name> [--metrics metrics] [--wall SECONDS] [--notes FILE]

The markdown holds what the README's result sections quote: the report table, the targets
(benchmarks/targets.py), each stage's own timer and their sum, and the hardware and versions
beside them; the report's Pareto plot is copied beside it as <name>-pareto.png.
The stage timers are read from the metrics the stages wrote, so a run restored from DVC's cache
is recorded with the seconds it took when it actually ran; ``--wall`` adds the wall-clock of
the command that produced the run (dvc overhead and any cached stages included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def stage_seconds(metrics: Path) -> dict[str, float]:
    """Each stage's own timer (``stage_seconds`` in its metrics file), in pipeline order."""
    summary = json.loads((metrics / "summary.json").read_text())
    files: dict[str, Path] = {}
    for seed in summary["seeds"]:
        files[f"warmup@{seed}"] = metrics / "warmup" / f"s{seed}.json"
        files[f"scoring@{seed}"] = metrics / "scoring" / f"s{seed}.json"
        files[f"evaluate_clean@{seed}"] = metrics / "eval_clean" / f"s{seed}.json"
        for name in summary["methods"]:
            files[f"train@{name}-{seed}"] = metrics / "train" / f"{name}-{seed}.json"
        for name in summary["methods"]:
            files[f"evaluate@{name}-{seed}"] = metrics / "eval" / f"{name}-{seed}.json"
    return {stage: float(json.loads(path.read_text())["stage_seconds"])
            for stage, path in files.items() if path.exists()}


def tier_seconds(metrics: Path) -> str:
    """A markdown table of each evaluation's seconds per tier (and per AutoAttack attack)."""
    rows, keys = {}, []
    for path in sorted((metrics / "eval").glob("*.json")) + sorted(
            (metrics / "eval_clean").glob("*.json")):
        sec = json.loads(path.read_text()).get("seconds", {})
        name = path.stem if path.parent.name == "eval" else f"clean-trained-{path.stem}"
        rows[name] = sec
        keys += [k for k in sec if k not in keys]
    head = "| model | " + " | ".join(keys) + " |\n|" + "---|" * (len(keys) + 1)
    body = [f"| {n} | " + " | ".join(f"{s.get(k, 0):.0f}" for k in keys) + " |"
            for n, s in rows.items()]
    return "\n".join([head, *body])


def cpu_model() -> str:
    """The processor's model name (Linux), because a VM's processor can change between sessions
    and timings are only comparable on the same one; run record.py where the pipeline ran."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    import torch

    pkgs = []
    for dist in ("torch", "pyautoattack", "dvc", "dvclive"):
        try:
            pkgs.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            continue
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    cpu = cpu_model() or platform.processor() or platform.machine()
    return (f"{os.cpu_count()} CPU cores ({cpu}), {device}; Python {platform.python_version()}, "
            + ", ".join(pkgs))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", help="results name, e.g. pgd-at, trades, mart")
    p.add_argument("--metrics", type=Path, default=ROOT / "metrics")
    p.add_argument("--wall", type=float, default=None, help="wall-clock of the run, seconds")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--notes", type=Path, default=None,
                   help="a markdown file appended as is (measurements beside the run, with "
                        "their commands), so re-recording keeps them")
    args = p.parse_args(argv)
    summary_path = args.metrics / "summary.json"
    if not summary_path.is_file():
        print(f"error: {summary_path}: missing; run the pipeline's report stage first",
              file=sys.stderr)
        return 2
    if args.notes is not None and not args.notes.is_file():
        print(f"error: --notes {args.notes}: no such file", file=sys.stderr)
        return 2
    table = (args.metrics / "summary.md").read_text().strip()
    targets = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "targets.py"),
                              str(summary_path)], capture_output=True, text=True,
                             check=True).stdout.strip()
    per_tier = tier_seconds(args.metrics)
    stages = stage_seconds(args.metrics)
    timers = " · ".join(f"{k} {v:.0f} s" for k, v in stages.items())
    wall = "" if args.wall is None else f" Wall-clock of the command: {args.wall:.0f} s."
    text = (f"# {args.name}\n\n{table}\n\n**Targets** (`benchmarks/targets.py`):\n\n{targets}\n\n"
            f"**Stage timers:** {timers}; sum {sum(stages.values()) / 60:.1f} min.{wall}\n\n"
            f"**Evaluation seconds per tier and model:**\n\n{per_tier}\n\n"
            f"**Hardware and versions:** {versions()}.\n")
    if args.notes is not None:
        text += "\n" + args.notes.read_text().strip() + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.md").write_text(text)
    (args.out / f"{args.name}.json").write_text(summary_path.read_text())
    if (args.metrics / "pareto.png").is_file():
        (args.out / f"{args.name}-pareto.png").write_bytes((args.metrics / "pareto.png")
                                                           .read_bytes())
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
