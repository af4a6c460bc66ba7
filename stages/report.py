"""Stage report: the side-by-side table (metrics/summary.md, metrics/summary.json) of every
method in `methods` over every seed in `seeds`: accuracies, paired differences vs the baseline
(`report.baseline`) with 95 % intervals, speed-ups at equal epochs and against the full-data
frontier (the baseline at other budgets), random selection at equal cost, time to a validation
target, failed checks and the target verdicts; the plot of robust accuracy (with intervals) vs
relative cost with the Pareto front and the frontier (metrics/pareto.png); and every run's
validation curve vs passes and seconds (metrics/curves.csv, for `dvc plots`); and a compact
headline of flat scalars (metrics/headline.json) for `dvc exp show`. Reads every run's
metrics and per-example table from the git-tracked copies the publish stage made (--results:
train/, eval/, eval_clean/, examples/), so it reruns in any clone, where the DVC-cached stage
outputs are absent: `dvc repro --single-item --force report`.
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
    p.add_argument("--results", type=Path, default=Path("results"),
                   help="the publish stage's folder: train/, eval/, eval_clean/ (metrics) "
                        "and examples/ (per-example tables) (default: %(default)s)")
    p.add_argument("--summary", type=Path, default=Path("metrics/summary.json"))
    p.add_argument("--table", type=Path, default=Path("metrics/summary.md"))
    p.add_argument("--plot", type=Path, default=Path("metrics/pareto.png"))
    p.add_argument("--curves", type=Path, default=Path("metrics/curves.csv"))
    p.add_argument("--headline", type=Path, default=Path("metrics/headline.json"))
    args = p.parse_args(argv)
    return cli.run(lambda: report(load_params(args.params, SECTIONS), args.results,
                                  args.results / "examples", args.summary, args.table,
                                  args.plot, args.curves, args.headline))


if __name__ == "__main__":
    sys.exit(main())
