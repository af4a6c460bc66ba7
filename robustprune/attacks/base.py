"""The uniform attack interface and the geometry every attack shares (ℓ∞ / ℓ2 balls, [0,1] box).

An attack maximises a *per-example* loss of the logits. The caller supplies that loss, so one
PGD serves PGD-AT (cross-entropy), TRADES (KL to the clean prediction) and MART, and a selector
can give each example its own number of steps by attacking sub-batches with :meth:`Attack.with_`.
Attacks never change the model's train/eval mode: the training loop decides.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from robustprune import distributed

NORMS = ("linf", "l2")
"""The threat models every attack supports (``attack.norm``)."""

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``loss_fn(logits, idx)``: the per-example loss [M] the attack maximises, for logits [M, K]
of the batch rows at positions ``idx`` [M] (attacks drop examples as they finish)."""


def cross_entropy_loss(y: torch.Tensor) -> LossFn:
    return lambda logits, idx: F.cross_entropy(logits, y[idx], reduction="none")


def _flat_norm(t: torch.Tensor) -> torch.Tensor:
    """Per-example ℓ2 norm, shaped to broadcast against ``t``."""
    return t.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (t.dim() - 1)))


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Project perturbations onto the ε-ball of the norm."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    return delta * (eps / _flat_norm(delta)).clamp(max=1.0)


def ascent_direction(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """Steepest-ascent direction of unit norm (sign for ℓ∞, normalised gradient for ℓ2)."""
    return grad.sign() if norm == "linf" else grad / _flat_norm(grad)


def random_in_ball(like: torch.Tensor, radius: float, norm: str) -> torch.Tensor:
    """Uniform in the ℓ∞ cube, or a uniform direction with uniform radius in the ℓ2 ball.

    Drawn through :mod:`robustprune.distributed`, so a data-parallel rank draws the same
    numbers for its rows as one process does for the whole batch."""
    if norm == "linf":
        return (distributed.rand_like(like) * 2 - 1) * radius
    direction = distributed.randn_like(like)
    direction = direction / _flat_norm(direction)
    r = distributed.rand_rows(like, *([1] * (like.dim() - 1))) * radius
    return direction * r


@dataclass(frozen=True)
class Attack:
    """Iterated gradient attack: ``steps`` ascent steps of size ``alpha`` from a random start.

    Subclasses change only the start and whether steps are projected to the ε-ball.
    """

    name: ClassVar[str] = ""
    fixed: ClassVar[tuple[str, ...]] = ()
    """Settings the method prescribes (a method entry may not override them)."""
    defines_start: ClassVar[bool] = False
    """True when the random start is part of the method (FGSM-RS's uniform start, N-FGSM's 2ε
    noise): an objective's own start (TRADES/MART's 0.001·N(0,1)) must not replace it."""

    eps: float
    alpha: float
    steps: int
    norm: str = "linf"
    start_radius: float | None = None  # None: eps; 0 disables the random start
    project_to_ball: bool = True

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        if self.eps < 0 or self.alpha <= 0 or self.steps < 0:
            raise ValueError("attack needs eps >= 0, alpha > 0, steps >= 0")

    @classmethod
    def from_params(cls, cfg: Any) -> Attack:
        """The attack for an ``attack`` section (norm, eps, alpha, steps); subclasses that fix
        a setting by definition (one step, a prescribed step size) ignore that key."""
        return cls(eps=cfg.eps, alpha=cfg.alpha, steps=cfg.steps, norm=cfg.norm)

    def cheaper(self, steps: int, step_factor: float) -> Attack | None:
        """The cheaper attack for examples that need less (BulletTrain's confident ones): at
        most ``steps`` steps of ``step_factor``·α, projected to the ε-ball like every step; None
        (no attack) when ``steps`` is 0."""
        if steps == 0:
            return None
        return self.with_(steps=min(steps, self.steps), alpha=self.alpha * step_factor)

    def with_(self, **changes: object) -> Attack:
        """A copy with some settings changed (e.g. fewer, larger steps for easy examples)."""
        return dataclasses.replace(self, **changes)

    def initial_delta(self, x: torch.Tensor) -> torch.Tensor:
        radius = self.eps if self.start_radius is None else self.start_radius
        if radius == 0:
            return torch.zeros_like(x)
        return random_in_ball(x, radius, self.norm)

    def perturb(self, model: nn.Module, x: torch.Tensor, loss_fn: LossFn,
                delta: torch.Tensor | None = None,
                stop_labels: torch.Tensor | None = None) -> torch.Tensor:
        """Return adversarial inputs in [0,1] (and in the ε-ball when ``project_to_ball``).

        With ``stop_labels`` (evaluation), an example is frozen at the first iterate the model
        misclassifies and drops out of later steps: any point in the ball that fools the model
        is a valid attack, so this is at least as strong as the last iterate, and cheaper.
        """
        x = x.detach()
        if self.steps == 0 or (x.shape[0] == 0 and not distributed.drawing_globally()):
            return x.clone()  # (a data-parallel rank with no rows still makes its draws)
        delta = self.initial_delta(x) if delta is None else delta.detach()
        delta = (x + delta).clamp(0, 1) - x
        active = torch.arange(x.shape[0], device=x.device)
        for _ in range(self.steps):
            da = delta[active].requires_grad_(True)
            logits = model(x[active] + da)
            if stop_labels is not None:
                keep = logits.argmax(1) == stop_labels[active]
                if not keep.any():
                    break
                if not keep.all():
                    active, logits = active[keep], logits[keep]
            (grad,) = torch.autograd.grad(loss_fn(logits, active).sum(), da)
            if stop_labels is not None and len(grad) != len(active):
                grad, da = grad[keep], da[keep]
            step = da.detach() + self.alpha * ascent_direction(grad, self.norm)
            if self.project_to_ball:
                step = project(step, self.eps, self.norm)
            xa = x[active]
            delta[active] = (xa + step).clamp(0, 1) - xa
        return (x + delta).detach()

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """torchattacks-style call: maximise cross-entropy w.r.t. the true labels."""
        return self.perturb(model, x, cross_entropy_loss(y))


@dataclass(frozen=True)
class OneStep(Attack):
    """A single-step attack whose random start is part of the method (FGSM-RS, N-FGSM).

    It has no cheaper version that still attacks: a larger step would erase the random start
    after projection (FGSM-RS becomes plain FGSM) or leave the method's own bound (N-FGSM,
    unprojected, would reach 5ε). So its cheaper attack is itself, or none (``steps`` = 0).
    """

    steps: int = 1
    fixed: ClassVar[tuple[str, ...]] = ("steps",)
    defines_start: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.steps != 1:
            raise ValueError(f"{self.name} takes exactly one step")

    def cheaper(self, steps: int, step_factor: float) -> Attack | None:
        del step_factor
        return None if steps == 0 else self
