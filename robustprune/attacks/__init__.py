"""Attacks with one interface (:class:`Attack`): ``attack(model, x, y)`` or
``attack.perturb(model, x, loss_fn)``; one file per attack."""

from __future__ import annotations

from robustprune.attacks.base import Attack, LossFn, cross_entropy_loss, project
from robustprune.attacks.fgsm import FGSMRS
from robustprune.attacks.nfgsm import NFGSM
from robustprune.attacks.pgd import PGD
from robustprune.config import AttackConfig

__all__ = ["FGSMRS", "NFGSM", "PGD", "Attack", "LossFn", "build_attack", "cross_entropy_loss",
           "project"]


def build_attack(cfg: AttackConfig) -> Attack:
    """The training attack described by the ``attack`` params section.

    ``alpha`` is the step for PGD and FGSM-RS (Wong et al. use 1.25·eps); N-FGSM always steps
    by eps from 2·eps noise, as its paper prescribes. ``steps`` applies to PGD only.
    """
    if cfg.name == "pgd":
        return PGD(eps=cfg.eps, alpha=cfg.alpha, steps=cfg.steps, norm=cfg.norm)
    if cfg.name == "fgsm-rs":
        return FGSMRS(eps=cfg.eps, alpha=cfg.alpha, norm=cfg.norm)
    if cfg.name == "n-fgsm":
        return NFGSM(eps=cfg.eps, alpha=max(cfg.eps, 1e-12), norm=cfg.norm)
    raise ValueError(f"unknown attack {cfg.name!r}")
