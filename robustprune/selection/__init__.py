"""Selection methods, registered by name.

``select.method`` names a :class:`SubsetSelector` (which examples each epoch, with weights) and
``select.mining`` a :class:`BatchMiner` (how much attack each example of a batch gets); any
selector stacks with any miner and any training attack. To add a method: subclass one of the
two in a new module, give it a ``name``, and add it to the registry below. The training loop
needs no change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robustprune.config import SelectConfig
from robustprune.selection.base import (
    BatchMiner,
    Selection,
    SelectionContext,
    SubsetSelector,
    class_balanced_sample,
)
from robustprune.selection.bullettrain import BulletTrain
from robustprune.selection.coreset import CoresetCRAIG, CoresetGradMatch
from robustprune.selection.full import Full
from robustprune.selection.glister import Glister
from robustprune.selection.random_subset import RandomOnline, RandomStatic
from robustprune.selection.score import ScoreSelector

SELECTORS: dict[str, type[SubsetSelector]] = {
    cls.name: cls for cls in (Full, RandomStatic, RandomOnline, ScoreSelector, CoresetGradMatch,
                              CoresetCRAIG, Glister)
}
MINERS: dict[str, type[BatchMiner]] = {cls.name: cls for cls in (BatchMiner, BulletTrain)}

__all__ = [
    "MINERS",
    "SELECTORS",
    "BatchMiner",
    "BulletTrain",
    "Full",
    "Selection",
    "SelectionContext",
    "SubsetSelector",
    "build_miner",
    "build_selector",
    "class_balanced_sample",
]


def build_selector(cfg: SelectConfig, seed: int, scores_table: Path | None = None,
                   scores_cost: dict[str, Any] | None = None) -> SubsetSelector:
    """The subset selector named by ``select.method``, with its params (the ``score`` method
    also takes the scoring stage's table and cost)."""
    cls = SELECTORS.get(cfg.method)
    if cls is None:
        allowed = ", ".join(SELECTORS)
        raise ValueError(f"unknown selection method {cfg.method!r}; allowed: {allowed}")
    if cls in (CoresetGradMatch, CoresetCRAIG, Glister):
        return cls(fraction=cfg.fraction, seed=seed, warm=cfg.coreset_warm,
                   every=cfg.coreset_every, features=cfg.coreset_features)
    if cls is ScoreSelector:
        return cls(fraction=cfg.fraction, seed=seed, score=cfg.score, keep=cfg.keep,
                   table=scores_table, cost=scores_cost)
    return cls(fraction=cfg.fraction, seed=seed)


def build_miner(cfg: SelectConfig) -> BatchMiner:
    """The per-batch miner named by ``select.mining``."""
    if cfg.mining == "bullettrain":
        return BulletTrain(gamma=cfg.bt_gamma, robust_steps=cfg.bt_robust_steps,
                           robust_step_factor=cfg.bt_robust_step_factor)
    return BatchMiner()
