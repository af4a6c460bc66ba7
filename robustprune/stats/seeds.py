"""Intervals over several training seeds: the crossed example × seed model and its users.

With S seeds scored on the same test examples, training noise (seed to seed) adds to
test-sample noise, and the two must not be double-counted: :func:`crossed` separates them
from the mean squares of the (seed, example) table. The several-seed differences, shares,
proportions and the two-phase (cheap attack corrected on a trusted subset) estimator are
built on it; with one seed each falls back to its one-run formula in
:mod:`robustprune.stats.intervals`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from robustprune.stats.intervals import (
    Interval,
    _as_bool,
    _cells,
    _check_conf,
    _clip,
    _t,
    paired_difference,
    wilson,
)


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


def _table(strata: list[np.ndarray], conf: float, name: str,
           min_seeds: int) -> tuple[list[np.ndarray], int, np.ndarray]:
    """The strata checked as (seeds, examples) arrays with the same seeds (>= ``min_seeds``),
    their seed count and each seed's T_s = Σ_h Σ_i z[h][s, i]; ``name`` is the caller's, for
    the error."""
    _check_conf(conf)
    arrays = [np.asarray(z, dtype=float) for z in strata]
    if not arrays or any(z.ndim != 2 for z in arrays):
        raise ValueError(f"{name} needs (seeds, examples) arrays")
    s_count = arrays[0].shape[0]
    if s_count < min_seeds or any(z.shape[0] != s_count for z in arrays):
        raise ValueError(f"{name} needs the same seeds (>= {min_seeds}) in every stratum")
    return arrays, s_count, sum(z.sum(axis=1) for z in arrays)


def _interaction(z: np.ndarray) -> tuple[float, float]:
    """One stratum's example × seed interaction as its share of one seed's T_s (n_h · MSE of
    the two-way table without replication) and its df, (S − 1)(n_h − 1)."""
    s_count, n_h = z.shape
    r = z - z.mean(axis=0)[None, :] - z.mean(axis=1)[:, None] + z.mean()
    mse = float((r * r).sum()) / ((s_count - 1) * (n_h - 1))
    return n_h * mse, (s_count - 1.0) * (n_h - 1.0)


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
    arrays, s_count, t = _table(strata, conf, "crossed", 1)
    estimate = float(np.mean(t))
    test: list[tuple[float, float]] = []
    resid: list[tuple[float, float]] = []
    for z in arrays:
        n_h = z.shape[1]
        if n_h < 2:
            continue
        test.append((n_h * float(z.mean(axis=0).var(ddof=1)), n_h - 1.0))
        if s_count > 1:
            resid.append(_interaction(z))
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


def seed_sd(strata: list[np.ndarray], conf: float = 0.95) -> Interval:
    """The training (seed-to-seed) standard deviation σ_a of one seed's T_s = Σ_h Σ_i z[h][s, i]
    under the crossed example × seed model of :func:`crossed`, with a ``conf`` interval; the
    strata are :func:`crossed`'s, S >= 2 seeds on the same examples.

    Why not the plain std of the per-seed figures: with every seed scored on the same test
    examples, that std also holds the example × seed interaction (two models of one method
    disagree on some examples; on 10 000 examples that alone moves an accuracy by a few tenths
    of a point between seeds), which a bigger test set would shrink. σ_a is what remains with
    an infinite test set: how much a method's result depends on its training seed, the figure
    two objectives' stability is compared on. The estimate is the moment estimate √max(s²_T −
    Σ_h n_h · MSE_h, 0) (:attr:`Crossed.seed_var`); the interval the ``(1 ∓ conf)/2``
    quantiles of its generalized pivot (Weerahandi 1993; :func:`_pivot_half`'s draws: each
    mean square M with ν df replaced by M·ν/χ²_ν, truncated at 0), whose coverage is measured
    by simulation in tests/test_stats_coverage.py. With two or three seeds the interval is
    wide (one or two df): that width is the information three seeds hold, not a defect.
    Method "seed-sd-pivot"; n is the examples of all strata together.
    """
    arrays, s_count, t = _table(strata, conf, "seed_sd", 2)
    s2 = float(np.var(t, ddof=1))
    resid = [_interaction(z) for z in arrays if z.shape[1] >= 2]
    rng = np.random.default_rng(0x5EED)
    k = s_count - 1
    draws = s2 * k / rng.chisquare(k, PIVOT_DRAWS)
    for v, df in resid:
        draws = draws - v * df / rng.chisquare(df, PIVOT_DRAWS)
    lo, hi = np.quantile(np.maximum(draws, 0.0), [(1 - conf) / 2, (1 + conf) / 2])
    estimate = math.sqrt(max(0.0, s2 - sum(v for v, _ in resid)))
    return Interval(estimate=estimate, low=math.sqrt(float(lo)), high=math.sqrt(float(hi)),
                    n=sum(z.shape[1] for z in arrays), seeds=s_count, method="seed-sd-pivot")


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


def seeds_two_phase_sd(parts: list[tuple[np.ndarray, np.ndarray]],
                       conf: float = 0.95) -> Interval:
    """:func:`seed_sd` of the two-phase figure of :func:`seeds_two_phase` (e.g. the
    APGD-CE+T-calibrated accuracy): how much one seed's calibrated accuracy depends on the
    training seed, the test-sample noise of both phases taken out. Needs S >= 2 (p, c) pairs."""
    return seed_sd(_two_phase_strata(parts), conf)


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
