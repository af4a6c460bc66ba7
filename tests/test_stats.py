"""Tests for robustprune.stats: Wilson and Newcombe paired intervals checked against
step-by-step hand computations and scipy, the multi-seed intervals against their formulas,
verdict boundaries, and the paired interval's coverage by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest, norm
from scipy.stats import t as student_t

from robustprune.stats import (
    Z95,
    Interval,
    crossed,
    mean_std,
    paired_difference,
    seeds_difference,
    seeds_proportion,
    verdict_at_least,
    wilson,
)


def table(a11: int, a10: int, a01: int, a00: int) -> tuple[np.ndarray, np.ndarray]:
    """Two boolean vectors whose paired 2x2 table is (both, only a, only b, neither)."""
    a = np.array([True] * a11 + [True] * a10 + [False] * a01 + [False] * a00)
    b = np.array([True] * a11 + [False] * a10 + [True] * a01 + [False] * a00)
    return a, b


def wilson_by_hand(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Closed-form Wilson score bounds: (p + z²/2n ∓ z·sqrt(p(1−p)/n + z²/4n²)) / (1 + z²/n)."""
    p = k / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n), (centre + spread) / (1 + z * z / n)


def newcombe_by_hand(a11: int, a10: int, a01: int, a00: int) -> tuple[float, float, float]:
    """Newcombe (1998) method 10, written out step by step from the cell counts."""
    n = a11 + a10 + a01 + a00
    p1, p2 = (a11 + a10) / n, (a11 + a01) / n
    l1, u1 = wilson_by_hand(a11 + a10, n)
    l2, u2 = wilson_by_hand(a11 + a01, n)
    cross = a11 * a00 - a10 * a01
    margins = (a11 + a10) * (a01 + a00) * (a11 + a01) * (a10 + a00)
    if margins == 0:
        phi = 0.0
    elif cross > n / 2:
        phi = (cross - n / 2) / math.sqrt(margins)
    elif cross >= 0:
        phi = 0.0
    else:
        phi = cross / math.sqrt(margins)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2)
    return d, low, high


# --- wilson -------------------------------------------------------------------------------


def test_z95_is_the_normal_quantile():
    assert norm.ppf(0.975) == pytest.approx(Z95, abs=1e-15)


def test_wilson_hand_case_and_scipy():
    iv = wilson(81, 263)
    lo, hi = wilson_by_hand(81, 263)
    assert (round(iv.low, 4), round(iv.high, 4)) == (0.2553, 0.3662)
    assert iv.low == pytest.approx(lo, abs=1e-12)
    assert iv.high == pytest.approx(hi, abs=1e-12)
    ci = binomtest(81, 263).proportion_ci(method="wilson")
    assert iv.low == pytest.approx(ci.low, abs=1e-12)
    assert iv.high == pytest.approx(ci.high, abs=1e-12)
    assert iv.estimate == pytest.approx(81 / 263)
    assert (iv.n, iv.seeds, iv.method) == (263, 1, "wilson")


@pytest.mark.parametrize(("k", "n", "conf"), [(0, 7, 0.95), (3, 7, 0.95), (7, 7, 0.95),
                                              (450, 1000, 0.9), (1, 50, 0.99)])
def test_wilson_matches_scipy(k, n, conf):
    iv = wilson(k, n, conf)
    ci = binomtest(k, n).proportion_ci(confidence_level=conf, method="wilson")
    assert (iv.low, iv.high) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_wilson_edges_stay_in_unit_interval():
    zero, full = wilson(0, 20), wilson(20, 20)
    assert zero.low == 0.0 and 0.0 < zero.high < 1.0
    assert full.high == 1.0 and 0.0 < full.low < 1.0
    assert zero.high == pytest.approx(1.0 - full.low, abs=1e-12)


def test_wilson_rejects_bad_counts():
    with pytest.raises(ValueError, match="n > 0"):
        wilson(0, 0)
    with pytest.raises(ValueError, match="k <= n"):
        wilson(5, 4)
    with pytest.raises(ValueError, match="conf"):
        wilson(1, 4, conf=1.0)


# --- paired_difference --------------------------------------------------------------------


def test_paired_difference_hand_case():
    # a11=30, a10=12, a01=4, a00=54, n=100: p1=0.42, p2=0.34, Δ=0.08.
    a, b = table(30, 12, 4, 54)
    n, z = 100, Z95
    l1, u1 = wilson_by_hand(42, n, z)
    l2, u2 = wilson_by_hand(34, n, z)
    # phi: numerator 30·54 − 12·4 = 1572 > n/2, so Newcombe's correction makes it 1572 − 50.
    phi = (1572 - 50) / math.sqrt(42 * 58 * 34 * 66)
    assert phi == pytest.approx(0.650976, abs=1e-6)
    low = 0.08 - math.sqrt((0.42 - l1) ** 2 - 2 * phi * (0.42 - l1) * (u2 - 0.34)
                           + (u2 - 0.34) ** 2)
    high = 0.08 + math.sqrt((u1 - 0.42) ** 2 - 2 * phi * (u1 - 0.42) * (0.34 - l2)
                            + (0.34 - l2) ** 2)
    iv = paired_difference(a, b)
    assert iv.estimate == pytest.approx(0.08, abs=1e-12)
    assert iv.low == pytest.approx(low, abs=1e-12)
    assert iv.high == pytest.approx(high, abs=1e-12)
    assert (round(iv.low, 4), round(iv.high, 4)) == (0.0008, 0.1574)
    assert (iv.n, iv.seeds, iv.method) == (100, 1, "newcombe-paired")
    assert iv.contains(iv.estimate)


@pytest.mark.parametrize("cells", [
    (5, 20, 25, 50),   # negative association: phi used uncorrected
    (11, 20, 20, 40),  # 0 <= a11·a00 − a10·a01 <= n/2: phi = 0
    (400, 60, 30, 510),  # large n, strong positive association
    (0, 3, 1, 6),      # a zero cell
    (9, 0, 0, 0),      # both always right: a zero margin, phi = 0
])
def test_paired_difference_matches_step_by_step(cells):
    d, low, high = newcombe_by_hand(*cells)
    iv = paired_difference(*table(*cells))
    assert (iv.estimate, iv.low, iv.high) == pytest.approx((d, low, high), abs=1e-12)
    assert iv.low <= iv.estimate <= iv.high


def test_paired_difference_pairing_narrows_the_interval():
    # Same marginals (p1=0.46, p2=0.40), strongly agreeing vs unrelated models.
    agree = paired_difference(*table(400, 60, 0, 540))
    unrelated = paired_difference(*table(184, 276, 216, 324))
    assert agree.estimate == pytest.approx(unrelated.estimate)
    assert agree.high - agree.low < 0.6 * (unrelated.high - unrelated.low)


def test_paired_difference_sign_and_symmetry():
    a, b = table(30, 12, 4, 54)
    ab, ba = paired_difference(a, b), paired_difference(b, a)
    assert ab.estimate > 0 > ba.estimate
    assert (ba.low, ba.high) == pytest.approx((-ab.high, -ab.low), abs=1e-12)


def test_paired_difference_identical_vectors():
    a = np.array([True] * 60 + [False] * 40)
    iv = paired_difference(a, a.copy())
    assert iv.estimate == 0.0
    assert math.isfinite(iv.low) and math.isfinite(iv.high)
    assert iv.low < 0.0 < iv.high and iv.contains(0.0)
    assert iv.high - iv.low < 0.05


def test_paired_difference_accepts_zero_one_and_rejects_garbage():
    a, b = table(30, 12, 4, 54)
    iv = paired_difference(a.astype(np.int64), b.astype(np.int64))
    assert iv == paired_difference(a, b)
    with pytest.raises(ValueError, match="booleans"):
        paired_difference(a * 0.5, b)
    with pytest.raises(ValueError, match="1-D"):
        paired_difference(a.reshape(10, 10), b.reshape(10, 10))
    with pytest.raises(ValueError, match="at least one"):
        paired_difference(np.array([], bool), np.array([], bool))


def test_paired_difference_length_mismatch_names_both_lengths():
    with pytest.raises(ValueError, match=r"len\(a\)=5 != len\(b\)=4"):
        paired_difference(np.ones(5, bool), np.ones(4, bool))


def _half_width(iv: Interval) -> float:
    return max(iv.estimate - iv.low, iv.high - iv.estimate)


def test_resolution_target_needs_ten_thousand_examples():
    # 15 % discordant pairs, split evenly, around 50 % robust accuracy.
    big = paired_difference(*table(4250, 750, 750, 4250))
    small = paired_difference(*table(425, 75, 75, 425))
    assert _half_width(big) < 0.01
    assert _half_width(small) > 0.01


def test_paired_difference_coverage_by_simulation():
    rng = np.random.default_rng(20240917)
    probs = np.array([0.55, 0.10, 0.05, 0.30])  # true Δ = 0.10 − 0.05
    counts = rng.multinomial(400, probs, size=2000)
    hits = sum(paired_difference(*table(*map(int, c))).contains(0.05) for c in counts)
    assert 0.93 <= hits / len(counts) <= 0.97


# --- several seeds ------------------------------------------------------------------------


def _anova_by_hand(z: np.ndarray) -> tuple[float, float, float]:
    """The crossed model's variance, Satterthwaite df and estimate, written out with loops
    from the mean squares of a two-way table without replication (one stratum)."""
    seeds, n = z.shape
    grand = sum(z[s, i] for s in range(seeds) for i in range(n)) / (seeds * n)
    col = [sum(z[s, i] for s in range(seeds)) / seeds for i in range(n)]
    row = [sum(z[s, i] for i in range(n)) / n for s in range(seeds)]
    ms_ex = seeds * sum((c - grand) ** 2 for c in col) / (n - 1)
    ms_seed = n * sum((r - grand) ** 2 for r in row) / (seeds - 1)
    mse = sum((z[s, i] - col[i] - row[s] + grand) ** 2
              for s in range(seeds) for i in range(n)) / ((seeds - 1) * (n - 1))
    var = (ms_ex + ms_seed - mse) / (n * seeds)
    parts = [(ms_ex, n - 1), (ms_seed, seeds - 1), (-mse, (seeds - 1) * (n - 1))]
    df = var**2 / sum((m / (n * seeds)) ** 2 / f for m, f in parts)
    return var, df, grand


def test_seeds_difference_five_seeds_by_hand():
    """Five seeds: the crossed example × seed mean squares, t with Satterthwaite's df."""
    rng = np.random.default_rng(3)
    n = 30
    a = rng.random((5, n)) < np.linspace(0.3, 0.9, 5)[:, None]
    b = rng.random((5, n)) < 0.5
    var, df, grand = _anova_by_hand(a.astype(float) - b)
    assert var > 0 and 1 < df < 200
    iv = seeds_difference([(a[s], b[s]) for s in range(5)])
    half = student_t.ppf(0.975, df) * math.sqrt(var)
    assert iv.estimate == pytest.approx(grand, abs=1e-12)
    assert (iv.low, iv.high) == pytest.approx((grand - half, grand + half), abs=1e-12)
    assert (iv.n, iv.seeds, iv.method) == (n, 5, "seeds-crossed")


def test_crossed_does_not_count_the_test_noise_twice():
    """Seeds that differ only by example × seed noise (no seed effect): the old s²/S + mean
    per-seed variance counted that noise twice; the crossed variance is that of the mean
    over seeds and examples, var(d)/(nS) for independent noise."""
    rng = np.random.default_rng(4)
    z = rng.normal(0.0, 1.0, (8, 4000))
    est = crossed([z / 4000])
    assert est.var == pytest.approx(1.0 / (4000 * 8), rel=0.1)
    naive = z.mean(axis=1).var(ddof=1) / 8 + np.mean(z.var(axis=1, ddof=1)) / 4000
    assert naive > 1.8 * est.var


def test_two_and_three_seeds_use_the_pivot_deterministically():
    rng = np.random.default_rng(5)
    a = rng.random((3, 200)) < 0.6
    b = rng.random((3, 200)) < 0.55
    pairs = [(a[s], b[s]) for s in range(3)]
    one, again = seeds_difference(pairs), seeds_difference(pairs)
    assert one == again and one.method == "seeds-crossed" and one.contains(one.estimate)
    # never narrower than the test-sample interval alone: the seeds add to it
    d = a.astype(float) - b
    assert one.high - one.estimate >= Z95 * math.sqrt(d.mean(axis=0).var(ddof=1) / 200)


def test_seeds_difference_one_seed_is_paired_difference():
    pair = table(30, 12, 4, 54)
    assert seeds_difference([pair]) == paired_difference(*pair)


def test_seeds_difference_test_noise_does_not_shrink_with_seeds():
    # Identical seeds: no training noise; the interval is the test-sample one, ≈ z·SE
    pair = table(425, 75, 75, 425)
    se = math.sqrt((150 / 1000) / 1000)
    for s in (2, 5):
        iv = seeds_difference([pair] * s)
        assert iv.high - iv.estimate == pytest.approx(Z95 * se, rel=0.03)


def test_seeds_difference_rejects_mismatched_seeds():
    with pytest.raises(ValueError, match="same test examples"):
        seeds_difference([table(1, 1, 1, 1), table(1, 1, 1, 2)])
    with pytest.raises(ValueError, match="at least one"):
        seeds_difference([])


def test_seeds_proportion_hand_case():
    rng = np.random.default_rng(6)
    xs = rng.random((4, 100)) < np.array([0.5, 0.6, 0.7, 0.65])[:, None]
    var, df, grand = _anova_by_hand(xs.astype(float))
    half = student_t.ppf(0.975, df) * math.sqrt(var)
    iv = seeds_proportion(list(xs))
    assert iv.estimate == pytest.approx(grand, abs=1e-12)
    assert (iv.low, iv.high) == pytest.approx((grand - half, grand + half), abs=1e-12)
    assert (iv.n, iv.seeds, iv.method) == (100, 4, "seeds-crossed")


def test_seeds_proportion_one_seed_is_wilson_and_clips():
    assert seeds_proportion([np.arange(263) < 81]) == wilson(81, 263)
    wide = seeds_proportion([np.arange(10) < k for k in (0, 10)])
    assert (wide.low, wide.high) == (0.0, 1.0)


def test_mean_std():
    mean, std = mean_std([1.0, 2.0, 3.0, 4.0])
    assert (mean, std) == pytest.approx((2.5, math.sqrt(5 / 3)), abs=1e-12)
    assert mean_std([0.7]) == (0.7, 0.0)
    with pytest.raises(ValueError):
        mean_std([])


# --- interval and verdicts ----------------------------------------------------------------


def _iv(low: float, high: float) -> Interval:
    return Interval(estimate=(low + high) / 2, low=low, high=high, n=100, seeds=1, method="x")


@pytest.mark.parametrize(("low", "high", "target", "expected"), [
    (0.001, 0.02, 0.0, "met"),
    (-0.05, -0.02, -0.01, "not met"),
    (-0.02, 0.01, -0.01, "inconclusive"),
    (-0.01, 0.02, -0.01, "met"),          # low == target
    (-0.03, -0.01, -0.01, "inconclusive"),  # high == target is not below it
])
def test_verdict_at_least(low, high, target, expected):
    assert verdict_at_least(_iv(low, high), target) == expected


def test_interval_as_dict_and_contains():
    iv = Interval(estimate=np.float64(0.123456789), low=-0.0000004, high=0.25, n=7, seeds=2,
                  method="seeds-t")
    d = iv.as_dict()
    assert d == {"estimate": 0.123457, "low": -0.0, "high": 0.25, "n": 7, "seeds": 2,
                 "method": "seeds-t"}
    assert type(d["estimate"]) is float and type(d["n"]) is int
    assert iv.contains(0.25) and iv.contains(-0.0000004) and not iv.contains(0.2500001)


def test_two_phase_hand_case_and_limits() -> None:
    from robustprune.stats import seeds_two_phase, two_phase

    p = np.array([1.0, 0, 1, 1, 0, 1, 1, 0])          # N = 8
    c = np.array([0.0, 0, -1, 0])                      # n = 4: the trusted attack broke one more
    iv = two_phase(p, c)
    assert iv.estimate == pytest.approx(5 / 8 - 1 / 4)
    sub = 4 * (p[:4] / 8 + c / 4).var(ddof=1)
    rest = 4 * (p[4:] / 8).var(ddof=1)
    df = (sub + rest) ** 2 / (sub**2 / 3 + rest**2 / 3)  # Satterthwaite over the two strata
    assert iv.high - iv.estimate == pytest.approx(student_t.ppf(0.975, df)
                                                  * math.sqrt(sub + rest))
    assert iv.low < iv.estimate < iv.high and iv.method == "two-phase" and iv.n == 8
    # n = N: the plain mean of p + c; n = 0: the plain mean of p (t with N − 1 df)
    t7 = student_t.ppf(0.975, 7)
    full = two_phase(p, np.zeros(8) - 0.5)
    assert full.high - full.estimate == pytest.approx(t7 * (p - 0.5).std(ddof=1) / math.sqrt(8))
    none = two_phase(p, np.zeros(0))
    assert none.estimate == pytest.approx(5 / 8)
    assert none.high - none.estimate == pytest.approx(t7 * p.std(ddof=1) / math.sqrt(8))
    with pytest.raises(ValueError, match="larger than the set"):
        two_phase(p[:2], c)
    # several seeds: the mean of the per-seed estimates, the crossed model on the two strata
    rng = np.random.default_rng(7)
    ps = (rng.random((4, 40)) < 0.6).astype(float)
    cs = -(rng.random((4, 10)) < 0.1).astype(float)
    parts = [(ps[s], cs[s]) for s in range(4)]
    many = seeds_two_phase(parts)
    assert many.estimate == pytest.approx(np.mean([two_phase(*x).estimate for x in parts]))
    est = crossed([ps[:, :10] / 40 + cs / 10, ps[:, 10:] / 40])
    assert (many.low, many.high) == pytest.approx((est.estimate - est.half,
                                                   est.estimate + est.half))
    assert many.seeds == 4 and many.method == "two-phase-crossed"
    assert seeds_two_phase([(p, c)]) == iv
    with pytest.raises(ValueError, match="same test examples"):
        seeds_two_phase([(p, c), (p[:6], c)])
