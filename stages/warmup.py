"""Stage warmup: W epochs of clean training (params `warmup.*`); W = 0 saves the seeded init.

The result is both the starting point of every robust run and the clean-trained reference
model that the evaluation compares against.
"""

from __future__ import annotations

import sys

from robustprune import cli
from robustprune.attacks import AttackConfig
from robustprune.models import ModelConfig
from robustprune.optim import OptimConfig
from robustprune.params import load_params
from robustprune.pipeline.warmup import warmup
from robustprune.scale import ScaleConfig

SECTIONS = {"model": ModelConfig, "warmup": OptimConfig, "attack": AttackConfig,
            "scale": ScaleConfig}
"""What the stage reads (dvc.yaml: model, warmup, attack.norm, attack.eps, scale)."""


def build_parser() -> cli.StageParser:
    """The stage's flags; path defaults follow dvc.yaml (tests/test_stage_layout.py)."""
    p = cli.parser(__doc__, compute=True)
    p.path("--out", cli.WARMUP_MODEL)
    p.path("--metrics", "metrics/warmup/s{seed}.json")
    p.path("--live", "dvclive/warmup/s{seed}")
    p.path("--forgetting", "models/warmup_forgetting-s{seed}.pt",
           "per-example forgetting events during warm-up (for the scoring stage)")
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)

    def go() -> None:
        params = load_params(args.params, SECTIONS)
        seed = cli.seed_of(args.seed, params)
        p.fill(args, seed)
        warmup(params, seed, args.data, args.out, args.metrics, args.live,
               cli.distributed_device(args.device), forgetting_out=args.forgetting)

    return cli.run(go)


if __name__ == "__main__":
    sys.exit(main())
