"""Confidence intervals and verdicts for the report: accuracies and paired differences.

Why this module exists. The report compares every method with the ``full`` baseline, and a
difference of a point or less decides a target. Every model is evaluated on the *same* test
examples, so the comparison is paired: two models mostly agree example by example, and the
uncertainty of their difference comes from the examples on which they disagree, not from the
two accuracies separately. Treating the two accuracies as independent would double-count the
shared test-sample noise and give intervals several times too wide to resolve a point.

What is here.

- :func:`wilson`: one proportion (an accuracy) from one run. The Wilson score interval keeps
  close to nominal coverage at the ends of [0, 1], where the Wald interval collapses to zero
  width (0 % or 100 % robust accuracy on a small subset).
- :func:`paired_difference`: Δ = mean(a) − mean(b) over the same examples, by Newcombe's
  (1998) hybrid score method 10 for paired proportions, which behaves well for small counts
  and for Δ near the ends, where the paired Wald interval does not.
- :func:`seeds_difference` / :func:`seeds_proportion`: the same quantities over several
  training seeds, where training noise (seed to seed) adds to test-sample noise.
- :func:`two_phase` / :func:`seeds_two_phase`: a cheap per-example figure on the whole test
  set corrected by the trusted-minus-cheap gap measured on a subset (AutoAttack calibration).
- :func:`verdict_at_least`: met / not met / inconclusive against a target, read from the
  interval, so that a verdict is never claimed that the data cannot support.

All numbers are proportions (0.01 = one percentage point). Inputs are per-example booleans
(robust-correct or not); outputs are plain Python floats.
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


def _common_n(vectors: list[np.ndarray]) -> int:
    lengths = {len(v) for v in vectors}
    if len(lengths) != 1:
        raise ValueError(f"all seeds must be evaluated on the same test examples; "
                         f"got lengths {sorted(lengths)}")
    return lengths.pop()


@dataclass(frozen=True)
class Crossed:
    """A per-seed estimate averaged over S seeds with the half-width of its interval, under
    the crossed example × seed model (see :func:`crossed`)."""

    estimate: float
    half: float
    var: float
    df: float
    seed_var: float
    """The moment estimate of the training (seed-to-seed) variance of one seed's estimate,
    truncated at 0; 0 for one seed, which cannot estimate it."""

    def interval(self, n: int, seeds: int, method: str, lo: float = -1.0,
                 hi: float = 1.0) -> Interval:
        return Interval(estimate=self.estimate, low=_clip(self.estimate - self.half, lo, hi),
                        high=_clip(self.estimate + self.half, lo, hi), n=n, seeds=seeds,
                        method=method)


PIVOT_SEEDS = 3
"""Up to this many seeds the interval is the generalized pivot; above it, t with
Satterthwaite's df (measured coverage at nominal 95 % in tests/test_stats_coverage.py)."""
PIVOT_DRAWS = 8_000
"""Monte-Carlo draws of the two-seed generalized pivot (fixed seed: same data, same interval;
its 95 % quantile moves by about 1 % of the half-width between draws of this size)."""


def _satterthwaite(terms: list[tuple[float, float]]) -> float:
    """Welch-Satterthwaite degrees of freedom of Σ term, each (value, its df): a sum of
    mean squares with coefficients, negative ones included. Terms with no df are exact."""
    total = sum(v for v, _ in terms)
    denom = sum(v * v / df for v, df in terms if df > 0 and v != 0.0)
    if total <= 0.0 or denom <= 0.0:
        return math.inf
    return max(1.0, total * total / denom)


def _pivot_half(seed_ms: float, resid: list[tuple[float, float]],
                test: list[tuple[float, float]], s_count: int, conf: float) -> float:
    """Half-width from the generalized pivotal quantity (Weerahandi 1993) of the crossed
    model: each mean square M with ν df is replaced by M·ν/χ²_ν, the seed variance by
    max(seed − residual, 0), and the interval is the ``conf`` quantile of |Z|·√(var*).
    Used for two and three seeds, where the seed spread has one or two df: a moment estimate
    is then often near 0 (the seeds happened to agree), Satterthwaite's df jumps up with it,
    and its interval under-covers when training noise dominates (measured: 87 % for two
    seeds, 92 % for three, at nominal 95 %). The pivot does not, at the price of covering up
    to 99.6 % when test-sample noise dominates: with one or two df no interval tells the two
    regimes apart, and a verdict must not be claimed that the data cannot support."""
    rng = np.random.default_rng(0x5EED)
    k = s_count - 1
    seed = seed_ms * k / rng.chisquare(k, PIVOT_DRAWS)
    for v, df in resid:
        seed = seed - v * df / rng.chisquare(df, PIVOT_DRAWS)
    var = np.maximum(seed, 0.0) / s_count
    for v, df in test:
        var = var + v * df / rng.chisquare(df, PIVOT_DRAWS)
    draws = np.abs(rng.standard_normal(PIVOT_DRAWS)) * np.sqrt(var)
    return float(np.quantile(draws, conf))


def crossed(strata: list[np.ndarray], conf: float = 0.95) -> Crossed:
    """Mean over seeds of T_s = Σ_h Σ_i z[h][s, i], each stratum ``z[h]`` an (S, n_h) array of
    per-example contributions (every seed on the same examples), with an interval for the
    population value over test examples *and* training seeds.

    Why this model. Each per-example outcome is z_si = μ + a_s + b_i + e_si: a_s the training
    seed's effect, b_i the example's (shared by every seed, since all are scored on the same
    test set), e_si their interaction. The mean over S seeds and n examples has variance
    σ_a²/S + σ_b²/n + σ_e²/(nS). The naive s²/S + mean per-seed test variance counts σ_e²/n
    twice (once inside the seeds' spread s², once inside each seed's test variance) and puts
    σ_b² under a t quantile with S − 1 df although it is estimated from n examples. Here, per
    stratum, from the mean squares of a two-way table without replication:

    - test term: n_h · var_i(z̄_i), the variance of the per-example averages over seeds,
      which holds σ_b² and σ_e²/S (n_h − 1 df);
    - seed term: (s²_T − Σ_h n_h · MSE_h) / S, the seeds' spread of T_s less the part of it
      that is example × seed interaction (a moment estimate, truncated at 0);
    - up to :data:`PIVOT_SEEDS` seeds, the generalized pivot of :func:`_pivot_half` (one or
      two df cannot bound the seed variance); more, t with Satterthwaite's df over those
      mean squares.

    One seed: the stratified test variance Σ_h n_h · var(z_h) with its Satterthwaite df; the
    seed term cannot be estimated from one seed, so that interval is conditional on the seed
    (it covers that seed's model, not the method), and the report says how many seeds ran.
    Strata let the two-phase estimator (a subset and the rest) use the same model.
    Coverage of all of this is checked by simulation in the tests.
    """
    _check_conf(conf)
    arrays = [np.asarray(z, dtype=float) for z in strata]
    if not arrays or any(z.ndim != 2 for z in arrays):
        raise ValueError("crossed needs (seeds, examples) arrays")
    s_count = arrays[0].shape[0]
    if s_count < 1 or any(z.shape[0] != s_count for z in arrays):
        raise ValueError("crossed needs the same seeds (>= 1) in every stratum")
    t = sum(z.sum(axis=1) for z in arrays)
    estimate = float(np.mean(t))
    test: list[tuple[float, float]] = []
    resid: list[tuple[float, float]] = []
    for z in arrays:
        n_h = z.shape[1]
        if n_h < 2:
            continue
        zbar = z.mean(axis=0)
        test.append((n_h * float(zbar.var(ddof=1)), n_h - 1.0))
        if s_count > 1:
            r = z - zbar[None, :] - z.mean(axis=1)[:, None] + z.mean()
            mse = float((r * r).sum()) / ((s_count - 1) * (n_h - 1))
            resid.append((n_h * mse, (s_count - 1.0) * (n_h - 1.0)))
    s2 = float(np.var(t, ddof=1)) if s_count > 1 else 0.0
    seed_var = max(0.0, s2 - sum(v for v, _ in resid))
    terms = list(test)
    if seed_var > 0.0:
        terms += [(s2 / s_count, s_count - 1.0)] + [(-v / s_count, df) for v, df in resid]
    var = max(sum(v for v, _ in terms), 0.0)
    df = _satterthwaite(terms)
    if 2 <= s_count <= PIVOT_SEEDS:
        half = _pivot_half(s2, resid, test, s_count, conf)
    else:
        half = _t(conf, df) * math.sqrt(var)
    return Crossed(estimate=estimate, half=half, var=var, df=df, seed_var=seed_var)


def _stack(vectors: list[np.ndarray]) -> np.ndarray:
    return np.stack([np.asarray(v, dtype=float) for v in vectors])


def seeds_difference(pairs: list[tuple[np.ndarray, np.ndarray]],
                     conf: float = 0.95) -> Interval:
    """Paired Δ = mean(a) − mean(b) over S training seeds, one (a, b) pair per seed, every seed
    evaluated on the same test examples.

    One pair is :func:`paired_difference` (conditional on the seed). For S >= 2 the estimate
    is the mean of the per-seed Δ_s and its interval comes from the crossed example × seed
    model of :func:`crossed` on the per-example differences a − b: the test-sample term from
    the per-example averages over seeds, the training term from the seeds' spread less its
    example × seed part, t with Satterthwaite df (method "seeds-crossed"). Its coverage of the
    population Δ (new test examples, new seeds) is checked by simulation in the tests, in
    test-noise- and seed-noise-dominated settings.
    """
    if not pairs:
        raise ValueError("seeds_difference needs at least one (a, b) pair")
    if len(pairs) == 1:
        return paired_difference(pairs[0][0], pairs[0][1], conf)
    for a, b in pairs:
        _cells(a, b)  # each pair: 1-D booleans of one length
    n = _common_n([a for a, _ in pairs])
    d = _stack([_as_bool(a, "a").astype(float) - _as_bool(b, "b") for a, b in pairs])
    return crossed([d / n], conf).interval(n, len(pairs), "seeds-crossed")


def paired_share_difference(pairs: list[tuple[np.ndarray, np.ndarray]],
                            conf: float = 0.95) -> Interval:
    """Paired Δ = mean(a) − mean(b) for per-example *shares* in [0, 1] (e.g. the fraction of an
    example's 75 corrupted copies a model gets right), one (a, b) pair per seed, every seed on
    the same test examples.

    The examples are the independent units (an example's corrupted copies are not independent
    of each other). One seed: Δ ± t_{n−1}·sd(d)/√n over d = a − b per example (method
    "paired-t"). S >= 2 seeds: the crossed example × seed model of :func:`crossed` (method
    "seeds-crossed"), as for :func:`seeds_difference`.
    """
    if not pairs:
        raise ValueError("paired_share_difference needs at least one (a, b) pair")
    diffs = []
    for i, (a, b) in enumerate(pairs):
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        if a.ndim != 1 or a.shape != b.shape or len(a) < 2:
            raise ValueError(f"pair {i}: need two 1-D vectors of the same length >= 2, got "
                             f"{a.shape} and {b.shape}")
        if np.any((a < 0) | (a > 1) | (b < 0) | (b > 1)):
            raise ValueError(f"pair {i}: shares must lie in [0, 1]")
        diffs.append(a - b)
    n = _common_n(diffs)
    method = "paired-t" if len(diffs) == 1 else "seeds-crossed"
    return crossed([_stack(diffs) / n], conf).interval(n, len(diffs), method)


def share_mean(xs: list[np.ndarray], conf: float = 0.95) -> Interval:
    """Mean of per-example shares in [0, 1] (e.g. of an example's corrupted copies classified
    right) over S seeds on the same examples: t_{n−1}·sd/√n for one seed (method "t"),
    else the crossed model of :func:`paired_share_difference` (method "seeds-crossed")."""
    iv = paired_share_difference([(np.asarray(x, dtype=float), np.zeros(len(x))) for x in xs],
                                 conf)
    return Interval(estimate=iv.estimate, low=_clip(iv.low, 0.0, 1.0),
                    high=_clip(iv.high, 0.0, 1.0), n=iv.n, seeds=iv.seeds,
                    method="t" if iv.seeds == 1 else iv.method)


def seeds_proportion(xs: list[np.ndarray], conf: float = 0.95) -> Interval:
    """Accuracy over S seeds, each a per-example boolean vector over the same test examples.

    One seed is :func:`wilson`. For S >= 2: the mean of the per-seed accuracies with the
    crossed example × seed interval of :func:`crossed`, clipped to [0, 1] (method
    "seeds-crossed"): the test-sample term does not shrink with S (every seed sees the same
    examples), the training term does.
    """
    if not xs:
        raise ValueError("seeds_proportion needs at least one seed")
    vecs = [_as_bool(x, f"xs[{i}]") for i, x in enumerate(xs)]
    n = _common_n(vecs)
    if n == 0:
        raise ValueError("seeds_proportion needs at least one example")
    if len(vecs) == 1:
        return wilson(int(np.count_nonzero(vecs[0])), n, conf)
    return crossed([_stack(vecs) / n], conf).interval(n, len(vecs), "seeds-crossed", 0.0,
                                                        1.0)


def _two_phase_strata(parts: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """The two strata of the two-phase estimator over seeds: the subset, where an example
    contributes p/N + c/n, and the rest, where it contributes p/N (see :func:`two_phase`)."""
    ps = [np.asarray(p, dtype=float) for p, _ in parts]
    cs = [np.asarray(c, dtype=float) for _, c in parts]
    if any(p.ndim != 1 or len(p) == 0 for p in ps) or any(c.ndim != 1 for c in cs):
        raise ValueError("two_phase needs 1-D vectors and at least one example")
    big, small = _common_n(ps), _common_n(cs)
    if small > big:
        raise ValueError(f"two_phase: the subset ({small}) is larger than the set ({big})")
    sub = _stack([p[:small] / big + (c / small if small else 0.0) for p, c in zip(ps, cs,
                                                                               strict=True)])
    rest = _stack([p[small:] / big for p in ps])
    return [sub, rest]


def two_phase(p: np.ndarray, c: np.ndarray, conf: float = 0.95) -> Interval:
    """mean(p) over N examples corrected by mean(c) over a subset of n of them (the first n).

    Why: the trusted attack (AutoAttack) is too slow for the whole test set, the cheap one
    (PGD-k) is not. With p = the cheap figure per example (or a paired difference of it) on
    all N examples and c = trusted − cheap on the n examples both ran on, mean(p) + mean(c)
    estimates the trusted figure on all N (two-phase sampling, the "difference estimator").
    Its variance is small when the two attacks agree on most examples, because c is then
    mostly 0: far smaller than the trusted figure's own variance on n examples.

    The variance treats the subset and the rest as two strata, each a random sample:
    Var = n·s²(p_i/N + c_i/n over the subset) + (N − n)·s²(p_i/N over the rest). With
    n = N it is the plain variance of mean(p + c); with n = 0, that of mean(p). Student t with
    the strata's Satterthwaite df (close to normal unless one small stratum dominates); the
    estimate is not clipped (a difference can be negative). Assumes the subset is a random
    sample of the N examples (the test set's order carries no information).
    """
    return seeds_two_phase([(p, c)], conf)


def seeds_two_phase(parts: list[tuple[np.ndarray, np.ndarray]],
                    conf: float = 0.95) -> Interval:
    """:func:`two_phase` over S seeds on the same examples, with the crossed example × seed
    model of :func:`crossed` applied to its two strata (method "two-phase-crossed"; one seed
    is :func:`two_phase`, method "two-phase")."""
    if not parts:
        raise ValueError("seeds_two_phase needs at least one (p, c) pair")
    method = "two-phase" if len(parts) == 1 else "two-phase-crossed"
    return crossed(_two_phase_strata(parts), conf).interval(
        len(parts[0][0]), len(parts), method, -math.inf, math.inf)  # a Δ: not clipped


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1, the unbiased-variance convention used for
    seed-to-seed spread); the std of a single value is reported as 0.0, not NaN, so that a
    one-seed run still serialises to valid JSON."""
    if len(values) == 0:
        raise ValueError("mean_std needs at least one value")
    arr = np.asarray(values, dtype=float)
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    return mean, std


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
