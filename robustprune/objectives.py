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
- AugMix (Hendrycks et al. 2020): ℓ = CE(f(x), y) + λ·JS(p(x), p(x₁), p(x₂)), x₁ and x₂
  AugMix views of x (no attack): the common-corruption objective. JS over k distributions is
  (1/k)·Σᵢ KL(pᵢ ‖ M), M their mean, as in the reference code.
- clean: ℓ = CE(f(x), y), no attack (warm-up).

The training step asks an objective for its inputs with :meth:`Objective.training_inputs`:
attacked inputs for the adversarial objectives, a :class:`Views` bundle for AugMix (whose
number of views per example BulletTrain may lower). Selection and scoring use
:meth:`Objective.adversarial`, one input per example (for AugMix its first view).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from robustprune import distributed
from robustprune.attacks import Attack, LossFn, cross_entropy_loss
from robustprune.errors import ConfigError
from robustprune.registry import Registry
from robustprune.schema import param as _p


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
    uses_attack: ClassVar[bool] = False  # whether the training inputs come from the attack
    views_based: ClassVar[bool] = False  # whether they are augmented views (:class:`Views`)

    @classmethod
    def from_params(cls, cfg: Any) -> Objective:
        """The objective for an ``objective`` section (name, beta)."""
        return cls(beta=cfg.beta)

    @property
    def attacked(self) -> bool:
        """Whether training takes its loss on attacked inputs (PGD-AT, TRADES, MART)."""
        return self.uses_attack

    def attack_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> LossFn:
        return cross_entropy_loss(y)

    def adversarial(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    attack: Attack) -> torch.Tensor:
        """The inputs the loss is taken on (``x`` itself for the clean objective)."""
        if not self.attacked or attack.steps == 0:
            return x.detach()
        if x.shape[0] == 0 and not distributed.drawing_globally():
            return x.detach()  # (a data-parallel rank with no rows still makes its draws)
        delta = None
        if self.gaussian_start is not None and not attack.defines_start:
            delta = self.gaussian_start * distributed.randn_like(x)
        return attack.perturb(model, x, self.attack_loss(model, x, y), delta)

    def training_inputs(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                        attack: Attack | None, views: torch.Tensor | None = None) -> Any:
        """What the training step's loss is taken on: the attacked inputs (``attack`` None:
        ``x`` itself). ``views`` is for view-based objectives (AugMix) and ignored here."""
        del views
        return x.detach() if attack is None else self.adversarial(model, x, y, attack)

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
    uses_attack: ClassVar[bool] = True

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
    uses_attack: ClassVar[bool] = True


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


def jensen_shannon(probs: list[torch.Tensor]) -> torch.Tensor:
    """Per-example JS divergence of k >= 2 distributions [B, C]: (1/k)·Σᵢ KL(pᵢ ‖ M) with
    M = mean pᵢ, M clamped to [1e-7, 1] before its log as in the AugMix reference code."""
    log_m = torch.clamp(torch.stack(probs).mean(dim=0), 1e-7, 1.0).log()
    return sum(F.kl_div(log_m, p, reduction="none").sum(dim=1) for p in probs) / len(probs)


@dataclass(frozen=True)
class Views:
    """AugMix training inputs: up to V augmented views per example (x: [B, V, C, H, W]) and how
    many of them each example uses (count: [B], 0…V; 0 = the clean cross-entropy alone).

    Lazy form (``x`` and ``count`` None, ``decide`` given): the loss runs the clean forward
    first, ``decide(clean logits, y)`` returns the counts, and only the views asked for are
    made and forwarded (BulletTrain for AugMix categorises on that same forward)."""

    x: torch.Tensor | None
    count: torch.Tensor | None
    decide: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None


@dataclass(frozen=True)
class AugMixObjective(Objective):
    """AugMix: each view is torchvision's ``v2.AugMix`` of the example (its own random chains
    and Dirichlet/Beta mixing weights), with ``all_ops=False``, which leaves out the operations
    that overlap the test corruptions (contrast, colour, brightness, sharpness), as the paper
    does. The clean input and eager views go through the network in one forward (one
    batch-norm batch, as in the reference code); lazy views (BulletTrain for AugMix) in a
    second forward after the clean one. torchvision returns uint8 views (the mix truncated to
    the 8-bit grid, as any 8-bit AugMix pipeline does)."""

    name: str = "augmix"
    jsd_lambda: float = 12.0
    severity: int = 3
    width: int = 3
    depth: int = -1
    alpha: float = 1.0
    views: int = 2
    needs_clean: bool = True
    views_based: ClassVar[bool] = True

    @classmethod
    def from_params(cls, cfg: Any) -> Objective:
        return cls(jsd_lambda=cfg.jsd_lambda, severity=cfg.mix_severity, width=cfg.mix_width,
                   depth=cfg.mix_depth, alpha=cfg.mix_alpha, views=cfg.mix_views)

    def augmenter(self) -> nn.Module:
        from torchvision.transforms import v2

        return v2.AugMix(severity=self.severity, mixture_width=self.width,
                         chain_depth=self.depth, alpha=self.alpha, all_ops=False)

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """One AugMix view of every example of a float [0,1] batch; the randomness comes from
        torch's global generator, which the trainer seeds and checkpoints."""
        aug = self.augmenter()
        u8 = x.detach().mul(255.0).round_().to(torch.uint8).cpu()
        out = torch.stack([aug(img) for img in u8])
        return out.to(x.device).float().div_(255.0)

    def adversarial(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    attack: Attack) -> torch.Tensor:
        """One view per example (what selection and scoring score the objective on)."""
        return self.augment(x) if x.shape[0] else x.detach()

    def training_inputs(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                        attack: Attack | None, views: torch.Tensor | None = None) -> Views:
        count = (torch.full((x.shape[0],), self.views, dtype=torch.long) if views is None
                 else views.to(torch.long).cpu().clamp(0, self.views))
        out = torch.zeros((x.shape[0], self.views, *x.shape[1:]), device=x.device)
        for v in range(self.views):
            need = count > v
            if need.any():
                out[need.to(x.device), v] = self.augment(x[need.to(x.device)])
        return Views(out, count)

    def logit_losses(self, logits_clean: torch.Tensor | None, logits_adv: torch.Tensor,
                     y: torch.Tensor) -> torch.Tensor:
        """Clean CE + λ·JS(clean, one view): the two-distribution form selection uses."""
        assert logits_clean is not None
        return (F.cross_entropy(logits_clean, y, reduction="none") + self.jsd_lambda
                * jensen_shannon([F.softmax(logits_clean, 1), F.softmax(logits_adv, 1)]))

    def losses(self, model: nn.Module, x: torch.Tensor, x_adv: Any,
               y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-example CE(clean) + λ·JS over the clean input and each example's views. Eager
        views go through the network with the clean batch in one forward; lazy ones after it
        (see :class:`Views`). The logits returned are on each example's first view (the clean
        ones where it has none)."""
        views = x_adv if isinstance(x_adv, Views) else Views(
            x_adv[:, None], torch.ones(len(y), dtype=torch.long))
        b = len(y)
        if views.x is None:
            assert views.decide is not None
            logits_clean = model(x)
            count = views.decide(logits_clean.detach(), y).to(x.device).clamp(0, self.views)
            rows = [torch.nonzero(count > v).squeeze(1) for v in range(self.views)]
            rows = [r for r in rows if len(r)]
            made = [self.augment(x[r]) for r in rows]
            view_logits = list(model(torch.cat(made)).split([len(r) for r in rows])) if made \
                else []
        else:
            count = views.count.to(x.device)
            rows = [torch.nonzero(count > v).squeeze(1) for v in range(views.x.shape[1])]
            rows = [r for r in rows if len(r)]
            logits = model(torch.cat([x, *(views.x[r, v] for v, r in enumerate(rows))]))
            logits_clean = logits[:b]
            view_logits = list(logits[b:].split([len(r) for r in rows]))
        loss = F.cross_entropy(logits_clean, y, reduction="none")
        p_clean = F.softmax(logits_clean, dim=1)
        first = logits_clean.clone()
        if rows:
            first[rows[0]] = view_logits[0]
        for k in range(1, len(rows) + 1):  # the examples with exactly k views
            members = torch.nonzero(count == k).squeeze(1)
            if len(members) == 0:
                continue
            probs = [p_clean[members]]
            for v in range(k):
                pos = torch.searchsorted(rows[v], members)
                probs.append(F.softmax(view_logits[v][pos], dim=1))
            loss = loss.index_add(0, members, self.jsd_lambda * jensen_shannon(probs))
        return loss, first


OBJECTIVES: Registry[type[Objective]] = Registry("objective.name",
                                                 [PGDAT, TRADES, MART, AugMixObjective,
                                                  Objective])
"""The training objectives (``objective.name``): the adversarial ones, AugMix, and ``clean``
(the warm-up's cross-entropy; as an objective, the equal-epochs standard-training baseline
that AugMix is compared with)."""


@dataclass(frozen=True)
class ObjectiveConfig:
    """The ``objective`` section: what robust training (and scoring) minimises."""

    name: str = _p("pgd-at", choices=OBJECTIVES.names)
    beta: float = _p(6.0, lo=0.0, doc="trades / mart robust-term weight")
    jsd_lambda: float = _p(12.0, lo=0.0, doc="augmix: weight of the Jensen-Shannon term")
    mix_severity: int = _p(3, lo=1, hi=10, doc="augmix: strength of each operation")
    mix_width: int = _p(3, lo=1, doc="augmix: augmentation chains mixed into a view")
    mix_depth: int = _p(-1, lo=-1, doc="augmix: operations per chain; -1 = random 1-3")
    mix_alpha: float = _p(1.0, lo=0.0, lo_open=True, doc="augmix: Dirichlet/Beta parameter")
    mix_views: int = _p(2, lo=1, doc="augmix: augmented views per example (the paper: 2)")

    def __post_init__(self) -> None:
        if self.mix_depth == 0:
            raise ConfigError("objective.mix_depth = 0: must be -1 (random 1-3 per chain) or >= 1")


def build_objective(cfg: Any) -> Objective:
    return OBJECTIVES.lookup(cfg.name).from_params(cfg)
