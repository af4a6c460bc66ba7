"""Stage train: robust training of one entry of `methods` (--method; params `attack.*`,
`objective.*`, `train.*` and `methods.<name>`) from the warm-up checkpoint.

Resumable: after each epoch its full state goes to .cache/checkpoints/train-<hash of params
and inputs>/; rerunning after a kill continues from there and ends with the same metrics.
"""

from __future__ import annotations

import sys
from pathlib import Path

from robustprune import cli, pipeline
from robustprune.config import load_params


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__, compute=True, init=True)
    p.add_argument("--out", type=Path, default=Path("models/robust.pt"))
    p.add_argument("--metrics", type=Path, default=Path("metrics/train.json"))
    p.add_argument("--live", type=Path, default=Path("dvclive/train"))
    p.add_argument("--scores", type=Path, default=None,
                   help="the scoring stage's table (read only by selectors that need it)")
    p.add_argument("--scores-metrics", type=Path, default=None,
                   help="the scoring stage's metrics (its cost is charged to those selectors)")
    p.add_argument("--method", default=None,
                   help="an entry of `methods` in params (default: the first)")
    args = p.parse_args(argv)

    def go() -> None:
        params = load_params(args.params)
        pipeline.train(params, cli.seed_of(args.seed, params),
                       cli.method_of(args.method, params), args.data, args.init, args.out,
                       args.metrics, args.live, cli.distributed_device(args.device),
                       scores_path=args.scores, scores_metrics=args.scores_metrics)

    return cli.run(go)


if __name__ == "__main__":
    sys.exit(main())
