"""Stage train: robust training of one entry of `methods` (--method; params `attack.*`,
`objective.*`, `train.*` and `methods.<name>`) from the warm-up checkpoint.

Resumable: after each epoch its full state goes to .cache/checkpoints/train-<hash of params
and inputs>/; rerunning after a kill continues from there and ends with the same metrics.
"""

from __future__ import annotations

import sys

from robustprune import cli, pipeline
from robustprune.config import load_params


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
        params = load_params(args.params)
        seed, method = cli.seed_of(args.seed, params), cli.method_of(args.method, params)
        p.fill(args, seed, method)
        pipeline.train(params, seed, method, args.data, args.init, args.out,
                       args.metrics, args.live, cli.distributed_device(args.device),
                       scores_path=args.scores, scores_metrics=args.scores_metrics)

    return cli.run(go)


if __name__ == "__main__":
    sys.exit(main())
