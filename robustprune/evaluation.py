"""Attack evaluation in named tiers, per test example, with the checks that catch real failures.

Why tiers: the trusted robust figure is the *reference* AutoAttack (Croce & Hein's own code, the
``pyautoattack`` package) at its standard strength: APGD-CE, APGD-T (9 targets) and FAB-T at 100
iterations each, then Square with 5 000 queries. On a CPU it costs minutes per 100 examples, so
it runs on a fixed subset, and a cheap strong attack (PGD-k, ANDed with clean correctness) runs
on the whole test set for the paired comparisons between methods. The subset doubles as the
trust check: when AutoAttack finds noticeably more errors than PGD-k on the same examples, the
cheap tier over-states and the run is flagged. Each figure carries the name of the attack that
produced it; nothing weaker is called AutoAttack.

Every tier returns per-example results, so the report, the statistics and any later re-analysis
read them instead of attacking again. Models are used only through the public contract ([0,1]
in, logits out, eval mode); evaluation passes are never training cost.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from robustprune.atomic import atomic_write
from robustprune.attacks import PGD
from robustprune.attacks.correctness import (  # noqa: F401 (clean_correct: part of the API)
    clean_correct,
    pgd_correct,
    predictions,
    to_float,
)
from robustprune.schema import param as _p


@dataclass(frozen=True)
class EvalConfig:
    """The ``eval`` section: the evaluation tiers (sizes count test examples from the start;
    0 = all). Only what the evaluate stage computes lives here; the thresholds that judge its
    figures (at chance, PGD trusted, curve reaches zero, collapse) are the report's, so
    changing one reruns the report and no evaluation.

    Tier 1, PGD-k on ``n_pgd`` examples, is the cheap all-examples figure. Tier 2, the
    reference AutoAttack (standard version) on the first ``n_autoattack``, is the trusted figure
    and checks that tier 1 does not over-state.
    """

    n_clean: int = _p(0, lo=0, doc="0 = whole test set")
    n_pgd: int = _p(0, lo=0, doc="0 = whole test set")
    pgd_steps: int = _p(20, lo=1)
    pgd_restarts: int = _p(1, lo=1)
    n_autoattack: int = _p(200, lo=0, doc="first n test examples; 0 skips AutoAttack")
    autoattack_chunk: int = _p(100, lo=1, doc="examples per resumable AutoAttack chunk")
    n_curve: int = _p(1000, lo=0, doc="examples for the accuracy-vs-eps curve; 0 skips it")
    eps_factors: tuple[float, ...] = _p((0.5, 1.0, 2.0, 4.0), lo=0.0, lo_open=True,
                                        doc="curve points, as multiples of attack.eps")
    batch_size: int = _p(500, lo=1)

AUTOATTACK_STANDARD = ("apgd-ce", "apgd-t", "fab-t", "square")
"""The standard version's attacks, in the order the reference runs them on the survivors."""

NOT_EVALUATED = -1
"""Per-example value for an example outside a tier's subset (the tiers use prefixes)."""


class _FlagCollector(logging.Handler):
    """Collects the reference implementation's warnings (its checks log, they do not raise)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg not in self.messages:
            self.messages.append(msg)


@dataclass
class AutoAttackResult:
    """``broken_by[i]``: index into ``("clean", *AUTOATTACK_STANDARD)`` of what first broke
    example i, or -1 if it survived every attack; seconds and flags as the reference reported."""

    broken_by: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)

    @property
    def robust(self) -> np.ndarray:
        return self.broken_by < 0

    def accuracy_after(self) -> dict[str, float]:
        """Robust accuracy after each attack in order (the reference's per-attack log)."""
        n = max(len(self.broken_by), 1)
        out = {}
        for k, name in enumerate(("clean", *AUTOATTACK_STANDARD)):
            out[name] = round(float(((self.broken_by < 0) | (self.broken_by > k)).sum()) / n, 6)
        return out


def _savez(path: str, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` to exactly ``path`` (given a name, numpy would append ``.npz``)."""
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def reference_autoattack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, norm: str,
                         eps: float, num_classes: int, seed: int, chunk: int, batch_size: int,
                         device: torch.device, state_dir: Path | None = None,
                         log: Callable[[str], None] = print) -> AutoAttackResult:
    """Standard AutoAttack from the reference implementation, per example, resumable.

    The examples are attacked in chunks of ``chunk``; within a chunk the four attacks run in the
    reference order, each on the survivors of the previous one, exactly as the reference's
    ``run_standard_evaluation`` does (it is called with one attack at a time so that each broken
    example is attributed to the attack that broke it). A finished chunk is saved to
    ``state_dir``, so a killed evaluation restarts at the first unfinished chunk with identical
    results (every attack reseeds itself from ``seed``).
    """
    from pyautoattack import AutoAttack

    aa = AutoAttack(model, norm="Linf" if norm == "linf" else "L2", eps=eps, seed=seed,
                    version="standard", device=device)
    if num_classes - 1 < aa.apgd_targeted.n_target_classes:  # fewer classes than 10
        aa.apgd_targeted.n_target_classes = aa.fab.n_target_classes = num_classes - 1
    collector = _FlagCollector()
    aa.logger.addHandler(collector)
    n = len(y)
    broken_by = np.full(n, -1, dtype=np.int8)
    seconds = dict.fromkeys(AUTOATTACK_STANDARD, 0.0)
    flags: list[str] = []
    try:
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            saved = None if state_dir is None else state_dir / f"autoattack-{start:06d}.npz"
            if saved is not None and saved.is_file():
                with np.load(saved, allow_pickle=False) as z:
                    broken_by[start:stop] = z["broken_by"]
                    for k, name in enumerate(AUTOATTACK_STANDARD):
                        seconds[name] += float(z["seconds"][k])
                    flags += [str(f) for f in z["flags"]]
                continue
            xb, yb = to_float(x[start:stop], device), y[start:stop].to(device)
            part = np.full(stop - start, -1, dtype=np.int8)
            with torch.no_grad():
                part[(model(xb).argmax(1) != yb).cpu().numpy()] = 0
            part_seconds = np.zeros(len(AUTOATTACK_STANDARD))
            collector.messages = []
            for k, name in enumerate(AUTOATTACK_STANDARD):
                alive = np.flatnonzero(part < 0)
                if len(alive) == 0:
                    break
                t = time.perf_counter()
                aa.attacks_to_run = [name]
                idx = torch.from_numpy(alive).to(device)
                _, y_adv = aa.run_standard_evaluation(xb[idx], yb[idx], batch_size=batch_size)
                part_seconds[k] = time.perf_counter() - t
                part[alive[(y_adv != yb[idx]).cpu().numpy()]] = k + 1
            broken_by[start:stop] = part
            for k, name in enumerate(AUTOATTACK_STANDARD):
                seconds[name] += float(part_seconds[k])
            flags += collector.messages
            if saved is not None:
                arrays = {"broken_by": part, "seconds": part_seconds,
                          "flags": np.array(collector.messages, dtype=str)}
                atomic_write(saved, lambda tmp, a=arrays: _savez(tmp, a))
            log(f"autoattack {stop}/{n}: robust {int((broken_by[:stop] < 0).sum())}/{stop}")
    finally:
        aa.logger.removeHandler(collector)
    # the reference's own Square check, on the per-attack accuracies of the whole subset
    result = AutoAttackResult(broken_by=broken_by,
                              seconds={k: round(v, 2) for k, v in seconds.items()})
    after = result.accuracy_after()
    if after["square"] < after["fab-t"] - 0.002:
        flags.append(f"Square Attack has decreased the robust accuracy of "
                     f"{after['fab-t'] - after['square']:.2%}: the gradient-based attacks "
                     "may be unreliable on this model (gradient masking)")
    result.flags = list(dict.fromkeys(flags))
    return result


def _n(requested: int, available: int) -> int:
    return available if requested == 0 else min(requested, available)


def _acc(correct: torch.Tensor | np.ndarray) -> float:
    c = np.asarray(correct)
    return round(float(c.mean()), 6) if c.size else float("nan")


def _column(n_test: int, values: np.ndarray) -> np.ndarray:
    """A per-example int8 column: 1 correct/robust, 0 not, -1 outside this tier's subset."""
    col = np.full(n_test, NOT_EVALUATED, dtype=np.int8)
    col[: len(values)] = np.asarray(values, dtype=np.int8)
    return col


def pgd_label(steps: int, restarts: int) -> str:
    return f"PGD-{steps} (step eps/4, {restarts} restart{'s' if restarts > 1 else ''})"


def evaluate_model(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: EvalConfig, *,
                   norm: str, eps: float, num_classes: int, seed: int, device: torch.device,
                   state_dir: Path | None = None,
                   log: Callable[[str], None] = print) -> tuple[dict[str, Any],
                                                                 dict[str, np.ndarray]]:
    """Run every tier; returns (metrics, per-example columns).

    Metrics are flat where ``dvc metrics`` shows them (accuracies in [0,1], sizes, seconds per
    tier) plus ``checks`` (name -> passed; the checks that need no threshold: the report judges
    the rest against its own) and ``checks_failed``. Columns have one entry per
    test example (see :func:`_column`); the AutoAttack column also says which attack broke it.
    """
    model = model.to(device).eval()
    total = len(y)
    m: dict[str, Any] = {"n_test": total, "norm": norm, "eps": eps}
    cols: dict[str, np.ndarray] = {"label": y.numpy().astype(np.int16)}
    seconds: dict[str, float] = {}
    checks: dict[str, bool] = {}
    torch.manual_seed(seed)

    t = time.perf_counter()
    n = _n(cfg.n_clean, total)
    pred = predictions(model, x[:n], cfg.batch_size, device)
    clean = (pred == y[:n]).numpy()
    cols["clean_pred"] = np.full(total, -1, dtype=np.int16)
    cols["clean_pred"][:n] = pred.numpy()
    cols["clean"] = _column(total, clean)
    seconds["clean"] = round(time.perf_counter() - t, 2)
    majority = float(np.bincount(y[:n].numpy(), minlength=num_classes).max() / max(n, 1))
    m.update(clean_acc=_acc(clean), n_clean=n, majority_rate=round(majority, 6))

    t = time.perf_counter()
    n = _n(cfg.n_pgd, total)
    pgd = PGD(eps=eps, alpha=eps / 4, steps=cfg.pgd_steps, norm=norm)
    robust = pgd_correct(model, x[:n], y[:n], pgd, cfg.pgd_restarts, cfg.batch_size,
                         device).numpy()
    cols["pgd"] = _column(total, robust)
    seconds["pgd"] = round(time.perf_counter() - t, 2)
    m.update(pgd_acc=_acc(robust), n_pgd=n, pgd_label=pgd_label(cfg.pgd_steps,
                                                                cfg.pgd_restarts))

    n_aa = min(cfg.n_autoattack, total)
    if n_aa > 0:
        t = time.perf_counter()
        res = reference_autoattack(model, x[:n_aa], y[:n_aa], norm=norm, eps=eps,
                                   num_classes=num_classes, seed=seed,
                                   chunk=cfg.autoattack_chunk, batch_size=cfg.batch_size,
                                   device=device, state_dir=state_dir, log=log)
        cols["autoattack"] = _column(total, res.robust)
        cols["autoattack_broken_by"] = np.full(total, NOT_EVALUATED, dtype=np.int8)
        cols["autoattack_broken_by"][:n_aa] = res.broken_by
        seconds["autoattack"] = round(time.perf_counter() - t, 2)
        seconds.update({f"autoattack_{k}": v for k, v in res.seconds.items()})
        # the same examples under the cheap tier (recomputed if the PGD tier was smaller)
        pgd_same = (robust[:n_aa] if len(robust) >= n_aa else
                    pgd_correct(model, x[:n_aa], y[:n_aa], pgd, cfg.pgd_restarts,
                                cfg.batch_size, device).numpy())
        import pyautoattack

        m.update(autoattack_acc=_acc(res.robust), n_autoattack=n_aa,
                 autoattack_label=f"AutoAttack standard (reference pyautoattack "
                                  f"{pyautoattack.__version__})",
                 autoattack_after=res.accuracy_after(), autoattack_flags=res.flags,
                 pgd_acc_aa_subset=_acc(pgd_same),
                 clean_acc_aa_subset=_acc(clean[:n_aa]) if len(clean) >= n_aa else None)
        m["trust_gap"] = round(m["pgd_acc_aa_subset"] - m["autoattack_acc"], 6)
        checks["autoattack_no_flags"] = not res.flags

    n_c = min(cfg.n_curve, total)
    if n_c > 0:
        t = time.perf_counter()
        curve = {}
        for f in sorted(cfg.eps_factors):
            attack = PGD(eps=eps * f, alpha=eps * f / 4, steps=cfg.pgd_steps, norm=norm)
            ok = pgd_correct(model, x[:n_c], y[:n_c], attack, 1, cfg.batch_size,
                             device).numpy()
            cols[f"pgd_eps_x{f:g}"] = _column(total, ok)
            curve[f"{f:g}"] = _acc(ok)
        seconds["curve"] = round(time.perf_counter() - t, 2)
        values = list(curve.values())
        # one example of slack per step: a random start can save an example by luck
        slack = 1.0 / n_c
        m.update(eps_curve=curve, n_curve=n_c)
        checks["curve_decreasing"] = all(b <= a + slack for a, b in itertools.pairwise(values))
    m["seconds"] = seconds
    m["checks"] = checks
    m["checks_failed"] = sorted(k for k, ok in checks.items() if not ok)
    m["checks_passed"] = not m["checks_failed"]
    return m, cols


def corruption_eval(model: nn.Module, x: np.ndarray, y: np.ndarray, names: tuple[str, ...],
                    severities: tuple[int, ...], batch_size: int, device: torch.device
                    ) -> tuple[dict[str, Any], np.ndarray]:
    """Accuracy on a corrupted test set ``x`` (uint8 [K, S, n, C, H, W], labels ``y``):
    the mean over every corruption and severity, per corruption, per severity and the whole
    grid; and per example the number of its K·S corrupted copies classified right (the
    column the report's paired intervals use)."""
    model = model.to(device).eval()
    started = time.perf_counter()
    k, s, n = x.shape[:3]
    correct = np.zeros((k, s, n), dtype=bool)
    labels = torch.from_numpy(np.asarray(y))
    for a in range(k):
        for b in range(s):
            pred = predictions(model, torch.from_numpy(np.ascontiguousarray(x[a, b])),
                               batch_size, device)
            correct[a, b] = (pred == labels).numpy()
    grid = correct.mean(axis=2)
    metrics = {
        "corruption_acc": _acc(correct), "n_corruption": n,
        "corruption_acc_by_name": {name: round(float(grid[i].mean()), 6)
                                   for i, name in enumerate(names)},
        "corruption_acc_by_severity": {str(sv): round(float(grid[:, j].mean()), 6)
                                       for j, sv in enumerate(severities)},
        "corruption_grid": {name: [round(float(v), 6) for v in grid[i]]
                            for i, name in enumerate(names)},
        "corruption_seconds": round(time.perf_counter() - started, 2)}
    return metrics, correct.sum(axis=(0, 1)).astype(np.int16)

