"""Stage scoring: attack the training set once with the warm-up model and write per-example
scores (columns: index, label, adv_loss, el2n, grand, forgetting) to --out, with the passes and
seconds it took in --metrics. The `prune` selector trains on one end of one score and pays
this cost.
"""

from __future__ import annotations

import sys
from pathlib import Path

from robustprune import cli, pipeline
from robustprune.config import load_params


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__, compute=True, init=True)
    p.add_argument("--forgetting", type=Path, default=Path("models/warmup_forgetting.pt"))
    p.add_argument("--out", type=Path, default=Path("data/scoring/scores.parquet"))
    p.add_argument("--metrics", type=Path, default=Path("metrics/scoring.json"))
    args = p.parse_args(argv)

    def go() -> None:
        params = load_params(args.params)
        pipeline.scoring(params, cli.seed_of(args.seed, params), args.data, args.init,
                         args.forgetting, args.out, args.metrics,
                         cli.distributed_device(args.device))

    return cli.run(go)


if __name__ == "__main__":
    sys.exit(main())
