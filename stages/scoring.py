"""Stage scoring: attack the training set once with the warm-up model and write per-example
scores (columns: index, label, adv_loss, el2n, grand, forgetting) to --out, with the passes and
seconds it took in --metrics. The `prune` selector trains on one end of one score and pays
this cost.
"""

from __future__ import annotations

import sys

from robustprune import cli
from robustprune.attacks import AttackConfig
from robustprune.models import ModelConfig
from robustprune.objectives import ObjectiveConfig
from robustprune.optim import OptimConfig
from robustprune.params import load_params
from robustprune.pipeline.scoring import scoring

SECTIONS = {"model": ModelConfig, "attack": AttackConfig, "objective": ObjectiveConfig,
            "train": OptimConfig}
"""What the stage reads (dvc.yaml: model, attack, objective, train.batch_size)."""


def build_parser() -> cli.StageParser:
    """The stage's flags; path defaults follow dvc.yaml (tests/test_stage_layout.py)."""
    p = cli.parser(__doc__, compute=True, init=True)
    p.path("--forgetting", "models/warmup_forgetting-s{seed}.pt")
    p.path("--out", "data/scoring/s{seed}.parquet")
    p.path("--metrics", "metrics/scoring/s{seed}.json")
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)

    def go() -> None:
        params = load_params(args.params, SECTIONS)
        seed = cli.seed_of(args.seed, params)
        p.fill(args, seed)
        scoring(params, seed, args.data, args.init, args.forgetting, args.out, args.metrics,
                cli.distributed_device(args.device))

    return cli.run(go)


if __name__ == "__main__":
    sys.exit(main())
