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

Uncertainty, by inverting the paired test: a cost c is in the 95 % set when the interval of
D(c) = (method's accuracy − the frontier's interpolated accuracy at c) contains 0. D(c) is a
linear combination of per-example outcomes of the method and the two frontier runs around c
(paired example by example and seed by seed), so its interval is the crossed example × seed
model of :func:`robustprune.stats.crossed` (two-phase when calibrated): with several seeds it
carries the training noise (the generalized pivot up to three seeds, Satterthwaite beyond),
with one seed it is conditional on that seed. The speed-up interval is the set's ends ÷ the
method's cost; an end at the frontier's smallest or largest budget is censored (a bound).
Coverage is checked by simulation (tests/test_frontier.py). No bootstrap: with three seeds it
has only ten distinct seed resamples, too few to bound the training noise of a speed-up.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from robustprune.stats import Interval, Verdict, crossed, seeds_two_phase

GRID = 400
"""Candidate costs per frontier span (log-spaced) at which the paired test is inverted."""


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


class PairedOutcomes:
    """Each model's per-example outcomes on the same test examples and seeds, for paired
    combinations of their accuracies. ``correct`` maps a model to a seeds × examples 0/1
    matrix; all models are cut to their common prefix of examples. Row i is seed i for every
    model (runs of one seed share its warm-up model and data order).

    With ``gap`` (per model, a seeds × m matrix of strong-attack minus cheap-attack
    correctness on the first m examples: −1, 0 or +1), each accuracy is the two-phase
    calibrated one, the cheap tier's mean over every example plus the mean gap on the subset
    (:func:`robustprune.stats.two_phase`): the frontier is then read on the trusted scale, not
    on the attack that over-states some models more than others."""

    def __init__(self, correct: Mapping[str, np.ndarray],
                 gap: Mapping[str, np.ndarray] | None = None) -> None:
        mats = {k: np.atleast_2d(np.asarray(v, dtype=bool)) for k, v in correct.items()}
        n = min(m.shape[1] for m in mats.values())
        if n == 0:
            raise ValueError("PairedOutcomes: no test examples")
        mats = {k: m[:, :n] for k, m in mats.items()}
        gaps: dict[str, np.ndarray] = {}
        if gap is not None:
            if set(gap) != set(mats):
                raise ValueError("PairedOutcomes: gap must be given for every model or none")
            gaps = {k: np.atleast_2d(np.asarray(v, dtype=float)) for k, v in gap.items()}
            m_sub = min(g.shape[1] for g in gaps.values())
            if m_sub == 0:
                raise ValueError("PairedOutcomes: an empty calibration subset")
            gaps = {k: g[:, :m_sub] for k, g in gaps.items()}
            for k, g in gaps.items():
                if len(g) != len(mats[k]):
                    raise ValueError(f"PairedOutcomes: {k} has {len(mats[k])} seeds but "
                                     f"{len(g)} calibration rows")
        self.calibrated = bool(gaps)
        self.correct, self.gap, self.n = mats, gaps, n
        self.point = {k: float(m.mean()) + (float(gaps[k].mean()) if gaps else 0.0)
                      for k, m in mats.items()}

    def combination(self, weights: Mapping[str, float], conf: float = 0.95) -> Interval:
        """Σ_k w_k·accuracy_k with its interval: per example and seed the same combination of
        the models' outcomes (paired), through the crossed example × seed model (two-phase
        when calibrated). Every model must have the same seeds."""
        seeds = {len(self.correct[k]) for k in weights}
        if len(seeds) != 1:
            raise ValueError("combination: the models must have the same seeds")
        (count,) = seeds
        p = sum(w * self.correct[k].astype(float) for k, w in weights.items())
        if self.gap:
            c = sum(w * self.gap[k] for k, w in weights.items())
            return seeds_two_phase([(p[s], c[s]) for s in range(count)], conf)
        return crossed([np.asarray(p, dtype=float) / self.n], conf).interval(
            self.n, count, "crossed", -math.inf, math.inf)


def effective_speedup(frontier: Sequence[tuple[str, float]], method: str, cost: float,
                      acc: PairedOutcomes, conf: float = 0.95) -> Speedup:
    """Effective speed-up of ``method`` (spending ``cost``) against ``frontier``, a list of
    (model, cost) pairs with at least two distinct costs: the point estimate on the frontier's
    running maximum, the interval by inverting the paired test (module docstring)."""
    points = sorted(frontier, key=lambda p: p[1])
    costs = [c for _, c in points]
    reach, side = cost_to_reach(costs, [acc.point[m] for m, _ in points], acc.point[method])
    low, high = inverted_interval(points, method, acc, conf)
    return Speedup(Bound(reach / cost, side), Bound(low[0] / cost, low[1]),
                   Bound(high[0] / cost, high[1]), conf)


def inverted_interval(points: Sequence[tuple[str, float]], method: str, acc: PairedOutcomes,
                      conf: float = 0.95) -> tuple[tuple[float, int], tuple[float, int]]:
    """The ends (cost, censoring side) of the set of costs c where the interval of the
    method's accuracy minus the frontier's log-linear interpolation at c contains 0.

    Scanned on :data:`GRID` log-spaced costs per span between neighbouring budgets. An end at
    the smallest budget is "≤" (the frontier does not reach lower costs), at the largest "≥".
    When no cost is in the set, the method is wholly above (or below) every budget: both ends
    are that budget, censored."""
    inside: list[tuple[float, bool]] = []
    for (m0, c0), (m1, c1) in itertools.pairwise(points):
        if c1 <= c0:
            continue
        for w in np.linspace(0.0, 1.0, GRID, endpoint=(c1 == points[-1][1])):
            weights: dict[str, float] = {method: 1.0}
            weights[m0] = weights.get(m0, 0.0) - (1.0 - w)
            weights[m1] = weights.get(m1, 0.0) - w
            iv = acc.combination(weights, conf)
            c = math.exp(math.log(c0) + w * (math.log(c1) - math.log(c0)))
            inside.append((c, iv.low <= 0.0 <= iv.high))
    smallest, largest = points[0][1], points[-1][1]
    kept = [c for c, ok in inside if ok]
    if not kept:  # the method's accuracy is outside the frontier's range, decisively
        above = acc.point[method] > max(acc.point[m] for m, _ in points)
        end = (largest, 1) if above else (smallest, -1)
        return end, end
    lo, hi = min(kept), max(kept)
    return ((lo, -1) if lo <= smallest * (1 + 1e-9) else (lo, 0),
            (hi, 1) if hi >= largest * (1 - 1e-9) else (hi, 0))


def first_reaching(history: Sequence[Mapping[str, float]], target: float,
                   key: str = "val_pgd_acc") -> dict[str, float] | None:
    """The first epoch whose validation accuracy reaches ``target``: its epoch, cumulative
    passes and seconds (None if none does)."""
    for i, row in enumerate(history):
        if row.get(key, float("-inf")) >= target:
            return {"epoch": row.get("epoch", i + 1), "passes": row.get("cum_passes", math.nan),
                    "seconds": row.get("cum_seconds", math.nan)}
    return None
