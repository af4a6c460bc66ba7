"""Attacks with one interface (:class:`Attack`): ``attack(model, x, y)`` or
``attack.perturb(model, x, loss_fn)``; one file per attack, registered in :data:`ATTACKS` (the
choices of ``attack.name`` and of a method's ``attack``) by its import line below."""

from __future__ import annotations

from dataclasses import dataclass

from robustprune.attacks.base import NORMS, Attack, LossFn, cross_entropy_loss, project
from robustprune.attacks.fgsm import FGSMRS
from robustprune.attacks.nfgsm import NFGSM
from robustprune.attacks.pgd import PGD
from robustprune.errors import ConfigError
from robustprune.registry import Registry
from robustprune.schema import param as _p

ATTACKS: Registry[type[Attack]] = Registry.collect("attack.name", Attack, vars())

__all__ = [
    "ATTACKS",
    "FGSMRS",
    "NFGSM",
    "NORMS",
    "PGD",
    "Attack",
    "AttackConfig",
    "LossFn",
    "build_attack",
    "cross_entropy_loss",
    "project",
]


@dataclass(frozen=True)
class AttackConfig:
    """The ``attack`` section: the threat model (norm, eps) and the attack used *during
    training* (evaluation takes only the threat model)."""

    norm: str = _p("linf", choices=NORMS)
    eps: float = _p(0.1, lo=0.0, lo_open=True)
    name: str = _p("pgd", choices=ATTACKS.names)
    alpha: float = _p(0.02, lo=0.0, lo_open=True)
    steps: int = _p(10, lo=1)

    def __post_init__(self) -> None:
        if self.norm == "linf" and self.eps > 1.0:
            raise ConfigError(f"attack.eps = {self.eps}: must be <= 1 for linf on [0,1] inputs")


def build_attack(cfg: object) -> Attack:
    """The training attack an ``attack`` section (or a method's resolved attack) describes."""
    return ATTACKS.lookup(cfg.name).from_params(cfg)  # type: ignore[attr-defined]
