"""Stage score (selection scoring): attack the training set once with the warm-up model and
write per-example scores to data/scores/scores.parquet (columns: index, label, adv_loss,
el2n, grand, forgetting), with the passes and seconds it took in metrics/score.json. The
`score` selection method trains on the top fraction of one score and pays this cost.
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
    p.add_argument("--forgetting", type=Path, default=Path("models/warmup_forgetting.pt"))
    p.add_argument("--out", type=Path, default=Path("data/scores/scores.parquet"))
    p.add_argument("--metrics", type=Path, default=Path("metrics/score.json"))
    args = p.parse_args(argv)

    def go() -> None:
        params = load_params(args.params)
        pipeline.score(params, cli.seed_of(args.seed, params), args.data, args.init,
                       args.forgetting, args.out, args.metrics, resolve_device(args.device))

    return cli.run(go)


if __name__ == "__main__":
    sys.exit(main())
