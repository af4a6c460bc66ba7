"""Stage report: the side-by-side table (metrics/summary.md, metrics/summary.json) of every
method in `methods` over every seed in `seeds`: accuracies, paired differences vs the baseline
(`report.baseline`) with 95 % intervals, speed-ups at equal epochs and against the full-data
frontier (the baseline at other budgets), random selection at equal cost, time to a validation
target, failed checks and the target verdicts; the plot of robust accuracy (with intervals) vs
relative cost with the Pareto front and the frontier (metrics/pareto.png); and every run's
validation curve vs passes and seconds (metrics/curves.csv, for `dvc plots`); and a compact
headline of flat scalars (metrics/headline.json) for `dvc exp show`. Reads the metrics and the
per-example tables the other stages wrote, and writes them as a git-tracked bundle
(metrics/runs.json, metrics/examples.parquet) that `--reanalyse` reads where those are absent.
"""

from __future__ import annotations

import sys
from pathlib import Path

from robustprune import cli
from robustprune.params import load_params
from robustprune.report import ReportConfig, report
from robustprune.selection.registry import build_methods

SECTIONS = {"methods": build_methods, "report": ReportConfig}
"""What the stage reads: the method names and the report section (costs and settings come from
what training recorded)."""


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--metrics-dir", type=Path, default=Path("metrics"))
    p.add_argument("--examples-dir", type=Path, default=Path("data/examples"))
    p.add_argument("--summary", type=Path, default=Path("metrics/summary.json"))
    p.add_argument("--table", type=Path, default=Path("metrics/summary.md"))
    p.add_argument("--plot", type=Path, default=Path("metrics/pareto.png"))
    p.add_argument("--curves", type=Path, default=Path("metrics/curves.csv"))
    p.add_argument("--headline", type=Path, default=Path("metrics/headline.json"))
    p.add_argument("--runs", type=Path, default=Path("metrics/runs.json"),
                   help="bundle: every run's training and evaluation metrics, as read")
    p.add_argument("--examples", type=Path, default=Path("metrics/examples.parquet"),
                   help="bundle: the per-example columns the statistics use, every run")
    p.add_argument("--reanalyse", action="store_true",
                   help="read the bundle (--runs, --examples) instead of the stage outputs: "
                        "the statistics again where the DVC-cached outputs are absent")
    args = p.parse_args(argv)
    return cli.run(lambda: report(load_params(args.params, SECTIONS), args.metrics_dir,
                                  args.examples_dir, args.summary, args.table, args.plot,
                                  args.curves, args.headline, (args.runs, args.examples),
                                  args.reanalyse))


if __name__ == "__main__":
    sys.exit(main())
