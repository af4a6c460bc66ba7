"""How the report writes its figures in text: accuracies in %, Δs in points with their
interval, the failed checks. One place, so the tables, the targets' notes and the benchmarks'
tables print a figure alike, and print what ``summary.json`` holds (its rounding)."""

from __future__ import annotations

from robustprune.report.config import VOIDING
from robustprune.report.paired import Stat
from robustprune.stats import Interval


def pct(stat: Stat | None, seeds: int) -> str:
    """An accuracy in %, with its std over seeds when there are several."""
    if stat is None:
        return "–"
    return f"{100 * stat.mean:.2f}" + (f" ± {100 * stat.std:.2f}" if seeds > 1 else "")


def fmt_delta(iv: Interval | None, blocked: bool = False) -> str:
    """A Δ in points with its 95 % interval, from the JSON's rounding of it; "blocked" when a
    voiding check forbids the comparison, "–" when there is none to make."""
    if blocked:
        return "blocked"
    if iv is None:
        return "–"
    d = iv.as_dict()
    return f"{100 * d['estimate']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]"


def checks_text(failed: list[str]) -> str:
    """The checks a model failed, said as failures; those that void comparisons marked."""
    if not failed:
        return "all passed"
    return "failed: " + ", ".join(f"{c} (voids comparisons)" if c in VOIDING else c
                                  for c in failed)
