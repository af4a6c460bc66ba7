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


SEED_TABLES = [(10, 4, 1, 5), (11, 2, 2, 5), (9, 5, 0, 6)]  # n = 20 each


def test_seeds_difference_hand_case():
    n, s = 20, 3
    deltas = [(3 / 20), (0 / 20), (5 / 20)]
    mean = sum(deltas) / s
    s2 = sum((d - mean) ** 2 for d in deltas) / (s - 1)
    v = [(5 / 20 - 0.15**2) / n, (4 / 20 - 0.0**2) / n, (5 / 20 - 0.25**2) / n]
    se = math.sqrt(s2 / s + sum(v) / s)
    # Student t with 2 df has a closed-form quantile: t_q = (2q − 1) / sqrt(2q(1 − q)).
    t2 = 0.95 / math.sqrt(2 * 0.975 * 0.025)
    assert round(t2, 4) == 4.3027
    iv = seeds_difference([table(*c) for c in SEED_TABLES])
    assert iv.estimate == pytest.approx(mean, abs=1e-12)
    assert iv.low == pytest.approx(mean - t2 * se, abs=1e-12)
    assert iv.high == pytest.approx(mean + t2 * se, abs=1e-12)
    assert (iv.n, iv.seeds, iv.method) == (20, 3, "seeds-t")


def test_seeds_difference_one_seed_is_paired_difference():
    pair = table(30, 12, 4, 54)
    assert seeds_difference([pair]) == paired_difference(*pair)


def test_seeds_difference_test_noise_does_not_shrink_with_seeds():
    # Identical seeds: no training noise, so the interval is t_{S-1} times the test-sample SE.
    pair = table(425, 75, 75, 425)
    for s in (2, 5):
        iv = seeds_difference([pair] * s)
        se = math.sqrt((150 / 1000) / 1000)
        assert iv.high - iv.estimate == pytest.approx(student_t.ppf(0.975, s - 1) * se)


def test_seeds_difference_rejects_mismatched_seeds():
    with pytest.raises(ValueError, match="same test examples"):
        seeds_difference([table(1, 1, 1, 1), table(1, 1, 1, 2)])
    with pytest.raises(ValueError, match="at least one"):
        seeds_difference([])


def test_seeds_proportion_hand_case():
    xs = [np.arange(100) < k for k in (50, 60, 70)]
    se = math.sqrt(0.01 / 3 + (0.25 + 0.24 + 0.21) / 3 / 100)
    half = student_t.ppf(0.975, 2) * se
    iv = seeds_proportion(xs)
    assert iv.estimate == pytest.approx(0.6, abs=1e-12)
    assert (iv.low, iv.high) == pytest.approx((0.6 - half, 0.6 + half), abs=1e-12)
    assert (round(iv.low, 4), round(iv.high, 4)) == (0.2761, 0.9239)
    assert (iv.n, iv.seeds, iv.method) == (100, 3, "seeds-t")


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
    sub = p[:4] / 8 + c / 4
    var = 4 * sub.var(ddof=1) + 4 * (p[4:] / 8).var(ddof=1)
    assert iv.high - iv.estimate == pytest.approx(Z95 * math.sqrt(var))
    assert iv.low < iv.estimate < iv.high and iv.method == "two-phase" and iv.n == 8
    # n = N: the plain mean of p + c; n = 0: the plain mean of p
    full = two_phase(p, np.zeros(8) - 0.5)
    assert full.high - full.estimate == pytest.approx(Z95 * (p - 0.5).std(ddof=1) / math.sqrt(8))
    none = two_phase(p, np.zeros(0))
    assert none.estimate == pytest.approx(5 / 8)
    assert none.high - none.estimate == pytest.approx(Z95 * p.std(ddof=1) / math.sqrt(8))
    with pytest.raises(ValueError, match="larger than the set"):
        two_phase(p[:2], c)
    # agreement on the subset makes the calibrated interval as narrow as the cheap one
    assert two_phase(p, np.zeros(4)).high == pytest.approx(
        p.mean() + Z95 * math.sqrt(4 * (p[:4] / 8).var(ddof=1) + 4 * (p[4:] / 8).var(ddof=1)))
    # several seeds: mean of estimates, seed spread + mean variance, t with S - 1 df
    parts = [(p, c), (1 - p, c), (p, np.zeros(4))]
    many = seeds_two_phase(parts)
    est = [two_phase(*x).estimate for x in parts]
    var_s = [((two_phase(*x).high - two_phase(*x).estimate) / Z95) ** 2 for x in parts]
    se = math.sqrt(np.var(est, ddof=1) / 3 + np.mean(var_s))
    assert many.estimate == pytest.approx(np.mean(est))
    assert many.high - many.estimate == pytest.approx(student_t.ppf(0.975, 2) * se)
    assert many.seeds == 3 and many.method == "two-phase-seeds-t"
    assert seeds_two_phase([(p, c)]) == iv
