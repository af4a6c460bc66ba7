"""Coreset solvers on per-example gradients: GradMatch (non-negative OMP) and CRAIG (facility
location).

They are pure tensor functions, kept apart from the selectors that compute the gradients, so
the optimisation can be tested exactly (known sparse combinations, brute force on tiny sets)
without a model, and so the same solver serves any gradient source (clean, adversarial, TRADES).
Both take one class's gradients ``G`` [n, d] and a budget ``k`` and return
``(indices int64, weights float32)`` on ``G``'s device. Work is done in float64: the greedy
choices compare nearly equal numbers, and the least-squares refits are ill-conditioned for
correlated gradients, so float32 round-off would change picks and weights.

The hot paths are vectorised over candidates; Python loops only run over greedy iterations
(and over FISTA iterations / lazy-heap pops, each of which is one O(m^2) or O(n) tensor op).
"""

from __future__ import annotations

import heapq
import math

import torch

__all__ = ["facility_location", "facility_value", "omp_nonneg"]

# Relative change in the weights below which FISTA stops early. Tight enough that a refit is
# accurate to well below the 1e-3 a weighted loss can notice, loose enough that well-conditioned
# refits (the common case after warm starts) stop after a handful of iterations.
_FISTA_RTOL = 1e-10
# Power iterations per greedy step for the step size. The vector is carried over between steps
# (the Gram matrix only gains one row/column), so a few per step track the top eigenvalue.
_POWER_ITERS = 4
# The Rayleigh quotient is a lower bound of the top eigenvalue; this margin makes 1/L a safe
# step in practice, and a failed refit (objective went up) doubles L and retries.
_POWER_MARGIN = 1.1
# A candidate whose correlation with the residual is only round-off (e.g. a duplicate of a
# selected atom, whose exact correlation is 0 at the optimum) is not a positive correlation.
_PICK_RTOL = 1e-12


def _check_inputs(G: torch.Tensor, k: int) -> None:
    if G.ndim != 2:
        raise ValueError(f"G must be [n, d], got shape {tuple(G.shape)}")
    if not (G.is_floating_point()):
        raise ValueError(f"G must be a floating tensor, got {G.dtype}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")


def _empty(G: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.empty(0, dtype=torch.int64, device=G.device),
            torch.empty(0, dtype=torch.float32, device=G.device))


# --------------------------------------------------------------------------------------------
# GradMatch: non-negative orthogonal matching pursuit
# --------------------------------------------------------------------------------------------


def _nnls_fista(A: torch.Tensor, b: torch.Tensor, x0: torch.Tensor, lipschitz: float,
                max_iter: int) -> torch.Tensor:
    """min 0.5 x^T A x - b^T x, x >= 0, by FISTA with adaptive restart.

    Projected gradient is the only NNLS method whose iteration is one matvec, and the problem
    is re-solved after every greedy pick from an almost-optimal warm start, so a first-order
    method wins over active-set NNLS (which would restart its combinatorial search each time).
    The gradient restart (O'Donoghue & Candès) drops the momentum whenever it points uphill;
    that keeps FISTA monotone-ish on the ill-conditioned Gram matrices of correlated gradients,
    where plain FISTA oscillates.
    """
    step = 1.0 / lipschitz
    step_b = b * step
    x = x0.clamp_min(0)
    y = x.clone()
    t = 1.0
    for _ in range(max_iter):
        # x_new = P_+(y - step * (A y - b))
        x_new = torch.addmv(y, A, y, alpha=-step).add_(step_b).clamp_min_(0)
        dx = x_new - x
        uphill, change, scale = torch.stack(
            (torch.dot(y - x_new, dx), dx.abs().max(), x_new.abs().max())).tolist()
        x = x_new
        if change <= _FISTA_RTOL * scale:
            break
        if uphill > 0:
            t, beta = 1.0, 0.0
        else:
            t_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
            beta, t = (t - 1.0) / t_next, t_next
        y = x + beta * dx if beta else x
    return x


def _quadratic(A: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> float:
    return float(0.5 * torch.dot(x, A @ x) - torch.dot(b, x))


def omp_nonneg(G: torch.Tensor, k: int, target: torch.Tensor | None = None, *, tol: float = 1e-6,
               inner_iters: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """GradMatch: orthogonal matching pursuit with non-negative weights.

    Why this shape: the training loss on the weighted subset should have the same gradient as
    the full loss, i.e. ``sum_S w_j g_j ~ target``; weights must be non-negative because they
    scale per-example losses (a negative weight would *ascend* that example's loss). OMP adds
    the atom that best explains what is still missing and then re-balances everything picked
    so far, which is what makes it far better than picking by correlation alone.

    ``target`` defaults to ``G.sum(0)``. Greedy: at each step pick the unselected atom with the
    largest positive correlation <g_j, residual>; stop if none is positive, when k atoms are
    picked, or when ||residual|| <= tol * ||target||. After each pick ALL weights of the
    selected atoms are refit by non-negative least squares min ||G_S^T w - target||^2, w >= 0,
    on the normal equations (A = G_S G_S^T, b = G_S target; m x m, independent of d) with
    FISTA, step 1/L where L comes from power iterations carried across picks (capped by
    trace(A), a true upper bound), warm started from the previous weights (new atom at 0), at
    most ``inner_iters`` iterations, early exit on small change. A is grown by one row per
    pick rather than recomputed, so a pick costs O(n d + m d + inner_iters m^2).

    Returns (indices int64 [m], weights float32 [m]) with m <= k, in pick order, atoms whose
    final weight is 0 removed (they spent budget but contribute nothing).
    """
    _check_inputs(G, k)
    if tol < 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    if inner_iters < 1:
        raise ValueError(f"inner_iters must be >= 1, got {inner_iters}")
    n, d = G.shape
    G64 = G.detach().to(torch.float64)
    if target is None:
        t = G64.sum(0)
    else:
        if target.numel() != d:
            raise ValueError(f"target must have {d} elements, got shape {tuple(target.shape)}")
        t = target.detach().to(device=G.device, dtype=torch.float64).reshape(d)
    k = min(k, n)
    t_norm = float(torch.linalg.vector_norm(t))
    if k == 0 or t_norm == 0.0:
        return _empty(G)
    stop_norm = tol * t_norm

    G_t = G64 @ t  # b entries, one per candidate: <g_j, target>
    g_max = float(torch.linalg.vector_norm(G64, dim=1).max())
    GS = G64.new_empty((k, d))  # selected atoms, in pick order
    A = G64.new_zeros((k, k))  # their Gram matrix, grown one row/column per pick
    b = G64.new_zeros(k)
    w = G64.new_zeros(k)
    v = G64.new_zeros(k)  # power-iteration vector for the top eigenvalue of A
    available = torch.ones(n, dtype=torch.bool, device=G.device)
    picked: list[int] = []
    r = t.clone()
    r_norm = t_norm

    for m in range(k):
        corr = (G64 @ r).masked_fill_(~available, -math.inf)
        j = int(corr.argmax())
        if float(corr[j]) <= _PICK_RTOL * g_max * r_norm:
            break  # no atom can lower the residual with a positive weight
        available[j] = False
        picked.append(j)
        size = m + 1
        GS[m] = G64[j]
        row = GS[:size] @ G64[j]
        A[m, :size] = row
        A[:size, m] = row
        b[m] = G_t[j]
        A_s, b_s, w_s = A[:size, :size], b[:size], w[:size]

        v[m] = 1.0 / math.sqrt(size)
        v_s = v[:size]
        for _ in range(_POWER_ITERS):
            av = A_s @ v_s
            norm = torch.linalg.vector_norm(av)
            if float(norm) == 0.0:
                break
            v_s.copy_(av / norm)
        lam = float(torch.dot(v_s, A_s @ v_s))
        lipschitz = min(max(_POWER_MARGIN * lam, float(row[m])), float(A_s.trace()))

        start = w_s.clone()  # previous optimum; new atom at 0
        f_start = _quadratic(A_s, b_s, start)
        for _ in range(8):  # retry only if L was underestimated (objective went up)
            new = _nnls_fista(A_s, b_s, start, lipschitz, inner_iters)
            if _quadratic(A_s, b_s, new) <= f_start + 1e-12 * abs(f_start):
                break
            lipschitz *= 2.0
        w_s.copy_(new)

        r = t - w_s @ GS[:size]
        r_norm = float(torch.linalg.vector_norm(r))
        if r_norm <= stop_norm:
            break

    count = len(picked)
    weights = w[:count]
    keep = weights > 0
    idx = torch.tensor(picked, dtype=torch.int64, device=G.device)
    return idx[keep], weights[keep].to(torch.float32)


# --------------------------------------------------------------------------------------------
# CRAIG: facility location
# --------------------------------------------------------------------------------------------


def _pairwise_distances(G64: torch.Tensor) -> torch.Tensor:
    """Euclidean distances [n, n], exactly symmetric with a zero diagonal.

    Computed from the Gram matrix (one GEMM instead of an O(n^2 d) loop); symmetrising and
    zeroing the diagonal removes the round-off that would otherwise make s_ii < s_ij.
    """
    sq = G64.square().sum(1)
    d2 = (sq[:, None] + sq[None, :]).sub_(G64 @ G64.T, alpha=2.0).clamp_min_(0)
    dist = d2.sqrt_()
    dist = (dist + dist.T) * 0.5
    dist.fill_diagonal_(0.0)
    return dist


def _similarity(G: torch.Tensor) -> torch.Tensor:
    """s_ij = D_max - ||g_i - g_j|| in float64; D_max makes s >= 0 so F is monotone."""
    dist = _pairwise_distances(G.detach().to(torch.float64))
    return dist.max() - dist


def _quantise(sim: torch.Tensor) -> torch.Tensor:
    """Similarities as int64 fixed point (about 2^-40 of D_max resolution).

    Why: lazy greedy is only exact if every gain is computed bit-identically however it is
    summed (a column of a matrix reduction vs one vector) and if gains never grow between
    picks. Float sums are order-dependent, so near-ties could break differently in the lazy
    and plain variants; integer sums are exact, so both pick the same set and ties are true
    ties, resolved by lowest index. The resolution still leaves the sum of n values in int64.
    """
    n = sim.shape[0]
    bits = min(40, 62 - max(1, math.ceil(math.log2(n + 1))))
    top = float(sim.max())
    if top == 0.0:
        return torch.zeros_like(sim, dtype=torch.int64)
    return torch.round(sim * (2.0**bits / top)).to(torch.int64)


def _greedy_plain(sim_q: torch.Tensor, k: int) -> list[int]:
    """Recompute every marginal gain each step (one [n, n] reduction); the reference."""
    n = sim_q.shape[0]
    best = sim_q.new_zeros(n)  # each example's similarity to its closest pick so far
    taken = torch.zeros(n, dtype=torch.bool, device=sim_q.device)
    picks: list[int] = []
    for _ in range(k):
        gains = (sim_q - best).clamp_min_(0).sum(1)
        gains.masked_fill_(taken, -1)
        j = int(gains.argmax())  # first maximum: lowest index on ties
        picks.append(j)
        taken[j] = True
        best = torch.maximum(best, sim_q[j])
    return picks


def _greedy_lazy(sim_q: torch.Tensor, k: int) -> list[int]:
    """Lazy greedy (Minoux): a max-heap of stale gains, recompute only the top.

    Submodularity means a stale gain is an upper bound of the current one, so once the
    recomputed top beats the next bound (or ties it with a lower index) it is the exact greedy
    choice, and most candidates are never re-evaluated after the first step.
    """
    n = sim_q.shape[0]
    best = sim_q.new_zeros(n)
    heap = [(-g, j) for j, g in enumerate(sim_q.sum(1).tolist())]  # best = 0, s >= 0
    heapq.heapify(heap)
    picks: list[int] = []
    while len(picks) < k:
        _, j = heapq.heappop(heap)
        gain = int((sim_q[j] - best).clamp_min_(0).sum())
        if not heap or (gain, -j) > (-heap[0][0], -heap[0][1]):
            picks.append(j)
            best = torch.maximum(best, sim_q[j])
        else:
            heapq.heappush(heap, (-gain, j))
    return picks


def facility_location(G: torch.Tensor, k: int, *, lazy: bool = True
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """CRAIG: greedy maximisation of F(S) = sum_i max_{j in S} s_ij.

    Why: with s_ij = D_max - ||g_i - g_j||_2, maximising F minimises sum_i min_{j in S}
    ||g_i - g_j||, which bounds the error of replacing the full gradient by the weighted
    medoids' gradients (Mirzasoleiman et al., 2020); F is monotone submodular, so greedy is
    within (1 - 1/e) of the optimum. D_max is the largest pairwise distance, so s >= 0.

    ``lazy=True`` uses lazy greedy; ``lazy=False`` recomputes every gain each step. Both break
    ties by the lowest index and pick the same sequence (gains are summed exactly, see
    :func:`_quantise`). Memory is O(n^2) (the distance matrix), as in CRAIG per class.

    Returns (indices int64 [k'] in pick order, k' = min(k, n), weights float32 [k']) where
    weight_j = number of examples whose most similar selected element is j (ties to the
    earliest pick), so weights sum to n; with k >= n every example represents itself (weight 1).
    """
    _check_inputs(G, k)
    n = G.shape[0]
    k = min(k, n)
    if k == 0:
        return _empty(G)
    sim_q = _quantise(_similarity(G))
    picks = (_greedy_lazy if lazy else _greedy_plain)(sim_q, k)
    idx = torch.tensor(picks, dtype=torch.int64, device=G.device)
    if k == n:
        return idx, torch.ones(n, dtype=torch.float32, device=G.device)
    owner = sim_q[idx].argmax(0)  # [n]; first maximum = earliest pick
    weights = torch.bincount(owner, minlength=k).to(torch.float32)
    return idx, weights


def facility_value(G: torch.Tensor, selected: torch.Tensor) -> float:
    """F(S) = sum_i max_{j in S} s_ij in float64 (F of the empty set is 0).

    Exists so tests and reports measure coreset quality on the true (unquantised) objective.
    """
    if G.ndim != 2:
        raise ValueError(f"G must be [n, d], got shape {tuple(G.shape)}")
    sel = torch.as_tensor(selected, dtype=torch.int64, device=G.device).reshape(-1)
    if sel.numel() == 0 or G.shape[0] == 0:
        return 0.0
    sim = _similarity(G)
    return float(sim[:, sel].amax(1).sum())
