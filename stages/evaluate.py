"""Stage evaluate: clean, PGD-20 and AutoAttack accuracy of a saved model on the test split,
plus sanity checks (AutoAttack <= PGD <= clean; PGD at 4·eps near 0 flags gradient masking).

Sizes are params `eval.*` (0 = whole test set); the threat model is `attack.norm`/`attack.eps`.
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
    p.add_argument("--data", type=Path, default=Path("data/prepared/dataset.npz"))
    p.add_argument("--model", type=Path, required=True, help="a saved model (.pt)")
    p.add_argument("--out", type=Path, required=True, help="metrics JSON to write")
    args = p.parse_args(argv)
    return cli.run(lambda: pipeline.evaluate(load_params(args.params), args.data, args.model,
                                             args.out, resolve_device(args.device)))


if __name__ == "__main__":
    sys.exit(main())
