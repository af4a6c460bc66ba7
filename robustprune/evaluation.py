"""Attack evaluation in named tiers, per test example, with the checks that catch real failures.

Why tiers: robust accuracy is trusted only from the *reference* AutoAttack (Croce & Hein's own
code, the ``pyautoattack`` package) at its standard settings. Its standard version runs APGD-CE,
APGD-T (9 targets), FAB-T (100 iterations each) and Square (5 000 queries), each on the
survivors of the previous one. On small models FAB-T and Square cost about four fifths of its
time and, on every model measured here, broke nothing the two APGD attacks had not, so:

* the **verdict tier** is the reference APGD-CE + APGD-T (standard settings) on the first
  ``n_verdict`` test examples: the figure verdicts are read from, on a subset large enough for
  a paired Δ to decide;
* the **check** continues the first ``n_autoattack`` of those with the reference FAB-T and
  Square, which makes them exactly the standard AutoAttack; a model on which they break
  anything beyond the verdict tier fails ``verdict_complete`` (the verdict tier over-states it);
* **PGD-k** (ANDed with clean correctness) runs on the whole test set: the cheap all-examples
  figure, which the report corrects by its gap to the verdict tier on the verdict subset
  (a two-phase estimate) and checks for over-statement.

Each figure carries the name of the attack that produced it; nothing weaker is called
AutoAttack. Every tier returns per-example results, so the report, the statistics and any later
re-analysis read them instead of attacking again. Models are used only through the public
contract ([0,1] in, logits out, eval mode); evaluation passes are never training cost.
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
from robustprune.errors import ConfigError
from robustprune.schema import param as _p


@dataclass(frozen=True)
class EvalConfig:
    """The ``eval`` section: the evaluation tiers (sizes count test examples from the start;
    0 = all). Only what the evaluate stage computes lives here; the thresholds that judge its
    figures (at chance, PGD trusted, curve reaches zero, collapse) are the report's, so
    changing one reruns the report and no evaluation.

    Tier 1, PGD-k on ``n_pgd`` examples, is the cheap all-examples figure. Tier 2, the
    reference APGD-CE + APGD-T on the first ``n_verdict``, is the verdict metric. The first
    ``n_autoattack`` of those also get the reference FAB-T and Square (the whole standard
    AutoAttack): the check that tier 2 misses nothing.
    """

    n_clean: int = _p(0, lo=0, doc="0 = whole test set")
    n_pgd: int = _p(0, lo=0, doc="0 = whole test set")
    pgd_steps: int = _p(20, lo=1)
    pgd_restarts: int = _p(1, lo=1)
    n_verdict: int = _p(600, lo=0, doc="first n test examples under the reference APGD-CE + "
                                       "APGD-T (the verdict metric); 0 skips it")
    n_autoattack: int = _p(50, lo=0, doc="first n of those also under FAB-T and Square (the "
                                         "whole standard AutoAttack, the check); <= n_verdict")
    autoattack_chunk: int = _p(100, lo=1, doc="examples per resumable reference-attack chunk")
    n_curve: int = _p(1000, lo=0, doc="examples for the accuracy-vs-eps curve; 0 skips it")
    eps_factors: tuple[float, ...] = _p((0.5, 1.0, 2.0, 4.0), lo=0.0, lo_open=True,
                                        doc="curve points, as multiples of attack.eps")
    batch_size: int = _p(500, lo=1)

    def __post_init__(self) -> None:
        if self.n_autoattack > self.n_verdict:
            raise ConfigError(f"eval.n_autoattack: {self.n_autoattack} exceeds eval.n_verdict "
                              f"({self.n_verdict}); the check continues the verdict tier's "
                              "examples, so it must be at most n_verdict")


AUTOATTACK_STANDARD = ("apgd-ce", "apgd-t", "fab-t", "square")
"""The standard version's attacks, in the order the reference runs them on the survivors."""
VERDICT_ATTACKS = AUTOATTACK_STANDARD[:2]
"""The verdict tier: the standard version's two APGD attacks, at its settings."""

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
class ReferenceResult:
    """The reference attacks on the first n examples: ``broken_by[i]`` is the index into
    ``("clean", *AUTOATTACK_STANDARD)`` of what first broke example i, or -1 if it survived
    every attack it was given (the first ``n_check`` examples got all four, the rest the two
    of the verdict tier); seconds per attack and the reference's flags."""

    broken_by: np.ndarray
    n_check: int
    seconds: dict[str, float] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)

    @property
    def verdict_robust(self) -> np.ndarray:
        """Survived APGD-CE and APGD-T (every example of the subset)."""
        return (self.broken_by < 0) | (self.broken_by > len(VERDICT_ATTACKS))

    @property
    def autoattack_robust(self) -> np.ndarray:
        """Survived the whole standard AutoAttack (the check subset only)."""
        return self.broken_by[: self.n_check] < 0

    @property
    def beyond_verdict(self) -> int:
        """Check-subset examples FAB-T or Square broke that the verdict tier did not."""
        return int((self.broken_by[: self.n_check] > len(VERDICT_ATTACKS)).sum())

    def accuracy_after(self, check: bool) -> dict[str, float]:
        """Robust accuracy after each attack in order (the reference's per-attack log), on the
        check subset with all four attacks or on the whole subset with the verdict tier's."""
        names = AUTOATTACK_STANDARD if check else VERDICT_ATTACKS
        by = self.broken_by[: self.n_check] if check else self.broken_by
        n = max(len(by), 1)
        return {name: round(float(((by < 0) | (by > k)).sum()) / n, 6)
                for k, name in enumerate(("clean", *names))}


def _savez(path: str, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` to exactly ``path`` (given a name, numpy would append ``.npz``)."""
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _chunks(n: int, n_check: int, chunk: int) -> list[tuple[int, int]]:
    """Resumable chunks of at most ``chunk`` examples that never straddle the check subset's
    end (a chunk gets either all four attacks or the verdict tier's two)."""
    return ([(s, min(s + chunk, n_check)) for s in range(0, n_check, chunk)]
            + [(s, min(s + chunk, n)) for s in range(n_check, n, chunk)])


def reference_attacks(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, n_check: int,
                      norm: str, eps: float, num_classes: int, seed: int, chunk: int,
                      batch_size: int, device: torch.device, state_dir: Path | None = None,
                      log: Callable[[str], None] = print) -> ReferenceResult:
    """The reference AutoAttack's attacks at its standard settings, per example, resumable:
    APGD-CE then APGD-T on every example of ``x``, then FAB-T and Square on the survivors among
    the first ``n_check`` (which makes those exactly the standard AutoAttack).

    Each attack runs on the survivors of the previous one, as the reference's
    ``run_standard_evaluation`` does; it is called with one attack at a time so that each broken
    example is attributed to the attack that broke it. The examples are attacked in chunks
    (:func:`_chunks`); a finished chunk is saved to ``state_dir``, so a killed evaluation
    restarts at the first unfinished chunk with identical results (every attack reseeds itself
    from ``seed``).
    """
    from pyautoattack import AutoAttack

    aa = AutoAttack(model, norm="Linf" if norm == "linf" else "L2", eps=eps, seed=seed,
                    version="standard", device=device)
    if num_classes - 1 < aa.apgd_targeted.n_target_classes:  # fewer classes than 10
        aa.apgd_targeted.n_target_classes = aa.fab.n_target_classes = num_classes - 1
    collector = _FlagCollector()
    aa.logger.addHandler(collector)
    n = len(y)
    n_check = min(n_check, n)
    broken_by = np.full(n, -1, dtype=np.int8)
    seconds = dict.fromkeys(AUTOATTACK_STANDARD, 0.0)
    flags: list[str] = []
    try:
        for start, stop in _chunks(n, n_check, chunk):
            attacks = AUTOATTACK_STANDARD if start < n_check else VERDICT_ATTACKS
            saved = (None if state_dir is None else
                     state_dir / f"reference-{start:06d}-{stop:06d}-{len(attacks)}.npz")
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
            for k, name in enumerate(attacks):
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
            done = broken_by[:stop]
            log(f"reference attacks {stop}/{n}: robust to APGD-CE+T "
                f"{int(((done < 0) | (done > len(VERDICT_ATTACKS))).sum())}/{stop}")
    finally:
        aa.logger.removeHandler(collector)
    result = ReferenceResult(broken_by=broken_by, n_check=n_check,
                             seconds={k: round(v, 2) for k, v in seconds.items()})
    if n_check:  # the reference's own Square check, on the check subset's accuracies
        after = result.accuracy_after(check=True)
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
    test example (see :func:`_column`); ``reference_broken_by`` says which reference attack
    broke each example of the verdict subset (index into ``("clean", *AUTOATTACK_STANDARD)``;
    -1: survived every attack it was given, or outside the subset).
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

    n_v = min(cfg.n_verdict, total)
    if n_v > 0:
        import pyautoattack

        t = time.perf_counter()
        res = reference_attacks(model, x[:n_v], y[:n_v], n_check=cfg.n_autoattack, norm=norm,
                                eps=eps, num_classes=num_classes, seed=seed,
                                chunk=cfg.autoattack_chunk, batch_size=cfg.batch_size,
                                device=device, state_dir=state_dir, log=log)
        seconds["reference"] = round(time.perf_counter() - t, 2)
        seconds.update({f"reference_{k}": v for k, v in res.seconds.items()})
        cols["verdict"] = _column(total, res.verdict_robust)
        cols["reference_broken_by"] = np.full(total, NOT_EVALUATED, dtype=np.int8)
        cols["reference_broken_by"][:n_v] = res.broken_by
        # the same examples under the cheap tier (recomputed if the PGD tier was smaller)
        pgd_same = (robust[:n_v] if len(robust) >= n_v else
                    pgd_correct(model, x[:n_v], y[:n_v], pgd, cfg.pgd_restarts,
                                cfg.batch_size, device).numpy())
        version = f"reference pyautoattack {pyautoattack.__version__}"
        m.update(verdict_acc=_acc(res.verdict_robust), n_verdict=n_v,
                 verdict_label=f"APGD-CE+T ({version}, standard settings: 100 iterations, "
                               f"{min(9, num_classes - 1)} targets)",
                 verdict_after=res.accuracy_after(check=False),
                 pgd_acc_verdict_subset=_acc(pgd_same),
                 clean_acc_verdict_subset=_acc(clean[:n_v]) if len(clean) >= n_v else None,
                 reference_flags=res.flags)
        m["trust_gap"] = round(m["pgd_acc_verdict_subset"] - m["verdict_acc"], 6)
        checks["autoattack_no_flags"] = not res.flags
        if res.n_check:
            m.update(autoattack_acc=_acc(res.autoattack_robust), n_autoattack=res.n_check,
                     autoattack_label=f"AutoAttack standard ({version})",
                     autoattack_after=res.accuracy_after(check=True),
                     autoattack_beyond_verdict=res.beyond_verdict)
            cols["autoattack"] = _column(total, res.autoattack_robust)
            checks["verdict_complete"] = res.beyond_verdict == 0

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

