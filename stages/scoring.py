"""Stage scoring: attack the training set once with the warm-up model and write per-example
scores (columns: index, label, adv_loss, el2n, grand, forgetting) to --out, with the passes and
seconds it took in --metrics. The `prune` selector trains on one end of one score and pays
this cost.
"""

from __future__ import annotations

import sys

from robustprune import cli, pipeline
from robustprune.config import load_params


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
        params = load_params(args.params)
        seed = cli.seed_of(args.seed, params)
        p.fill(args, seed)
        pipeline.scoring(params, seed, args.data, args.init,
                         args.forgetting, args.out, args.metrics,
                         cli.distributed_device(args.device))

    return cli.run(go)


if __name__ == "__main__":
    sys.exit(main())
