"""Learning-rate schedules (``warmup.schedule``, ``train.schedule``): each a pure function of
training progress t in [0, 1) giving the multiplier of the base LR, so a resumed run needs no
schedule state and a run with fewer epochs anneals over its own budget."""

from __future__ import annotations

from collections.abc import Callable

from robustprune.registry import Registry


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
