"""The two selection interfaces the training loop knows about.

Selectors save adversarial compute at two granularities, and a method may use either or both:

- :class:`SubsetSelector` decides, at the start of each epoch, *which* training examples are
  used and with what weights (static pruning, online random subsets, periodic coresets).
  It returns indices + weights + optional scores (the DeepCore convention).
- :class:`BatchMiner` decides, per batch, *how much attack* each example gets (BulletTrain).

The loop calls both through these methods only, so stacking is composition: any subset
selector with any miner with any training attack. Work a selector does that touches the model
runs inside ``ctx.meter.in_phase("select")`` through ``ctx.model`` (a counting model), so its
passes and seconds are charged to the method. The loop puts the model in eval mode before
``select`` (selectors score the inference-mode network), and restores nothing: the training
step sets its own mode.

Each class declares its own params as an ``Options`` section (the keys a ``methods`` entry may
set for it, validated by config) and the pipeline inputs it ``needs`` by name (e.g. the
``scores`` table); nothing outside the class knows either.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from robustprune.attacks import Attack
from robustprune.cost import CostMeter
from robustprune.objectives import Objective
from robustprune.schema import NoOptions


@dataclass
class Selection:
    """Training examples for one epoch: positions into the training set, and their weights."""

    indices: torch.Tensor  # int64 [M]
    weights: torch.Tensor | None = None  # float [M]; None means all 1

    def __post_init__(self) -> None:
        if self.weights is not None and self.weights.shape != self.indices.shape:
            raise ValueError("selection weights must match the indices")


@dataclass
class SelectionContext:
    """What a selector may look at. ``model`` counts passes; use ``meter.in_phase('select')``."""

    epoch: int
    epochs: int
    model: nn.Module
    x_train: torch.Tensor  # uint8 [N,C,H,W] on the training device
    y_train: torch.Tensor  # int64 [N]
    num_classes: int
    objective: Objective
    attack: Attack
    meter: CostMeter
    seed: int
    batch_size: int
    x_val: torch.Tensor | None = None  # held-out split, for methods that select against it
    y_val: torch.Tensor | None = None
    lr: float = 0.0  # the base learning rate (GLISTER's one-step lookahead)


class SubsetSelector:
    """Base class: override :meth:`select`. ``fraction`` is the per-epoch data budget."""

    name: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions  # the keys a ``methods`` entry may set for it
    needs: ClassVar[tuple[str, ...]] = ()  # pipeline inputs, passed as keyword arguments
    uses_fraction: ClassVar[bool] = True  # False: trains on all data whatever the fraction
    needs_val: ClassVar[bool] = False  # selects against the validation split
    random: ClassVar[bool] = False  # a random-selection baseline (what "beats random" means)

    def __init__(self, fraction: float = 1.0, seed: int = 0, options: Any = None) -> None:
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        self.fraction = fraction
        self.seed = seed
        self.options = self.Options() if options is None else options

    def select(self, ctx: SelectionContext) -> Selection:
        raise NotImplementedError

    def observe(self, logits_adv: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> None:
        """Feedback after each training step, as miners get it: the logits the step trained
        on, their labels and positions (a selector that reuses training's own losses, such as
        InfoBatch, needs no scoring pass of its own)."""
        del logits_adv, y, idx

    def state_dict(self) -> dict[str, Any]:
        """Whatever must survive a kill-and-resume (e.g. the current coreset)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state


class BatchMiner:
    """Per-batch attack allocation. The default attacks every example fully."""

    name: ClassVar[str] = "none"
    Options: ClassVar[type] = NoOptions  # the keys a ``methods`` entry may set for it

    def __init__(self, options: Any = None) -> None:
        self.options = self.Options() if options is None else options

    def adversarial(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    objective: Objective, attack: Attack, meter: CostMeter) -> Any:
        """The training step's inputs (the objective's :meth:`Objective.training_inputs`)."""
        with meter.in_phase("attack"):
            return objective.training_inputs(model, x, y, attack)

    def observe(self, logits_adv: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> None:
        """Feedback after the training step: the model's logits on the inputs it trained on,
        their labels and their positions in the training set."""
        del logits_adv, y, idx

    def epoch_metrics(self) -> dict[str, float]:
        """Per-epoch statistics to log (reset after each call)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state


def class_budgets(y: torch.Tensor, fraction: float,
                  num_classes: int) -> Iterator[tuple[torch.Tensor, int]]:
    """Each non-empty class's member positions and its budget ⌈fraction·|class|⌉.

    Every subset method spends its budget class by class, so the kept subset has the class
    balance of the full set by construction; this is the one place that rule is written.
    """
    for c in range(num_classes):
        members = (y == c).nonzero().squeeze(1)
        if members.numel() > 0:
            yield members, min(members.numel(), math.ceil(fraction * members.numel()))


def sorted_union(picked: list[torch.Tensor]) -> torch.Tensor:
    """The per-class picks as one ascending index tensor (a stable order for the data loader)."""
    return torch.cat(picked).sort().values if picked else torch.empty(0, dtype=torch.long)


def class_balanced_sample(y: torch.Tensor, fraction: float, generator: torch.Generator,
                          num_classes: int) -> torch.Tensor:
    """⌈fraction·|class|⌉ random examples of each class, sorted (deterministic for a generator)."""
    return sorted_union([members[torch.randperm(members.numel(), generator=generator)[:k]]
                         for members, k in class_budgets(y.cpu(), fraction, num_classes)])


def output_layer(model: nn.Module) -> nn.Linear:
    """The last ``nn.Linear`` of the model: the layer whose gradient is taken in closed form."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("this selection needs a model whose output layer is nn.Linear")
    return linears[-1]


@contextmanager
def head_inputs(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collect the output layer's input (penultimate features) of every forward while active.

    Output-layer gradients have a closed form, (p − onehot) ⊗ [h, 1], so scores and coresets
    need h but no backward pass; a forward hook reads it without changing the model's forward,
    which keeps any architecture with a linear head usable.
    """
    captured: list[torch.Tensor] = []
    handle = output_layer(model).register_forward_hook(
        lambda _m, inp, _o: captured.append(inp[0].detach()))
    try:
        yield captured
    finally:
        handle.remove()


def with_bias(h: torch.Tensor) -> torch.Tensor:
    """Features with a constant 1 appended, so the bias gradient is part of the product."""
    return torch.cat([h, torch.ones_like(h[:, :1])], dim=1)


def on_main(solve: Callable[[], Selection]) -> Selection:
    """Run a selection solver once, on rank 0 of a torchrun run, and give every rank its
    result (a plain call for one process)."""
    from robustprune import distributed

    if not distributed.world().distributed:
        return solve()
    return broadcast_selection(solve() if distributed.world().main else None)


def broadcast_selection(picked: Selection | None) -> Selection:
    """Rank 0's selection on every rank (``picked`` is only read on rank 0)."""
    from robustprune import distributed

    box = distributed.broadcast_object(
        None if picked is None else {"indices": picked.indices.cpu(),
                                     "weights": None if picked.weights is None
                                     else picked.weights.cpu()})
    return Selection(indices=box["indices"], weights=box["weights"])


def seeded_generator(*parts: int) -> torch.Generator:
    """A CPU generator seeded from integers (e.g. seed and epoch): no hidden global state."""
    g = torch.Generator()
    seed = 0
    for p in parts:
        seed = (seed * 1_000_003 + int(p)) % (2**63 - 1)
    g.manual_seed(seed)
    return g
