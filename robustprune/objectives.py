"""Robust training objectives: what the attack maximises and what the model minimises.

Each objective gives a *per-example* loss so that coreset weights (Σ w·ℓ / Σ w) and per-example
attack budgets (BulletTrain) apply to every objective the same way. Formulas follow the papers'
reference code:

- PGD-AT (Madry et al.): ℓ = CE(f(x'), y), x' maximises CE from a uniform random start.
- TRADES (Zhang et al.): ℓ = CE(f(x), y) + β·KL(p(x) ‖ p(x')), x' maximises that KL from
  x + 0.001·N(0, 1).
- MART (Wang et al.): ℓ = CE(f(x'), y) − log(1.0001 − p'_ŷ)
  + β·KL(p(x) ‖ p(x'))·(1.0000001 − p_y(x)), ŷ the most likely wrong class under x',
  x' maximises CE from x + 0.001·N(0, 1).
- clean: ℓ = CE(f(x), y), no attack (warm-up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robustprune.attacks import Attack, LossFn, cross_entropy_loss
from robustprune.registry import Registry


def kl_per_example(p_clean: torch.Tensor, logits_adv: torch.Tensor) -> torch.Tensor:
    """KL(p_clean ‖ softmax(logits_adv)) per example (the TRADES/MART robust term)."""
    log_p_adv = F.log_softmax(logits_adv, dim=1)
    return F.kl_div(log_p_adv, p_clean, reduction="none").sum(dim=1)


def weighted_mean(losses: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    if weights is None:
        return losses.mean()
    return (losses * weights).sum() / weights.sum().clamp_min(1e-12)


@dataclass(frozen=True)
class Objective:
    """Base: clean cross-entropy and no adversary (used for warm-up)."""

    name: str = "clean"
    beta: float = 0.0
    gaussian_start: float | None = None  # std of the reference codes' N(0,1) start, or None

    needs_clean: bool = False  # whether the loss also looks at f(x)

    @classmethod
    def from_params(cls, cfg: Any) -> Objective:
        """The objective for an ``objective`` section (name, beta)."""
        return cls(beta=cfg.beta)

    @property
    def attacked(self) -> bool:
        """Whether training takes its loss on attacked inputs (every registered objective)."""
        return type(self) is not Objective

    def attack_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> LossFn:
        return cross_entropy_loss(y)

    def adversarial(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    attack: Attack) -> torch.Tensor:
        """The inputs the loss is taken on (``x`` itself for the clean objective)."""
        if not self.attacked or attack.steps == 0 or x.shape[0] == 0:
            return x.detach()
        delta = None
        if self.gaussian_start is not None and not attack.defines_start:
            delta = self.gaussian_start * torch.randn_like(x)
        return attack.perturb(model, x, self.attack_loss(model, x, y), delta)

    def logit_losses(self, logits_clean: torch.Tensor | None, logits_adv: torch.Tensor,
                     y: torch.Tensor) -> torch.Tensor:
        """The per-example formula on logits. Kept separate from the forwards so coreset
        selection can differentiate it in closed form at the output layer."""
        return F.cross_entropy(logits_adv, y, reduction="none")

    def losses(self, model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor,
               y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-example losses [B] and the logits on ``x_adv`` (reused, e.g. by BulletTrain's
        robust-accuracy estimate, so nobody pays a second forward for them)."""
        logits_clean = model(x) if self.needs_clean else None
        logits_adv = model(x_adv)
        return self.logit_losses(logits_clean, logits_adv, y), logits_adv

    def loss_and_logits(self, model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor,
                        y: torch.Tensor, weights: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """Σ w·ℓ / Σ w over the batch, and the logits on ``x_adv``."""
        per_example, logits_adv = self.losses(model, x, x_adv, y)
        return weighted_mean(per_example, weights), logits_adv

    def loss(self, model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor,
             weights: torch.Tensor | None = None) -> torch.Tensor:
        return self.loss_and_logits(model, x, x_adv, y, weights)[0]


@dataclass(frozen=True)
class PGDAT(Objective):
    name: str = "pgd-at"

    @classmethod
    def from_params(cls, cfg: Any) -> Objective:
        return cls()  # no robust-term weight


@dataclass(frozen=True)
class _KLRegularised(Objective):
    """TRADES and MART: a β-weighted KL(p(x) ‖ p(x')) term, so the loss also looks at f(x),
    and the reference codes' small Gaussian attack start."""

    beta: float = 6.0
    gaussian_start: float | None = 0.001
    needs_clean: bool = True


@dataclass(frozen=True)
class TRADES(_KLRegularised):
    name: str = "trades"

    def attack_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> LossFn:
        with torch.no_grad():
            p_clean = F.softmax(model(x), dim=1)
        return lambda logits, idx: kl_per_example(p_clean[idx], logits)

    def logit_losses(self, logits_clean: torch.Tensor | None, logits_adv: torch.Tensor,
                     y: torch.Tensor) -> torch.Tensor:
        assert logits_clean is not None
        natural = F.cross_entropy(logits_clean, y, reduction="none")
        return natural + self.beta * kl_per_example(F.softmax(logits_clean, dim=1), logits_adv)


@dataclass(frozen=True)
class MART(_KLRegularised):
    name: str = "mart"

    def logit_losses(self, logits_clean: torch.Tensor | None, logits_adv: torch.Tensor,
                     y: torch.Tensor) -> torch.Tensor:
        assert logits_clean is not None
        p_adv = F.softmax(logits_adv, dim=1)
        top2 = p_adv.argsort(dim=1)[:, -2:]
        wrong = torch.where(top2[:, -1] == y, top2[:, -2], top2[:, -1])
        boosted = (F.cross_entropy(logits_adv, y, reduction="none")
                   - torch.log(1.0001 - p_adv.gather(1, wrong[:, None]).squeeze(1) + 1e-12))
        p_clean = F.softmax(logits_clean, dim=1)
        p_true = p_clean.gather(1, y[:, None]).squeeze(1)
        kl = F.kl_div(torch.log(p_adv + 1e-12), p_clean, reduction="none").sum(dim=1)
        return boosted + self.beta * kl * (1.0000001 - p_true)


OBJECTIVES: Registry[type[Objective]] = Registry("objective.name", [PGDAT, TRADES, MART])
"""The robust objectives (``objective.name``); the clean base class is the warm-up's."""


def build_objective(cfg: Any) -> Objective:
    return OBJECTIVES.lookup(cfg.name).from_params(cfg)
