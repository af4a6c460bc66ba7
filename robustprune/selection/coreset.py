"""Adversarial coreset selection (Dolatabadi et al., ECCV 2022 / IJCV 2023).

Convergence of adversarial training on a weighted subset depends on how well the subset's
weighted gradient matches the full gradient over *adversarial* examples, so the subset is chosen
to match last-layer gradients of the training loss on freshly attacked inputs:

1. Warm start: the first ⌈κ·E⌉ epochs train on all data (``warm`` = κ). The reference
   code splits this into full-data and idle epochs; we keep only full-data adversarial epochs.
2. Every R epochs (``every``) the candidates are attacked (the whole training set, or with
   ``pool`` < 1 a fresh class-stratified random share of it; the training attack, or with
   ``select_steps`` a PGD of that many steps) and the objective's gradient at the output layer
   is taken in closed form:
   g = ∂ℓ/∂z ⊗ [h, 1] (z logits, h penultimate features), summed over the clean and adversarial
   forwards for TRADES/MART. The objective's own formula is differentiated, so TRADES' β enters
   exactly once (a bug of the reference code).
3. Per class, budget ⌈f·|class|⌉: GradMatch (non-negative OMP) or CRAIG (facility location).
   Any shortfall is filled at random with weight 1.
4. Training uses Σ w·ℓ / Σ w per batch.

All of it runs inside the ``select`` cost phase through the counting model, so the full-set
attack, the forwards and the solver time are charged to the method.

What that overhead is made of (Fashion-MNIST, 20 000 examples, SmallCNN, 2 CPU threads): the
attack of every candidate costs about as much as an epoch of training's attacks, and
GradMatch's solver takes ≈ 90 s for 2 000 per class at f = 0.3, against ≈ 1 s for CRAIG. OMP's
picks scan candidates × budget (∝ pool·f), but its non-negative weight refits after each pick
grow with the budget alone (∝ f³ per class) and dominate at that size. So ``pool`` shrinks the
attack (∝ pool) and OMP's scans, not its refits; ``select_steps`` shrinks the attack (PGD-s
costs s + 1 of PGD-10's 11 passes per example): the gradients only rank examples, and the
closed-form output-layer gradient at a few-step adversarial point ranks them almost as a
10-step one does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from robustprune import distributed
from robustprune.attacks import Attack
from robustprune.errors import ConfigError
from robustprune.schema import param
from robustprune.selection.base import (
    Selection,
    SelectionContext,
    SubsetSelector,
    class_budgets,
    head_inputs,
    on_main,
    output_layer,
    seeded_generator,
    with_bias,
)
from robustprune.selection.solvers import facility_location, omp_nonneg


@dataclass(frozen=True)
class ScheduleOptions:
    """When a periodically reselected subset is chosen (coresets, GLISTER)."""

    warm: float = param(0.5, lo=0.0, hi=0.99, doc="share of epochs on full data first")
    every: int = param(2, lo=1, doc="epochs between reselections")


@dataclass(frozen=True)
class CoresetOptions(ScheduleOptions):
    features: bool = param(True, doc="gradients = dloss/dlogits (x) [penultimate features, 1]; "
                                     "false: dloss/dlogits only")
    pool: float = param(1.0, lo=0.0, hi=1.0, lo_open=True,
                        doc="share of each class drawn at random as candidates at each "
                            "reselection (1: all); only they are attacked and solved; >= fraction")
    select_steps: int = param(0, lo=0, doc="PGD steps of the reselection attack, step "
                                           "2.5*eps/steps (0: the training attack)")

    def check_fraction(self, fraction: float, prefix: str) -> None:
        """A coreset of ⌈f·n_c⌉ per class is chosen among the candidates: fewer is no coreset."""
        if self.pool < fraction:
            raise ConfigError(f"{prefix}.pool = {self.pool:g}: must be >= fraction "
                              f"({fraction:g}), the coreset is chosen among the pool")


def selection_attack(attack: Attack, steps: int) -> Attack:
    """The attack a reselection runs: the training attack, or (``steps`` > 0) a PGD-style
    attack of ``steps`` steps of 2.5·ε/steps (Madry et al.'s rule, so few steps still reach the
    ball's edge) from the same start, projected like the training attack."""
    if steps == 0 or steps == attack.steps:
        return attack
    return attack.with_(steps=steps, alpha=max(attack.alpha, 2.5 * attack.eps / steps))


def output_gradients(ctx: SelectionContext, x_u8: torch.Tensor, y_all: torch.Tensor,
                     with_features: bool = True, batch_size: int | None = None, salt: int = 0,
                     main_only: bool = False,
                     attack: Attack | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Output-layer gradients of the objective on freshly attacked inputs, and the adversarial
    penultimate features [N, H+1] (with a constant 1 for the bias).

    The pass runs in chunks whose attack draws are seeded by (seed, epoch, ``salt``, chunk);
    under torchrun each rank attacks a contiguous block of chunks and the rows are gathered
    in order, so every rank gets the rows one process computes (rank 0 alone with
    ``main_only``, for the rank-0 solvers). ``attack`` replaces the training attack.

    Chunks default to the training batch size, so the attack costs per example what training's
    attack costs (on 2 CPU threads 4× larger chunks ran 1.5× slower per example: 512-row
    activations fall out of cache)."""
    model, objective = ctx.model, ctx.objective
    attack = ctx.attack if attack is None else attack
    was_training = model.training
    model.eval()
    bs = batch_size or ctx.batch_size
    head = output_layer(model)
    k, h1 = head.out_features, head.in_features + 1
    rows = [torch.zeros((0, k * h1 if with_features else k), device=x_u8.device)]
    feats = [torch.zeros((0, h1), device=x_u8.device)]
    first, end = distributed.my_chunks(len(y_all), bs)
    try:
        with head_inputs(model) as captured:
            for c in range(first, end):
                x = x_u8[c * bs:(c + 1) * bs].float().div_(255.0)
                y = y_all[c * bs:(c + 1) * bs]
                with distributed.seeded(distributed.chunk_seed(ctx.seed, ctx.epoch, salt, c),
                                        x.device):
                    x_adv = objective.adversarial(model, x, y, attack)
                captured.clear()
                with torch.no_grad():
                    z_adv = model(x_adv)
                    z_clean = model(x) if objective.needs_clean else None
                h_adv = captured[0]
                h_clean = captured[1] if z_clean is not None else None
                with torch.enable_grad():
                    za = z_adv.detach().requires_grad_(True)
                    zc = None if z_clean is None else z_clean.detach().requires_grad_(True)
                    losses = objective.logit_losses(zc, za, y)
                    wrt = [za] if zc is None else [za, zc]
                    grads = torch.autograd.grad(losses.sum(), wrt)
                parts = [(grads[0], h_adv)] + ([(grads[1], h_clean)] if zc is not None else [])
                total = None
                for g, h in parts:
                    if with_features:
                        g = (g[:, :, None] * with_bias(h)[:, None, :]).flatten(1)
                    total = g if total is None else total + g
                rows.append(total.float())
                feats.append(with_bias(h_adv).float())
    finally:
        model.train(was_training)
    return (distributed.gather_cat(torch.cat(rows), main_only),
            distributed.gather_cat(torch.cat(feats), main_only))


class Periodic(SubsetSelector):
    """Full data for a warm start, then a subset reselected every few epochs; subclasses say
    how a subset is chosen (:meth:`reselect`)."""

    Options = ScheduleOptions

    def __init__(self, fraction: float = 1.0, seed: int = 0, options: Any = None) -> None:
        super().__init__(fraction, seed, options)
        self.warm, self.every = self.options.warm, self.options.every
        self.current: Selection | None = None

    def reselect(self, ctx: SelectionContext) -> Selection:
        raise NotImplementedError

    def warm_epochs(self, epochs: int) -> int:
        return math.ceil(self.warm * epochs - 1e-9)

    def select(self, ctx: SelectionContext) -> Selection:
        warm = self.warm_epochs(ctx.epochs)
        if ctx.epoch < warm:
            return Selection(indices=torch.arange(len(ctx.y_train)))
        if self.current is None or (ctx.epoch - warm) % self.every == 0:
            self.current = self.reselect(ctx)
        return self.current

    def state_dict(self) -> dict[str, Any]:
        if self.current is None:
            return {}
        return {"indices": self.current.indices, "weights": self.current.weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.current = (Selection(indices=state["indices"], weights=state["weights"])
                        if "indices" in state else None)


class _Coreset(Periodic):
    """Gradient-matching coresets: per-class budgets; subclasses name the solver."""

    Options = CoresetOptions

    def solve(self, grads: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def candidates(self, ctx: SelectionContext) -> torch.Tensor | None:
        """This reselection's candidate positions (sorted): of each class, a fresh random
        max(⌈pool·n_c⌉, budget) drawn from (seed, epoch); None when ``pool`` is 1 (all)."""
        if self.options.pool >= 1.0:
            return None
        g = seeded_generator(self.seed, 0x9001, ctx.epoch)
        picked = []
        for members, k in class_budgets(ctx.y_train.cpu(), self.fraction, ctx.num_classes):
            n = max(k, min(members.numel(), math.ceil(self.options.pool * members.numel())))
            picked.append(members[torch.randperm(members.numel(), generator=g)[:n]])
        return torch.cat(picked).sort().values.to(ctx.y_train.device)

    def reselect(self, ctx: SelectionContext) -> Selection:
        pool = self.candidates(ctx)
        x, y = ((ctx.x_train, ctx.y_train) if pool is None
                else (ctx.x_train[pool], ctx.y_train[pool]))
        attack = selection_attack(ctx.attack, self.options.select_steps)
        grads = output_gradients(ctx, x, y, self.options.features, main_only=True,
                                 attack=attack)[0]
        # the solver runs once (rank 0 under torchrun) and its choice is broadcast
        return on_main(lambda: self.per_class(ctx, grads.double(), pool))

    def per_class(self, ctx: SelectionContext, grads: torch.Tensor,
                  pool: torch.Tensor | None = None) -> Selection:
        """Run :meth:`solve` on each class's candidates (rows of ``grads``, at positions
        ``pool`` of the training set, all when None) with budget ⌈f·n_c⌉ of the whole class;
        random fill among the candidates, weight 1."""
        g = seeded_generator(self.seed, 0xC0DE, ctx.epoch)
        y_pool = ctx.y_train if pool is None else ctx.y_train[pool]
        budgets = {int(ctx.y_train[m[0]]): k
                   for m, k in class_budgets(ctx.y_train, self.fraction, ctx.num_classes)}
        picked, weights = [], []
        for members, _ in class_budgets(y_pool, 1.0, ctx.num_classes):
            n, k = members.numel(), budgets[int(y_pool[members[0]])]
            idx, w = self.solve(grads[members], k)
            idx, w = idx.to(members.device), w.to(torch.float32)
            chosen = members[idx]
            short = k - chosen.numel()
            if short > 0:
                taken = torch.zeros(n, dtype=torch.bool, device=members.device)
                taken[idx] = True
                rest = members[~taken]
                fill = rest[torch.randperm(rest.numel(), generator=g)[:short].to(rest.device)]
                chosen = torch.cat([chosen, fill])
                w = torch.cat([w.to(fill.device), torch.ones(fill.numel(), device=fill.device)])
            picked.append(chosen if pool is None else pool[chosen])
            weights.append(w.to(chosen.device))
        indices, w = torch.cat(picked), torch.cat(weights)
        order = indices.argsort()
        return Selection(indices=indices[order].cpu(), weights=w[order].cpu())


class CoresetGradMatch(_Coreset):
    """GradMatch: non-negative OMP matching the class's summed adversarial gradient."""

    name = "coreset-gradmatch"

    def solve(self, grads: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        return omp_nonneg(grads, k)


class CoresetCRAIG(_Coreset):
    """CRAIG: facility location on gradient distances; weight = examples represented."""

    name = "coreset-craig"

    def solve(self, grads: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        return facility_location(grads, k)
