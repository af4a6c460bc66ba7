"""One training phase's optimiser settings (the ``warmup`` and ``train`` sections) and the
learning-rate schedules they name: each schedule a pure function of training progress t in
[0, 1) giving the multiplier of the base LR, so a resumed run needs no schedule state and a
run with fewer epochs anneals over its own budget."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from robustprune.augmentations import AUGMENTS
from robustprune.registry import Registry
from robustprune.schema import param as _p


def piecewise(t: float) -> float:
    """×1, then ×0.1 from 50 % and ×0.01 from 75 % (Madry et al., Rice et al.)."""
    return 1.0 if t < 0.5 else 0.1 if t < 0.75 else 0.01


def onecycle(t: float) -> float:
    """Linear from 0.1 to 1 over the first 25 %, then linear down to 0."""
    return 0.1 + 0.9 * t / 0.25 if t < 0.25 else (1.0 - t) / 0.75


def constant(t: float) -> float:
    del t
    return 1.0


SCHEDULES: Registry[Callable[[float], float]] = Registry(
    "schedule", {"piecewise": piecewise, "onecycle": onecycle, "constant": constant})


@dataclass(frozen=True)
class OptimConfig:
    """One training phase (warm-up or robust training): SGD with momentum and an LR schedule."""

    epochs: int = _p(1, lo=0)
    batch_size: int = _p(128, lo=1)
    lr: float = _p(0.05, lo=0.0, lo_open=True)
    momentum: float = _p(0.9, lo=0.0, hi=1.0)
    weight_decay: float = _p(5e-4, lo=0.0)
    schedule: str = _p("onecycle", choices=SCHEDULES.names)
    augment: str = _p("none", choices=AUGMENTS.names)
    val_n: int = _p(1000, lo=0, doc="validation examples scored after each epoch; 0 = all")
    co_drop: float = _p(0.2, lo=0.0, hi=1.0, doc="catastrophic overfitting: an epoch whose "
                                                 "validation PGD accuracy falls this far below "
                                                 "the best earlier epoch's is flagged")
    co_rollback: bool = _p(False, doc="on such a collapse, stop and keep the best epoch's "
                                      "weights (early stopping, as fast adversarial training "
                                      "does)")
