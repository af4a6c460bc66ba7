"""Stage prepare: read the dataset, hold out a validation split (and a test split of
`data.test_size` when the dataset has none), write --out and its sizes to --metrics.

Source order for built-in datasets: data/raw/<name>/, then a system copy (Debian's
/usr/share/datasets/fashion-mnist), then the official URL with a SHA-256 check.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from robustprune import cli
from robustprune.data import DataConfig
from robustprune.params import load_params
from robustprune.pipeline.prepare import prepare


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--raw", type=Path, default=Path("data/raw"), help="raw data root")
    p.add_argument("--out", type=Path, default=Path("data/prepared/dataset.npz"))
    p.add_argument("--metrics", type=Path, default=Path("metrics/prepare.json"))
    args = p.parse_args(argv)

    def stage() -> None:
        params = load_params(args.params, {"data": DataConfig})
        info = prepare(params, args.out, args.raw, args.metrics)
        print(json.dumps(info))

    return cli.run(stage)


if __name__ == "__main__":
    sys.exit(main())
