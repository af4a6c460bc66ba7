"""Print the target verdicts of a report (metrics/summary.json) as a markdown table.

The targets and their rules live in the report (robustprune/report/verdicts.py, ``TARGETS``):
each is met / not met / inconclusive, the accuracy parts read from the 95 % interval of the
AutoAttack-calibrated difference vs `full`, the speed parts from deterministic pass counts and
wall-clock.

    python benchmarks/targets.py [metrics/summary.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(path: str = "metrics/summary.json") -> None:
    goal = json.loads(Path(path).read_text())["targets"]
    out = ["| target | method | measured | verdict |", "|---|---|---|---|"]
    out += [f"| {t['target']} | {t['method'] or '–'} | {t['measured']} | {t['verdict']} |"
            for t in goal]
    print("\n".join(out))


if __name__ == "__main__":
    main(*sys.argv[1:])
