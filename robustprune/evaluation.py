"""Attack evaluation: clean, PGD-k with restarts, AutoAttack, and gradient-masking checks.

Models are evaluated only through the public contract ([0,1] in, logits out, eval mode), and
AutoAttack comes from torchattacks (a maintained, independent implementation), so a number here
means what it means for any RobustBench-style model. Evaluation passes are never training cost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from robustprune.attacks import PGD, cross_entropy_loss

MASKING_THRESHOLD = 0.05
"""PGD accuracy at ``sanity_factor``·ε above this suggests masked gradients, not robustness."""


def _batches(n: int, batch_size: int) -> range:
    return range(0, n, batch_size)


def to_float(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 images -> float in [0,1] on ``device`` (float inputs pass through)."""
    x = x.to(device)
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


@torch.no_grad()
def clean_correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                  device: torch.device) -> torch.Tensor:
    """Per-example correctness on unperturbed inputs (bool, on CPU)."""
    out = []
    for i in _batches(len(y), batch_size):
        xb, yb = to_float(x[i:i + batch_size], device), y[i:i + batch_size].to(device)
        out.append((model(xb).argmax(1) == yb).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.bool)


def pgd_correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: PGD,
                restarts: int, batch_size: int, device: torch.device) -> torch.Tensor:
    """Per-example robustness to PGD: correct under every restart (worst case over restarts)."""
    out = []
    for i in _batches(len(y), batch_size):
        xb, yb = to_float(x[i:i + batch_size], device), y[i:i + batch_size].to(device)
        robust = torch.ones_like(yb, dtype=torch.bool)
        for _ in range(restarts):
            x_adv = attack.perturb(model, xb, cross_entropy_loss(yb), stop_labels=yb)
            with torch.no_grad():
                robust &= model(x_adv).argmax(1) == yb
        out.append(robust.cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.bool)


def autoattack_correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, norm: str,
                       eps: float, num_classes: int, batch_size: int, device: torch.device,
                       seed: int) -> torch.Tensor:
    """Per-example robustness to AutoAttack (standard: APGD-CE, APGD-T, FAB-T, Square)."""
    import torchattacks

    attack = torchattacks.AutoAttack(model, norm="Linf" if norm == "linf" else "L2", eps=eps,
                                     version="standard", n_classes=num_classes, seed=seed)
    out = []
    for i in _batches(len(y), batch_size):
        xb, yb = to_float(x[i:i + batch_size], device), y[i:i + batch_size].to(device)
        x_adv = attack(xb, yb)
        with torch.no_grad():
            out.append((model(x_adv).argmax(1) == yb).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.bool)


@dataclass(frozen=True)
class EvalPlan:
    """What to run; sizes count test examples from the start of the test set (0 = all)."""

    norm: str
    eps: float
    num_classes: int
    n_clean: int = 0
    n_pgd: int = 0
    pgd_steps: int = 20
    pgd_restarts: int = 1
    n_autoattack: int = 1000
    n_sanity: int = 1000
    sanity_factor: float = 4.0
    batch_size: int = 500
    seed: int = 0


def _n(requested: int, available: int) -> int:
    return available if requested == 0 else min(requested, available)


def _acc(correct: torch.Tensor) -> float:
    return round(correct.float().mean().item(), 6) if correct.numel() else float("nan")


def evaluate_model(model: nn.Module, x: torch.Tensor, y: torch.Tensor, plan: EvalPlan,
                   device: torch.device) -> dict[str, Any]:
    """Run the whole protocol; returns flat metrics (accuracies in [0,1], counts, seconds)."""
    model = model.to(device).eval()
    total = len(y)
    m: dict[str, Any] = {"n_test": total, "norm": plan.norm, "eps": plan.eps}
    torch.manual_seed(plan.seed)

    t = time.perf_counter()
    n = _n(plan.n_clean, total)
    clean = clean_correct(model, x[:n], y[:n], plan.batch_size, device)
    m.update(clean_acc=_acc(clean), n_clean=n, clean_seconds=round(time.perf_counter() - t, 2))

    t = time.perf_counter()
    n = _n(plan.n_pgd, total)
    pgd = PGD(eps=plan.eps, alpha=plan.eps / 4, steps=plan.pgd_steps, norm=plan.norm)
    robust = pgd_correct(model, x[:n], y[:n], pgd, plan.pgd_restarts, plan.batch_size, device)
    m.update(pgd_acc=_acc(robust), n_pgd=n, pgd_steps=plan.pgd_steps,
             pgd_restarts=plan.pgd_restarts, pgd_seconds=round(time.perf_counter() - t, 2))

    checks: dict[str, bool] = {"pgd_le_clean": m["pgd_acc"] <= _acc(clean[: len(robust)])}
    n_aa = min(plan.n_autoattack, total)
    if n_aa > 0:
        t = time.perf_counter()
        aa = autoattack_correct(model, x[:n_aa], y[:n_aa], norm=plan.norm, eps=plan.eps,
                                num_classes=plan.num_classes, batch_size=plan.batch_size,
                                device=device, seed=plan.seed)
        # Paired comparison on the same examples: AutoAttack must not be weaker than PGD.
        pgd_same = (robust[:n_aa] if len(robust) >= n_aa else
                    pgd_correct(model, x[:n_aa], y[:n_aa], pgd, plan.pgd_restarts,
                                plan.batch_size, device))
        m.update(autoattack_acc=_acc(aa), n_autoattack=n_aa,
                 clean_acc_aa_subset=_acc(clean_correct(model, x[:n_aa], y[:n_aa],
                                                        plan.batch_size, device)),
                 pgd_acc_aa_subset=_acc(pgd_same),
                 autoattack_seconds=round(time.perf_counter() - t, 2))
        checks["autoattack_le_pgd"] = m["autoattack_acc"] <= m["pgd_acc_aa_subset"]

    n_s = min(plan.n_sanity, total)
    if n_s > 0:
        t = time.perf_counter()
        big = plan.eps * plan.sanity_factor
        strong = PGD(eps=big, alpha=big / 4, steps=plan.pgd_steps, norm=plan.norm)
        acc_big = _acc(pgd_correct(model, x[:n_s], y[:n_s], strong, 1, plan.batch_size, device))
        m.update(pgd_acc_large_eps=acc_big, large_eps=round(big, 6), n_sanity=n_s,
                 sanity_seconds=round(time.perf_counter() - t, 2))
        checks["large_eps_near_zero"] = acc_big <= MASKING_THRESHOLD
    m["checks"] = checks
    m["checks_passed"] = all(checks.values())
    return m
