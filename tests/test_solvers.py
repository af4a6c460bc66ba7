"""Coreset solvers: exact recovery for OMP, brute force and lazy==plain for facility location."""

from __future__ import annotations

import itertools
import math
import os

import pytest
import torch

from robustprune.selection.solvers import facility_location, facility_value, omp_nonneg


def rel_residual(G: torch.Tensor, idx: torch.Tensor, w: torch.Tensor, target: torch.Tensor
                 ) -> float:
    G64, t64 = G.double(), target.double()
    approx = w.double() @ G64[idx] if len(idx) else torch.zeros_like(t64)
    return float((t64 - approx).norm() / t64.norm())


# ------------------------------------------------------------------------------------------
# omp_nonneg
# ------------------------------------------------------------------------------------------


def test_omp_recovers_known_sparse_nonneg_combination():
    torch.manual_seed(0)
    G = torch.randn(60, 40, dtype=torch.float64)
    chosen = torch.tensor([3, 17, 29, 48])
    coef = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=torch.float64)
    target = coef @ G[chosen]
    idx, w = omp_nonneg(G, 4, target)
    assert idx.dtype == torch.int64 and w.dtype == torch.float32
    assert set(idx.tolist()) == set(chosen.tolist())
    got = dict(zip(idx.tolist(), w.tolist(), strict=True))
    for j, c in zip(chosen.tolist(), coef.tolist(), strict=True):
        assert got[j] == pytest.approx(c, abs=1e-3)
    assert rel_residual(G, idx, w, target) < 1e-4
    # largest contribution first: pick order is greedy order, not sorted
    assert idx[0].item() == 48


def test_omp_default_target_full_budget_reconstructs_the_sum():
    torch.manual_seed(1)
    G = torch.randn(20, 50)  # n < d: rows independent, G G^T well conditioned
    idx, w = omp_nonneg(G, 20)
    assert len(idx) <= 20
    assert (w > 0).all()
    assert len(set(idx.tolist())) == len(idx)
    assert rel_residual(G, idx, w, G.sum(0)) < 1e-5
    # the only exact representation is all ones
    assert len(idx) == 20
    assert torch.allclose(w, torch.ones(20), atol=1e-3)


def test_omp_respects_budget_below_n():
    torch.manual_seed(2)
    G = torch.randn(40, 30)
    for k in (1, 3, 7):
        idx, w = omp_nonneg(G, k)
        assert 1 <= len(idx) <= k and len(w) == len(idx)
        assert (w > 0).all()
    # more atoms may only help the fit
    errs = [rel_residual(G, *omp_nonneg(G, k), G.sum(0)) for k in (2, 8, 20)]
    assert errs[0] > errs[1] > errs[2]


def test_omp_stops_early_when_target_is_exactly_representable():
    torch.manual_seed(3)
    G = torch.randn(20, 50, dtype=torch.float64)
    target = 2.0 * G[3] + G[7] + 0.5 * G[11]
    idx, w = omp_nonneg(G, 20, target)
    assert idx.tolist() == [3, 7, 11]  # stopped at the tolerance, not at the budget
    assert torch.allclose(w, torch.tensor([2.0, 1.0, 0.5]), atol=1e-4)
    assert rel_residual(G, idx, w, target) <= 1e-6


def test_omp_weights_stay_nonnegative_where_least_squares_goes_negative():
    # a = (1, 1) is picked first; b = (0.55, 0.45) still correlates with the residual, but the
    # unconstrained fit on {a, b} is -4.5 a + 10 b. The NNLS optimum drops a and keeps b alone.
    G = torch.tensor([[1.0, 1.0], [0.55, 0.45]])
    target = torch.tensor([1.0, 0.0])
    lstsq = torch.linalg.lstsq(G.T.double(), target.double()[:, None]).solution.ravel()
    assert (lstsq < 0).any()  # the construction does what it says
    idx, w = omp_nonneg(G, 2, target)
    assert (w >= 0).all()
    assert idx.tolist() == [1]  # a was picked, then refit to exactly 0 and removed
    assert w.item() == pytest.approx(0.55 / 0.505, rel=1e-5)


def single_atom_best(G: torch.Tensor, target: torch.Tensor) -> float:
    """min over j and c >= 0 of ||c g_j - target||^2."""
    G64, t64 = G.double(), target.double()
    c = (G64 @ t64).clamp_min(0) / G64.square().sum(1)
    return float((c[:, None] * G64 - t64).square().sum(1).min())


def test_omp_nonneg_beats_every_single_atom_and_satisfies_kkt():
    torch.manual_seed(4)
    G = torch.randn(30, 10)
    target = torch.randn(10) * 3  # generic: not in the cone of the atoms
    idx, w = omp_nonneg(G, 6, target)
    assert (w > 0).all() and len(idx) <= 6
    r = target.double() - w.double() @ G.double()[idx]
    assert float(r.square().sum()) <= single_atom_best(G, target) + 1e-9
    # refit converged: positive weights sit where the gradient of the LS objective vanishes
    assert float((G.double()[idx] @ r).abs().max()) < 1e-5 * float(target.norm())


def test_omp_edge_cases():
    torch.manual_seed(5)
    idx, w = omp_nonneg(torch.empty(0, 7), 3)
    assert idx.shape == (0,) and w.shape == (0,) and idx.dtype == torch.int64
    idx, w = omp_nonneg(torch.randn(9, 4), 0)
    assert len(idx) == 0 and len(w) == 0
    idx, w = omp_nonneg(torch.randn(9, 4), 3, torch.zeros(4))  # nothing to approximate
    assert len(idx) == 0
    # d == 1: the best positive atom explains the target exactly
    g = torch.tensor([[2.0], [-1.0], [4.0], [0.5]])
    idx, w = omp_nonneg(g, 3)
    assert idx.tolist() == [2] and w.item() == pytest.approx(5.5 / 4.0)
    # a negative target can only use the negative atom
    idx, w = omp_nonneg(g, 3, torch.tensor([-1.0]))
    assert idx.tolist() == [1] and w.item() == pytest.approx(1.0)
    # nothing correlates positively: empty answer rather than a negative weight
    idx, w = omp_nonneg(g[[0, 2]], 2, torch.tensor([-1.0]))
    assert len(idx) == 0 and len(w) == 0
    # k > n, duplicated rows: no atom picked twice, the fit is still exact
    base = torch.randn(10, 30, dtype=torch.float64)
    G = torch.cat([base, base])
    idx, w = omp_nonneg(G, 100)
    assert len(idx) <= 20 and len(set(idx.tolist())) == len(idx)
    assert (w > 0).all()
    assert rel_residual(G, idx, w, G.sum(0)) < 1e-5
    with pytest.raises(ValueError):
        omp_nonneg(torch.randn(3, 2), -1)


# ------------------------------------------------------------------------------------------
# facility_location
# ------------------------------------------------------------------------------------------


def oracle_similarity(G: torch.Tensor) -> torch.Tensor:
    """s_ij = D_max - ||g_i - g_j|| by broadcasting (independent of the solver's GEMM path)."""
    G64 = G.double()
    dist = (G64[:, None, :] - G64[None, :, :]).norm(dim=-1)
    return dist.max() - dist


def oracle_value(sim: torch.Tensor, selected: tuple[int, ...] | list[int]) -> float:
    return float(sim[:, list(selected)].amax(1).sum())


def brute_force_best(G: torch.Tensor, k: int) -> float:
    sim = oracle_similarity(G)
    return max(oracle_value(sim, c) for c in itertools.combinations(range(len(G)), k))


def naive_facility_value(G: torch.Tensor, selected: list[int]) -> float:
    rows = G.double().tolist()
    dist = [[math.dist(a, b) for b in rows] for a in rows]
    d_max = max(max(r) for r in dist)
    return sum(max(d_max - dist[i][j] for j in selected) for i in range(len(rows)))


@pytest.mark.parametrize("seed", range(4))
def test_facility_lazy_and_plain_pick_identical_sequences(seed):
    torch.manual_seed(seed)
    n = (30, 45, 60, 80)[seed]
    G = torch.randn(n, 5)
    for k in (1, 2, 7, n // 2, n - 1):
        lazy_idx, lazy_w = facility_location(G, k, lazy=True)
        plain_idx, plain_w = facility_location(G, k, lazy=False)
        assert lazy_idx.tolist() == plain_idx.tolist()
        assert torch.equal(lazy_w, plain_w)
        assert len(lazy_idx) == k and len(set(lazy_idx.tolist())) == k
        assert lazy_w.sum().item() == n
        # greedy prefix property: the k-pick is an extension of the (k-1)-pick
        assert facility_location(G, k - 1)[0].tolist() == lazy_idx[:-1].tolist()


def test_facility_first_pick_is_bruteforce_argmax():
    for seed in range(3):
        torch.manual_seed(seed)
        G = torch.randn(40, 5)
        values = oracle_similarity(G).sum(0)  # F({j}) for every j
        idx, w = facility_location(G, 1)
        assert idx.tolist() == [int(values.argmax())]
        assert facility_value(G, idx) == pytest.approx(float(values.max()), rel=1e-12)
        assert w.tolist() == [40.0]


@pytest.mark.parametrize("k", [2, 3])
def test_facility_greedy_within_1_minus_1_over_e_of_optimum(k):
    for seed in range(5):
        torch.manual_seed(seed)
        G = torch.randn(8, 5)
        best = brute_force_best(G, k)
        got = facility_value(G, facility_location(G, k)[0])
        assert got >= (1 - 1 / math.e) * best - 1e-9
        assert got <= best + 1e-9


def clustered() -> tuple[torch.Tensor, list[list[int]], list[int]]:
    """3 tight clusters far apart (centres on a triangle in dims 0-1); satellites at 0.01 off
    each centre in dims 2-4, so each centre is its cluster's medoid whatever the other clusters
    do. Sizes 5, 4, 3, interleaved in index order."""
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [5.0, 8.66]])
    e = torch.eye(3) * 0.01
    offsets = [
        [torch.zeros(3), e[0], -e[0], e[1], -e[1]],
        [torch.zeros(3), e[0], -e[0], e[2]],
        [torch.zeros(3), e[1], -e[1]],
    ]
    rows, members = [], [[], [], []]
    order = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 0]  # which cluster each row belongs to
    taken = [0, 0, 0]
    for c in order:
        rows.append(torch.cat([centres[c], offsets[c][taken[c]]]))
        members[c].append(len(rows) - 1)
        taken[c] += 1
    centre_idx = [m[0] for m in members]
    return torch.stack(rows), members, centre_idx


def test_facility_clustered_picks_one_medoid_per_cluster_and_is_optimal():
    G, members, centres = clustered()
    n = len(G)
    idx, w = facility_location(G, 3)
    assert sorted(idx.tolist()) == sorted(centres)
    best = brute_force_best(G, 3)
    assert facility_value(G, idx) == pytest.approx(best, rel=1e-12, abs=1e-9)
    size_of = {m[0]: len(m) for m in members}
    assert w.tolist() == [float(size_of[j]) for j in idx.tolist()]
    assert w.sum().item() == n


def test_facility_value_matches_naive_double_loop():
    torch.manual_seed(6)
    G = torch.randn(15, 4)
    for sel in ([0], [3, 7], [1, 2, 14, 9]):
        assert facility_value(G, torch.tensor(sel)) == pytest.approx(
            naive_facility_value(G, sel), rel=1e-10)
    assert facility_value(G, torch.tensor([], dtype=torch.int64)) == 0.0


def test_facility_edge_cases():
    idx, w = facility_location(torch.empty(0, 3), 4)
    assert idx.shape == (0,) and w.shape == (0,) and idx.dtype == torch.int64
    torch.manual_seed(7)
    G = torch.randn(6, 3)
    assert len(facility_location(G, 0)[0]) == 0
    # k >= n: everyone, each representing themselves
    for k in (6, 50):
        idx, w = facility_location(G, k)
        assert sorted(idx.tolist()) == list(range(6))
        assert w.tolist() == [1.0] * 6
    # d == 1, exact ties: 2 and 10 have equal total distance, the lower index wins
    line = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
    for lazy in (True, False):
        idx, w = facility_location(line, 2, lazy=lazy)
        assert idx.tolist() == [2, 4] and w.tolist() == [3.0, 3.0]
    # duplicate rows: every gain after the first is 0, ties go to the lowest index and
    # every example is credited to the earliest pick
    same = torch.ones(5, 4)
    for lazy in (True, False):
        idx, w = facility_location(same, 3, lazy=lazy)
        assert idx.tolist() == [0, 1, 2] and w.tolist() == [5.0, 0.0, 0.0]
    # a duplicated row is picked once (its twin then gains nothing) and weighs 2
    dup = torch.cat([G, G[:1]])
    for lazy in (True, False):
        idx, w = facility_location(dup, 6, lazy=lazy)
        assert len({0, 6} & set(idx.tolist())) == 1
        assert sorted(w.tolist()) == [1.0] * 5 + [2.0]
    with pytest.raises(ValueError):
        facility_location(torch.randn(3), 1)


@pytest.mark.skipif(os.environ.get("RUN_SLOW") != "1", reason="set RUN_SLOW=1 for the size check")
def test_solvers_run_at_realistic_size():
    torch.manual_seed(8)
    G = torch.randn(2000, 2010)
    idx, w = omp_nonneg(G, 600)
    assert 0 < len(idx) <= 600 and (w > 0).all()
    assert rel_residual(G, idx, w, G.sum(0)) < 1.0
    idx, w = facility_location(G, 600)
    assert len(idx) == 600 and len(set(idx.tolist())) == 600
    assert w.sum().item() == 2000
