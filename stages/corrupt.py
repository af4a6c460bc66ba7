"""Stage corrupt: the common-corruption test set every evaluation reuses.

`corruptions.source: generated` applies the 15 ImageNet-C / CIFAR-10-C corruptions at 5
severities to the first `corruptions.n` examples of the prepared test split, seeded by
`corruptions.seed` (same seed, same bytes); `cifar10-c` / `cifar100-c` read the official
archives (downloaded with a pinned MD5 when absent). Writes one .npz and its metrics (sizes,
seconds per corruption).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from robustprune import cli
from robustprune.data.corrupted import CorruptionsConfig
from robustprune.params import load_params
from robustprune.pipeline.corrupt import corrupt


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--data", type=Path, default=Path("data/prepared/dataset.npz"),
                   help="the prepare stage's output (default: %(default)s)")
    p.add_argument("--raw", type=Path, default=Path("data/raw"),
                   help="where cifar*-c archives are looked for (default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("data/corrupted/test.npz"))
    p.add_argument("--metrics", type=Path, default=Path("metrics/corrupt.json"))
    args = p.parse_args(argv)

    def stage() -> None:
        params = load_params(args.params, {"corruptions": CorruptionsConfig})
        info = corrupt(params, args.data, args.out, args.metrics, args.raw)
        print(json.dumps({k: v for k, v in info.items() if k != "seconds"}))

    return cli.run(stage)


if __name__ == "__main__":
    sys.exit(main())
