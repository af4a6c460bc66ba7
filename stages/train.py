"""Stage train: robust training (params `attack.*`, `objective.*`, `train.*`, `select.*`, and
`methods.<name>` with --method) from the warm-up checkpoint.

Resumable: after each epoch its full state goes to .cache/checkpoints/train-<hash of params
and inputs>/; rerunning after a kill continues from there and ends with the same metrics.
"""

from __future__ import annotations

import sys
from pathlib import Path

from robustprune import cli, pipeline
from robustprune.config import load_params
from robustprune.training import resolve_device


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__)
    cli.add_device(p)
    cli.add_seed(p)
    p.add_argument("--data", type=Path, default=Path("data/prepared/dataset.npz"))
    p.add_argument("--init", type=Path, default=Path("models/warmup.pt"))
    p.add_argument("--out", type=Path, default=Path("models/robust.pt"))
    p.add_argument("--metrics", type=Path, default=Path("metrics/train.json"))
    p.add_argument("--live", type=Path, default=Path("dvclive/train"))
    p.add_argument("--scores", type=Path, default=Path("data/scores/scores.parquet"),
                   help="the score stage's table (read by the score selector only)")
    p.add_argument("--score-metrics", type=Path, default=Path("metrics/score.json"),
                   help="the score stage's metrics (its cost is charged to the score selector)")
    p.add_argument("--method", default=None,
                   help="an entry of `methods` in params (its overrides of select/attack apply)")
    args = p.parse_args(argv)

    def go() -> None:
        params = load_params(args.params)
        pipeline.train(params, cli.seed_of(args.seed, params), args.data, args.init, args.out,
                       args.metrics, args.live, resolve_device(args.device),
                       method=args.method, scores_path=args.scores,
                       score_metrics=args.score_metrics)

    return cli.run(go)


if __name__ == "__main__":
    sys.exit(main())
