"""Intervals from one run: a proportion (Wilson), a paired difference (Newcombe), verdicts.

Every model is evaluated on the *same* test examples, so a comparison with the baseline is
paired: the uncertainty of a difference comes from the examples on which the two models
disagree, not from the two accuracies separately (see :mod:`robustprune.stats`). This module
holds the one-seed formulas, the :class:`Interval` they return, the quantile helpers the
several-seed model shares, and :func:`verdict_at_least`, which reads a verdict off an interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from scipy import stats as _sps

Z95: float = 1.959963984540054
"""The two-sided 95 % standard-normal quantile, Φ⁻¹(0.975)."""

Verdict = Literal["met", "not met", "inconclusive"]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval, and how it was obtained.

    ``n`` and ``seeds`` travel with the interval so a reader of the JSON can tell a narrow
    interval from many examples from one over many seeds; ``method`` names the formula so
    that figures computed differently are never compared as if they were alike.
    """

    estimate: float
    low: float
    high: float
    n: int
    seeds: int
    method: str

    def as_dict(self) -> dict[str, float | int | str]:
        """JSON-ready, floats rounded to 6 decimals (a millionth of a point is below any
        resolution the report claims, and the rounding keeps diffs of metrics files stable)."""
        return {
            "estimate": round(float(self.estimate), 6),
            "low": round(float(self.low), 6),
            "high": round(float(self.high), 6),
            "n": int(self.n),
            "seeds": int(self.seeds),
            "method": self.method,
        }

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the closed interval [low, high]."""
        return self.low <= value <= self.high


@lru_cache(maxsize=32)
def _z(conf: float) -> float:
    """Two-sided standard-normal quantile for ``conf`` (cached: simulations call it often)."""
    _check_conf(conf)
    return float(_sps.norm.ppf((1.0 + conf) / 2.0))


@lru_cache(maxsize=256)
def _t(conf: float, df: float) -> float:
    """Two-sided Student-t quantile for ``conf`` with ``df`` degrees of freedom (fractional
    under Satterthwaite's approximation); the normal quantile when ``df`` is infinite."""
    _check_conf(conf)
    if not math.isfinite(df):
        return _z(conf)
    return float(_sps.t.ppf((1.0 + conf) / 2.0, df))


def _check_conf(conf: float) -> None:
    if not 0.0 < conf < 1.0:
        raise ValueError(f"conf must be strictly between 0 and 1, got {conf}")


def _clip(x: float, lo: float, hi: float) -> float:
    return float(min(max(x, lo), hi))


def _as_bool(x: np.ndarray, name: str) -> np.ndarray:
    """1-D boolean view of ``x``; 0/1 integers are accepted, anything else is an error
    (a float accuracy passed by mistake would otherwise be silently thresholded)."""
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D vector of per-example booleans, "
                         f"got shape {arr.shape}")
    if arr.dtype != np.bool_:
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name} must hold booleans (or 0/1), got other values")
        arr = arr.astype(bool)
    return arr


def _wilson_bounds(k: int, n: int, z: float) -> tuple[float, float]:
    """Wilson score bounds for k/n with quantile z, clipped to [0, 1] and exact at the ends."""
    p = k / n
    z2n = z * z / n
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n))
    low = 0.0 if k == 0 else _clip(centre - half, 0.0, 1.0)
    high = 1.0 if k == n else _clip(centre + half, 0.0, 1.0)
    return low, high


def wilson(k: int, n: int, conf: float = 0.95) -> Interval:
    """Wilson score interval for the proportion k/n.

    Chosen over the Wald interval p ± z·sqrt(p(1−p)/n) because Wald has zero width at k = 0
    or k = n and under-covers near the ends; robust accuracies on a small AutoAttack subset can
    be near either end. Raises ValueError for n <= 0 or k outside [0, n].
    """
    k, n = int(k), int(n)
    if n <= 0:
        raise ValueError(f"wilson needs n > 0 examples, got n={n}")
    if not 0 <= k <= n:
        raise ValueError(f"wilson needs 0 <= k <= n, got k={k}, n={n}")
    low, high = _wilson_bounds(k, n, _z(conf))
    return Interval(estimate=k / n, low=low, high=high, n=n, seeds=1, method="wilson")


def _cells(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int]:
    """The paired 2x2 table (a11, a10, a01, a00): both right, only a, only b, neither."""
    a = _as_bool(a, "a")
    b = _as_bool(b, "b")
    if len(a) != len(b):
        raise ValueError(f"a and b must cover the same test examples: len(a)={len(a)} "
                         f"!= len(b)={len(b)}")
    if len(a) == 0:
        raise ValueError("paired difference needs at least one example")
    a11 = int(np.count_nonzero(a & b))
    a10 = int(np.count_nonzero(a & ~b))
    a01 = int(np.count_nonzero(~a & b))
    a00 = len(a) - a11 - a10 - a01
    return a11, a10, a01, a00


def _newcombe_phi(a11: int, a10: int, a01: int, a00: int) -> float:
    """Newcombe's estimate of the correlation between the two paired proportions.

    The phi coefficient of the 2x2 table with Newcombe's (1998) continuity correction of the
    numerator: when a11·a00 − a10·a01 is positive it is reduced by n/2 (and set to 0 if that
    makes it negative); a negative numerator is used as it is. The correction matters only for
    small n (the numerator grows like n², the correction like n); it keeps a positively
    associated small table from claiming more correlation, hence a narrower interval, than
    the data support. A zero margin (one model right or wrong everywhere) gives phi = 0.
    """
    n = a11 + a10 + a01 + a00
    denom = float(a11 + a10) * (a01 + a00) * (a11 + a01) * (a10 + a00)
    if denom == 0.0:
        return 0.0
    num = float(a11) * a00 - float(a10) * a01
    if num > n / 2.0:
        num -= n / 2.0
    elif num >= 0.0:
        num = 0.0
    return num / math.sqrt(denom)


def _newcombe_paired(a11: int, a10: int, a01: int, a00: int, conf: float) -> Interval:
    """Newcombe method 10 from the cell counts (see :func:`paired_difference`)."""
    n = a11 + a10 + a01 + a00
    z = _z(conf)
    p1 = (a11 + a10) / n
    p2 = (a11 + a01) / n
    delta = p1 - p2
    l1, u1 = _wilson_bounds(a11 + a10, n, z)
    l2, u2 = _wilson_bounds(a11 + a01, n, z)
    phi = _newcombe_phi(a11, a10, a01, a00)
    d_low = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2.0 * phi * (p1 - l1) * (u2 - p2)
                          + (u2 - p2) ** 2))
    d_high = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2.0 * phi * (u1 - p1) * (p2 - l2)
                           + (p2 - l2) ** 2))
    return Interval(estimate=float(delta), low=_clip(delta - d_low, -1.0, 1.0),
                    high=_clip(delta + d_high, -1.0, 1.0), n=n, seeds=1,
                    method="newcombe-paired")


def paired_difference(a: np.ndarray, b: np.ndarray, conf: float = 0.95) -> Interval:
    """Δ = mean(a) − mean(b) for two per-example boolean vectors over the same examples.

    Positive Δ means ``a`` is right on more examples than ``b``. The interval is Newcombe's
    (1998, Stat Med 17:2635, method 10) hybrid score interval for paired proportions: the
    Wilson bounds (l1, u1) of p1 = mean(a) and (l2, u2) of p2 = mean(b) are combined as

        low  = Δ − sqrt((p1−l1)² − 2·phi·(p1−l1)·(u2−p2) + (u2−p2)²)
        high = Δ + sqrt((u1−p1)² − 2·phi·(u1−p1)·(p2−l2) + (p2−l2)²)

    where phi is the (continuity-corrected) correlation of the paired table; see
    :func:`_newcombe_phi`. Why this method: the pairing enters through phi, so two models that
    agree on most examples get an interval set by their disagreements (far narrower than an
    unpaired one), while the Wilson ingredients keep it inside [−1, 1] and non-degenerate
    when there are few or no discordant examples, where the paired Wald interval has zero
    width. For identical vectors the interval is narrow but not empty and contains 0.

    Raises ValueError when the vectors differ in length (naming both lengths), are empty,
    are not 1-D, or hold values other than booleans / 0 / 1.
    """
    return _newcombe_paired(*_cells(a, b), conf=conf)


def verdict_at_least(interval: Interval, target: float) -> Verdict:
    """Verdict on "the quantity is >= target", read from the interval, not the point estimate.

    "met" when the whole interval clears the target (low >= target, boundary included),
    "not met" when it lies wholly below (high < target), otherwise "inconclusive": the data
    are compatible with both, and saying so is the honest answer. Example: target −0.01 reads
    "at most 1 point below full" for a Δ = method − full.
    """
    if interval.low >= target:
        return "met"
    if interval.high < target:
        return "not met"
    return "inconclusive"
