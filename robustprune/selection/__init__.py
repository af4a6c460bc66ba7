"""Selection methods, registered by name.

A ``methods`` entry names a :class:`SubsetSelector` (``selector``: which examples each epoch,
with weights) and a :class:`BatchMiner` (``miner``: how much attack each example of a batch
gets); any selector stacks with any miner and any training attack. To add one: subclass either
in a new module, give it a ``name`` and, if it has params, an ``Options`` section; import the
class below (that line registers it). Config, pipeline and training loop need no change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from robustprune.errors import InputError
from robustprune.registry import Registry
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
from robustprune.selection.prune import Prune, ScoreTable
from robustprune.selection.random_subset import RandomOnline, RandomStatic

SELECTORS: Registry[type[SubsetSelector]] = Registry.collect("selector", SubsetSelector, vars())
MINERS: Registry[type[BatchMiner]] = Registry.collect("miner", BatchMiner, vars())

__all__ = [
    "MINERS",
    "SELECTORS",
    "BatchMiner",
    "BulletTrain",
    "CoresetCRAIG",
    "CoresetGradMatch",
    "Full",
    "Glister",
    "Prune",
    "RandomOnline",
    "RandomStatic",
    "ScoreTable",
    "Selection",
    "SelectionContext",
    "SubsetSelector",
    "build_miner",
    "build_selector",
    "class_balanced_sample",
]


def build_selector(name: str, fraction: float, seed: int, options: Any = None,
                   inputs: Mapping[str, Any] | None = None) -> SubsetSelector:
    """Selector ``name`` with its options and the pipeline inputs it declares it ``needs``."""
    cls = SELECTORS.lookup(name)
    inputs = inputs or {}
    missing = [n for n in cls.needs if inputs.get(n) is None]
    if missing:
        raise InputError(f"selector {name} needs the {missing[0]} input, which was not given")
    return cls(fraction, seed, options, **{n: inputs[n] for n in cls.needs})


def build_miner(name: str, options: Any = None) -> BatchMiner:
    """Miner ``name`` with its options."""
    return MINERS.lookup(name)(options)
