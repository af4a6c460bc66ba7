"""Robustness against cost: the Pareto front of the runs and the plot that shows it with the
full-data frontier.

The front is computed once here for both the summary and the plot, over the runs no voiding
check blocks (a model that learned nothing must not sit on the front because it was cheap).
"""

from __future__ import annotations

import io
from pathlib import Path

from robustprune.atomic import atomic_write_bytes
from robustprune.errors import InputError
from robustprune.report.summary import MethodSummary, Summary
from robustprune.stats import Interval


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """Names not dominated in (lower cost, higher accuracy), ordered by cost."""
    front, best = [], float("-inf")
    for name, (_cost, acc) in sorted(points.items(), key=lambda kv: (kv[1][0], -kv[1][1])):
        if acc > best:
            front.append(name)
            best = acc
    return front


def axis_interval(r: MethodSummary, axis: str) -> Interval:
    """A run's robustness on the Pareto axis: APGD-CE+T-calibrated (else PGD-k) accuracy, or
    mean common-corruption accuracy."""
    if axis == "corruption":
        if r.corruption is None:
            raise InputError("report.pareto_axis = corruption: a run has no corruption "
                             "accuracy (evaluate it with --corrupted)")
        return r.corruption.interval
    return r.robust


def front(summary: Summary, axis: str) -> list[str]:
    """The Pareto front (relative cost vs the axis's estimate) of the runs no voiding check
    blocks: the summary's and the plot's."""
    return pareto_front({n: (r.relative_cost, axis_interval(r, axis).estimate)
                         for n, r in summary.items() if not r.voided_by})


def plot(summary: Summary, path: Path, axis: str = "adversarial") -> None:
    """Robustness vs relative cost (passes ÷ full), 95 % intervals as error bars, with the
    Pareto front of the point estimates. ``axis``: adversarial (APGD-CE+T-calibrated, else
    PGD-k accuracy) or corruption (mean common-corruption accuracy)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    intervals = {n: axis_interval(r, axis) for n, r in summary.items()}
    points = {n: (r.relative_cost, 100 * intervals[n].estimate) for n, r in summary.items()}
    on_front = front(summary, axis)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for name, (x, y) in points.items():
        on = name in on_front
        i = intervals[name]
        ax.errorbar([x], [y], yerr=[[y - 100 * i.low], [100 * i.high - y]],
                    fmt="o", ms=7 if on else 5, c="tab:red" if on else "tab:blue", capsize=3,
                    zorder=3)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if on_front:  # empty when every model failed a voiding check
        fx, fy = zip(*(points[n] for n in on_front), strict=True)
        ax.step(fx, fy, where="post", c="tab:red", lw=1, alpha=0.7, label="Pareto front")
    frontier = sorted(points[n] for n, r in summary.items() if r.matched.frontier)
    if len(frontier) >= 2:
        gx, gy = zip(*frontier, strict=True)
        ax.plot(gx, gy, c="tab:gray", lw=1.5, ls="--", zorder=2,
                label="full-data frontier (budgets)")
        ax.set_xscale("log")
    ax.set_xlabel("relative training cost (example-passes ÷ full)")
    first = next(iter(summary.values()))
    ax.set_ylabel("mean common-corruption accuracy (%)" if axis == "corruption" else
                  "APGD-CE+T accuracy, calibrated (%)" if first.robust_calibrated is not None
                  else f"{first.pgd_label.split(' ')[0]} accuracy (%)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # nothing to name when every run is voided
        ax.legend(loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
