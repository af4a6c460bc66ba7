"""Stage report: a side-by-side table (markdown + JSON) of accuracy and cost per model.

Each --row is NAME=TRAIN_METRICS.json,EVAL_METRICS.json; speed-ups are relative to --baseline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from robustprune import cli, report


def _row(text: str) -> tuple[str, tuple[Path, Path]]:
    name, sep, paths = text.partition("=")
    parts = paths.split(",")
    if not sep or not name or len(parts) != 2:
        raise argparse.ArgumentTypeError(f"--row {text!r}: expected NAME=TRAIN.json,EVAL.json")
    return name, (Path(parts[0]), Path(parts[1]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--row", type=_row, action="append", required=True)
    p.add_argument("--baseline", required=True, help="the row speed-ups are relative to")
    p.add_argument("--summary", type=Path, default=Path("metrics/summary.json"))
    p.add_argument("--table", type=Path, default=Path("metrics/summary.md"))
    args = p.parse_args(argv)
    return cli.run(lambda: report.report(dict(args.row), args.summary, args.table,
                                           args.baseline))


if __name__ == "__main__":
    sys.exit(main())
