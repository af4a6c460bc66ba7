"""Attacks with one interface (:class:`Attack`): ``attack(model, x, y)`` or
``attack.perturb(model, x, loss_fn)``; one file per attack, registered in :data:`ATTACKS` (the
choices of ``attack.name`` and of a method's ``attack``) by its import line below."""

from __future__ import annotations

from robustprune.attacks.base import NORMS, Attack, LossFn, cross_entropy_loss, project
from robustprune.attacks.fgsm import FGSMRS
from robustprune.attacks.nfgsm import NFGSM
from robustprune.attacks.pgd import PGD
from robustprune.registry import Registry

ATTACKS: Registry[type[Attack]] = Registry.collect("attack.name", Attack, vars())

__all__ = ["ATTACKS", "FGSMRS", "NFGSM", "NORMS", "PGD", "Attack", "LossFn", "build_attack",
           "cross_entropy_loss", "project"]


def build_attack(cfg: object) -> Attack:
    """The training attack an ``attack`` section (or a method's resolved attack) describes."""
    return ATTACKS.lookup(cfg.name).from_params(cfg)  # type: ignore[attr-defined]
