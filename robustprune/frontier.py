"""Budget-matched comparison: the full-data frontier, effective speed-ups and time to accuracy.

A method that trains on less data also takes fewer optimisation steps, so comparing it with
full-data training at the same number of epochs mixes two effects. The honest competitor is
full-data training given the same budget (its schedule annealed to it). Trained at several
budgets, full-data training traces a *frontier*: robust accuracy as a function of cost. A
method's **effective speed-up** is the cost at which the frontier reaches the method's accuracy
divided by the method's cost: above 1× the method buys accuracy more cheaply than simply
training on all data for less long; below 1× it sits under the frontier.

Interpolation is linear in log-cost between neighbouring budgets (accuracy grows roughly with
the logarithm of training length), on the running maximum of the frontier (more budget never
buys less accuracy; a dip between budgets is noise). Outside the budgets trained the cost is
not extrapolated: it is *censored*, reported as "≤ the smallest budget" or "≥ the largest".

Uncertainty: a bootstrap that resamples test examples (the same resample for every model, so
the comparison stays paired) and, where a model has several seeds, its seeds. The interval is
the percentile interval of the resampled speed-ups; a censored end is marked as a bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from robustprune.stats import Verdict

DRAWS = 2000
"""Bootstrap resamples: percentile bounds at 95 % move by < 0.01× between seeds of the RNG."""


@dataclass(frozen=True)
class Bound:
    """A ratio that may be censored: ``side`` −1 means "at most value", +1 "at least value"."""

    value: float
    side: int = 0

    def __str__(self) -> str:
        return f"{'≤' if self.side < 0 else '≥' if self.side > 0 else ''}{self.value:.2f}×"

    def as_dict(self) -> dict[str, Any]:
        return {"value": round(self.value, 4), "side": self.side}


@dataclass(frozen=True)
class Speedup:
    estimate: Bound
    low: Bound
    high: Bound
    conf: float = 0.95

    def __str__(self) -> str:
        return f"{self.estimate} [{self.low}, {self.high}]"

    def as_dict(self) -> dict[str, Any]:
        return {"estimate": self.estimate.as_dict(), "low": self.low.as_dict(),
                "high": self.high.as_dict(), "conf": self.conf}

    def verdict_at_least(self, target: float) -> Verdict:
        """Met when the whole interval is at or above ``target``, not met when it is wholly
        below, else inconclusive (a censored end only counts in the direction it bounds)."""
        if self.low.value >= target and self.low.side >= 0:
            return "met"
        if self.high.value < target and self.high.side <= 0:
            return "not met"
        return "inconclusive"

    def position(self) -> str:
        """Where the method sits against the frontier: above, below, on it (the interval
        contains 1×), or, when the estimate is censored and the interval still allows 1×,
        outside the frontier's budgets (less accurate than its cheapest run for less cost, or
        more accurate than its dearest for more: the frontier cannot place it)."""
        v = self.verdict_at_least(1.0)
        if v == "met":
            return "above"
        if self.high.value < 1.0 and self.high.side <= 0:
            return "below"
        return "outside its budgets" if self.estimate.side else "on"


def cost_to_reach(costs: Sequence[float], accs: Sequence[float],
                  target: float) -> tuple[float, int]:
    """The cost at which a frontier (costs ascending, accuracy at each) reaches ``target``:
    ``(cost, 0)`` when interpolated, ``(smallest cost, −1)`` when even the smallest budget
    reaches it, ``(largest cost, +1)`` when no budget does."""
    c = np.asarray(costs, dtype=float)
    a = np.maximum.accumulate(np.asarray(accs, dtype=float))
    if len(c) == 0 or np.any(np.diff(c) <= 0) or np.any(c <= 0):
        raise ValueError("cost_to_reach: costs must be positive and strictly ascending")
    if target <= a[0]:
        return float(c[0]), -1
    if target > a[-1]:
        return float(c[-1]), 1
    j = int(np.argmax(a >= target))
    if target == a[j]:
        return float(c[j]), 0
    w = (target - a[j - 1]) / (a[j] - a[j - 1])
    return float(math.exp(math.log(c[j - 1]) + w * (math.log(c[j]) - math.log(c[j - 1])))), 0


class Resampled:
    """Accuracy of each model on the observed test examples and on ``draws`` bootstrap
    resamples of them and of the seeds. ``correct`` maps a model to a seeds × examples 0/1
    matrix; all models are cut to their common prefix of examples. Row i is seed i for every
    model (runs of one seed share its warm-up model and data order), so models with the same
    seeds get the same seed resample, as the paired Δ intervals treat them.

    With ``gap`` (per model, a seeds × m matrix of strong-attack minus cheap-attack
    correctness on the first m examples: −1, 0 or +1), each accuracy is the two-phase
    calibrated one, the cheap tier's mean over every example plus the mean gap on the subset
    (:func:`robustprune.stats.two_phase`): the frontier is then read on the trusted scale, not
    on the attack that over-states some models more than others. A resample draws the
    examples of both phases (the subset independently of the whole, the same draws for every
    model); the covariance this ignores is of order m/n of the gap's variance."""

    def __init__(self, correct: Mapping[str, np.ndarray], draws: int = DRAWS,
                 seed: int = 0, gap: Mapping[str, np.ndarray] | None = None) -> None:
        mats = {k: np.atleast_2d(np.asarray(v, dtype=bool)) for k, v in correct.items()}
        n = min(m.shape[1] for m in mats.values())
        if n == 0:
            raise ValueError("Resampled: no test examples")
        mats = {k: m[:, :n] for k, m in mats.items()}
        gaps: dict[str, np.ndarray] = {}
        m_sub = 0
        if gap is not None:
            if set(gap) != set(mats):
                raise ValueError("Resampled: gap must be given for every model or none")
            gaps = {k: np.atleast_2d(np.asarray(v, dtype=float)) for k, v in gap.items()}
            m_sub = min(g.shape[1] for g in gaps.values())
            if m_sub == 0:
                raise ValueError("Resampled: an empty calibration subset")
            gaps = {k: g[:, :m_sub] for k, g in gaps.items()}
            for k, g in gaps.items():
                if len(g) != len(mats[k]):
                    raise ValueError(f"Resampled: {k} has {len(mats[k])} seeds but "
                                     f"{len(g)} calibration rows")
        self.calibrated = bool(gaps)
        self.point = {k: float(m.mean()) + (float(gaps[k].mean()) if gaps else 0.0)
                      for k, m in mats.items()}
        self.draws = {k: np.empty(draws) for k in mats}
        rng = np.random.default_rng(seed)
        counts = sorted({len(m) for m in mats.values()})
        for b in range(draws):
            idx = rng.integers(0, n, n)
            rows = {s: rng.integers(0, s, s) if s > 1 else slice(None) for s in counts}
            sub = rng.integers(0, m_sub, m_sub) if gaps else None
            for k, m in mats.items():
                r = rows[len(m)]
                value = m[r][:, idx].mean()
                if gaps:
                    value += gaps[k][r][:, sub].mean()
                self.draws[k][b] = value


def _order_bound(values: np.ndarray, sides: np.ndarray, q: float) -> Bound:
    order = np.lexsort((sides, values))
    k = order[min(len(order) - 1, max(0, math.floor(q * (len(order) - 1))))]
    return Bound(float(values[k]), int(sides[k]))


def effective_speedup(frontier: Sequence[tuple[str, float]], method: str, cost: float,
                      acc: Resampled, conf: float = 0.95) -> Speedup:
    """Effective speed-up of ``method`` (spending ``cost``) against ``frontier``, a list of
    (model, cost) pairs with at least two distinct costs."""
    points = sorted(frontier, key=lambda p: p[1])
    costs = [c for _, c in points]

    def ratio(accs: list[float], target: float) -> tuple[float, int]:
        reach, side = cost_to_reach(costs, accs, target)
        return reach / cost, side

    est = ratio([acc.point[m] for m, _ in points], acc.point[method])
    n = len(acc.draws[method])
    values, sides = np.empty(n), np.empty(n, dtype=int)
    for b in range(n):
        values[b], sides[b] = ratio([float(acc.draws[m][b]) for m, _ in points],
                                    float(acc.draws[method][b]))
    alpha = (1 - conf) / 2
    return Speedup(Bound(*est), _order_bound(values, sides, alpha),
                   _order_bound(values, sides, 1 - alpha), conf)


def first_reaching(history: Sequence[Mapping[str, float]], target: float,
                   key: str = "val_pgd_acc") -> dict[str, float] | None:
    """The first epoch whose validation accuracy reaches ``target``: its epoch, cumulative
    passes and seconds (None if none does)."""
    for i, row in enumerate(history):
        if row.get(key, float("-inf")) >= target:
            return {"epoch": row.get("epoch", i + 1), "passes": row.get("cum_passes", math.nan),
                    "seconds": row.get("cum_seconds", math.nan)}
    return None
