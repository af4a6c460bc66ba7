"""Stage publish: one run's small results, copied byte for byte and checked, into the
git-tracked results folder the report reads: each SOURCE goes to OUT/<its folder's name>/<its
name> (metrics/train/full-0.json -> results/train/full-0.json, data/examples/full-0.parquet ->
results/examples/full-0.parquet). Training and evaluation keep DVC-cached outputs, so they stay
run-cacheable; these git-tracked copies let the report, its statistics and `dvc status` work in
a clone that has none of the cached outputs (there is no DVC remote).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from robustprune import cli
from robustprune.pipeline.publish import publish

MADE_BY = {"train": "train", "eval": "evaluate", "eval_clean": "evaluate_clean",
           "examples": "evaluate"}
"""The stage that writes each source folder of the pipeline's layout (named in errors)."""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", type=Path, nargs="+", metavar="SOURCE",
                   help="a stage's metrics JSON or per-example table")
    p.add_argument("--out", type=Path, default=Path("results"),
                   help="the git-tracked results folder (default: %(default)s)")
    args = p.parse_args(argv)
    copies = [(src, args.out / src.parent.name / src.name,
               MADE_BY.get(src.parent.name, "upstream")) for src in args.sources]
    return cli.run(lambda: publish(copies))


if __name__ == "__main__":
    sys.exit(main())
