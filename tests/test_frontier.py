"""The full-data frontier's arithmetic: interpolation, censoring, paired intervals, verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robustprune.frontier import (
    Bound,
    PairedOutcomes,
    Speedup,
    cost_to_reach,
    effective_speedup,
    first_reaching,
)

COSTS, ACCS = [100.0, 200.0, 400.0], [0.50, 0.60, 0.64]


def test_cost_to_reach_interpolates_in_log_cost():
    # halfway in accuracy between 200 and 400: the geometric mean of the costs
    assert cost_to_reach(COSTS, ACCS, 0.62) == (pytest.approx(math.sqrt(200 * 400)), 0)
    assert cost_to_reach(COSTS, ACCS, 0.60) == (200.0, 0)  # a budget itself: exact


def test_cost_to_reach_is_censored_outside_the_budgets():
    assert cost_to_reach(COSTS, ACCS, 0.45) == (100.0, -1)  # the smallest already does better
    assert cost_to_reach(COSTS, ACCS, 0.70) == (400.0, 1)   # no budget trained gets there


def test_a_dip_in_the_frontier_never_makes_accuracy_cheaper():
    """More budget never buys less: the running maximum is interpolated."""
    assert cost_to_reach(COSTS, [0.50, 0.66, 0.64], 0.65) == (
        pytest.approx(100 * 2 ** (0.15 / 0.16)), 0)


def test_cost_to_reach_rejects_unsorted_costs():
    with pytest.raises(ValueError, match="ascending"):
        cost_to_reach([200.0, 100.0], [0.5, 0.6], 0.55)


def _nested(rates: dict[str, float], n: int = 2000, seeds: int = 1) -> dict[str, np.ndarray]:
    u = np.random.default_rng(0).random(n)
    return {k: np.stack([u < r] * seeds) for k, r in rates.items()}


def test_effective_speedup_and_its_interval():
    acc = PairedOutcomes(_nested({"f1": 0.50, "f2": 0.60, "f4": 0.64, "m": 0.62}))
    sp = effective_speedup([("f1", 100.0), ("f2", 200.0), ("f4", 400.0)], "m", 100.0, acc)
    assert sp.estimate.side == 0
    assert sp.estimate.value == pytest.approx(cost_to_reach(
        COSTS, [acc.point[k] for k in ("f1", "f2", "f4")], acc.point["m"])[0] / 100.0)
    assert sp.low.value < sp.estimate.value < sp.high.value
    assert sp.verdict_at_least(1.5) == "met" and sp.verdict_at_least(4.5) == "not met"
    # paired example by example: m is right on every example f2 is right on, plus 2 %; the
    # paired interval excludes 0 where two independent ones (SE ≈ 1.1 pts each) would not
    diff = acc.combination({"m": 1.0, "f2": -1.0})
    assert 0.0 < diff.low < 0.02 < diff.high < 0.03
    again = PairedOutcomes(_nested({"f1": 0.50, "f2": 0.60, "f4": 0.64, "m": 0.62}))
    assert effective_speedup([("f1", 100.0), ("f2", 200.0), ("f4", 400.0)], "m", 100.0,
                             again) == sp  # deterministic


def test_seeds_widen_the_interval_when_they_disagree():
    one = PairedOutcomes(_nested({"a": 0.6}, seeds=3)).combination({"a": 1.0})
    mats = _nested({"a": 0.6}, seeds=1)["a"]
    spread = np.concatenate([mats, np.roll(mats, 7, axis=1) & (np.arange(mats.shape[1]) % 3
                                                              > 0)[None], mats])
    two = PairedOutcomes({"a": spread}).combination({"a": 1.0})
    assert two.high - two.low > 1.5 * (one.high - one.low)


def test_censored_bounds_only_count_in_the_direction_they_bound():
    below = Speedup(Bound(0.8, -1), Bound(0.8, -1), Bound(0.8, -1))
    assert below.verdict_at_least(1.0) == "not met" and below.position() == "below"
    assert str(below) == "≤0.80× [≤0.80×, ≤0.80×]"
    above = Speedup(Bound(3.0, 1), Bound(2.6, 0), Bound(3.0, 1))
    assert above.verdict_at_least(2.5) == "met" and above.position() == "above"
    # "at least 2×" cannot say the 2.5× target is missed
    assert Speedup(Bound(2.0, 1), Bound(2.0, 1), Bound(2.0, 1)).verdict_at_least(2.5) == (
        "inconclusive")
    # "at most 3×" cannot say it is met
    assert Speedup(Bound(3.0, -1), Bound(3.0, -1), Bound(3.0, -1)).verdict_at_least(2.5) == (
        "inconclusive")
    on = Speedup(Bound(1.1), Bound(0.9), Bound(1.3))
    assert on.position() == "on" and on.verdict_at_least(1.0) == "inconclusive"
    # less accurate than the cheapest frontier run, and cheaper than it: "at most 2×" allows
    # both sides of 1×, so the frontier cannot place the method
    cheap = Speedup(Bound(2.06, -1), Bound(2.06, -1), Bound(2.06, -1))
    assert cheap.position() == "outside its budgets"
    assert cheap.verdict_at_least(1.0) == "inconclusive"


def test_first_reaching_reads_cumulative_cost():
    history = [{"epoch": 1, "val_pgd_acc": 0.4, "cum_passes": 10.0, "cum_seconds": 1.0},
               {"epoch": 2, "val_pgd_acc": 0.55, "cum_passes": 20.0, "cum_seconds": 2.5},
               {"epoch": 3, "val_pgd_acc": 0.5, "cum_passes": 30.0, "cum_seconds": 3.0}]
    assert first_reaching(history, 0.5) == {"epoch": 2, "passes": 20.0, "seconds": 2.5}
    assert first_reaching(history, 0.6) is None


def test_calibrated_accuracy_intervals_cover_the_strong_attacks_accuracy():
    """Coverage simulation of the two-phase reading the frontier is read on: a cheap attack
    on n examples, a stronger one on the first m that breaks 5 % of what the cheap one leaves
    standing. The 95 % interval of the calibrated accuracy covers the stronger attack's true
    accuracy in 93-97 % of draws (400 draws: ±2.2 % at 2 SE on top of that)."""
    rng = np.random.default_rng(7)
    n, m, p_cheap, p_break = 2000, 200, 0.70, 0.05
    truth = p_cheap * (1 - p_break)
    covered, sims = 0, 400
    for _ in range(sims):
        cheap = rng.random(n) < p_cheap
        strong = cheap[:m] & (rng.random(m) >= p_break)
        acc = PairedOutcomes({"a": cheap[None]},
                             gap={"a": (strong.astype(float) - cheap[:m])[None]})
        iv = acc.combination({"a": 1.0})
        lo, hi = iv.low, iv.high
        covered += lo <= truth <= hi
        assert acc.calibrated
    assert 0.91 <= covered / sims <= 0.99, covered / sims


def _draw_frontier(rng: np.random.Generator, seeds: int, seed_sd: float, n: int,
                   gap: bool) -> tuple[PairedOutcomes, float]:
    """One experiment: frontier runs at costs 1, 2, 4 (true accuracies 0.50, 0.60, 0.66) and a
    method at cost 1 with true accuracy 0.57, so its true effective speed-up is 2^0.7. Every
    model and seed sees the same examples (a shared latent difficulty u_i) with its own seed
    effect and per-example noise; with ``gap``, a stronger attack breaks a further 3 % of the
    first n/5 examples (the calibrated, two-phase reading)."""
    truth = {"f1": 0.50, "f2": 0.60, "f4": 0.66, "m": 0.57}
    u = rng.random(n)
    correct, gaps = {}, {}
    for k, t in truth.items():
        t_s = t + 0.03 + rng.normal(0.0, seed_sd, seeds)  # +3 %: what the gap takes back
        correct[k] = (u[None, :] + rng.normal(0.0, 0.05, (seeds, n)) < t_s[:, None])
        if not gap:
            correct[k] = (u[None, :] + rng.normal(0.0, 0.05, (seeds, n)) < (t_s - 0.03)[:, None])
        else:
            m = n // 5
            broken = rng.random((seeds, m)) < 0.03 / (t + 0.03)
            gaps[k] = -(correct[k][:, :m] & broken).astype(float)
    acc = PairedOutcomes(correct, gap=gaps if gap else None)
    return acc, 2 ** 0.7


@pytest.mark.parametrize(("seeds", "seed_sd", "gap", "lo", "hi"), [
    (1, 0.0, False, 0.93, 0.97),    # test noise only: the conditional interval is exact
    (1, 0.0, True, 0.93, 0.97),     # the two-phase (calibrated) reading
    (3, 0.012, False, 0.93, 0.995),  # seed noise as large as test noise: the pivot, conservative
])
def test_effective_speedup_intervals_cover_the_true_speedup(monkeypatch, seeds, seed_sd, gap,
                                                            lo, hi):
    """The inverted paired test covers the true effective speed-up at the nominal 95 %, with
    one seed (test noise) and with three (seed noise included), on PGD and calibrated data."""
    import robustprune.frontier as frontier

    monkeypatch.setattr(frontier, "GRID", 40)
    rng = np.random.default_rng(11 + seeds + 2 * gap)
    hits, draws = 0, 300
    for _ in range(draws):
        acc, true = _draw_frontier(rng, seeds, seed_sd, 800, gap)
        sp = effective_speedup([("f1", 1.0), ("f2", 2.0), ("f4", 4.0)], "m", 1.0, acc)
        hits += sp.low.value <= true <= sp.high.value
    print(f"coverage {hits / draws:.3f}")
    assert lo <= hits / draws <= hi, hits / draws
