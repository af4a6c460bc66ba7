"""Stage warmup: W epochs of clean training (params `warmup.*`); W = 0 saves the seeded init.

The result is both the starting point of every robust run and the clean-trained reference
model that the evaluation compares against.
"""

from __future__ import annotations

import sys
from pathlib import Path

from robustprune import cli, pipeline
from robustprune.config import load_params


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__, compute=True)
    p.add_argument("--out", type=Path, default=Path("models/warmup.pt"))
    p.add_argument("--metrics", type=Path, default=Path("metrics/warmup.json"))
    p.add_argument("--live", type=Path, default=Path("dvclive/warmup"))
    p.add_argument("--forgetting", type=Path, default=Path("models/warmup_forgetting.pt"),
                   help="per-example forgetting events during warm-up (for the scoring stage)")
    args = p.parse_args(argv)

    def go() -> None:
        params = load_params(args.params)
        pipeline.warmup(params, cli.seed_of(args.seed, params), args.data, args.out,
                        args.metrics, args.live, cli.distributed_device(args.device),
                        forgetting_out=args.forgetting)

    return cli.run(go)


if __name__ == "__main__":
    sys.exit(main())
