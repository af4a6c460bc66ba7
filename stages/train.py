"""Stage train: robust training of one entry of `methods` (--method; params `attack.*`,
`objective.*`, `train.*` and `methods.<name>`) from the warm-up checkpoint.

Resumable: after each epoch its full state goes to .cache/checkpoints/train-<hash of params
and inputs>/; rerunning after a kill continues from there and ends with the same metrics.
"""

from __future__ import annotations

import sys

from robustprune import cli
from robustprune.attacks import AttackConfig
from robustprune.models import ModelConfig
from robustprune.objectives import ObjectiveConfig
from robustprune.optim import OptimConfig
from robustprune.params import load_params
from robustprune.pipeline.train import train
from robustprune.scale import ScaleConfig
from robustprune.selection.registry import build_methods

SECTIONS = {"model": ModelConfig, "attack": AttackConfig, "objective": ObjectiveConfig,
            "train": OptimConfig, "scale": ScaleConfig, "methods": build_methods}
"""What the stage reads (dvc.yaml: these sections, of methods only the run's entry)."""


def build_parser() -> cli.StageParser:
    """The stage's flags; path defaults follow dvc.yaml (tests/test_stage_layout.py)."""
    p = cli.parser(__doc__, compute=True, init=True)
    p.path("--out", "models/{method}-{seed}.pt")
    p.path("--metrics", "metrics/train/{method}-{seed}.json")
    p.path("--live", "dvclive/train/{method}-{seed}")
    p.path("--scores", "data/scoring/s{seed}.parquet",
           "the scoring stage's table (read only by selectors that need it)")
    p.path("--scores-metrics", "metrics/scoring/s{seed}.json",
           "the scoring stage's metrics (its cost is charged to those selectors)")
    p.add_argument("--method", default=None,
                   help="an entry of `methods` in params (default: the first)")
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)

    def go() -> None:
        params = load_params(args.params, SECTIONS)
        seed, method = cli.seed_of(args.seed, params), cli.method_of(args.method, params)
        p.fill(args, seed, method)
        train(params, seed, method, args.data, args.init, args.out,
                       args.metrics, args.live, cli.distributed_device(args.device),
                       scores_path=args.scores, scores_metrics=args.scores_metrics)

    return cli.run(go)


if __name__ == "__main__":
    sys.exit(main())
