"""Selection methods, registered by name (``select.method`` in params.yaml).

To add a method: subclass :class:`SubsetSelector` (or :class:`BatchMiner`) in a new module,
give it a ``name``, and add it to the registry below; the training loop needs no change.
"""

from __future__ import annotations

from robustprune.selection.base import (
    BatchMiner,
    Selection,
    SelectionContext,
    SubsetSelector,
    class_balanced_sample,
)
from robustprune.selection.full import Full
from robustprune.selection.random_subset import RandomOnline, RandomStatic

SELECTORS: dict[str, type[SubsetSelector]] = {
    cls.name: cls for cls in (Full, RandomStatic, RandomOnline)
}
MINERS: dict[str, type[BatchMiner]] = {BatchMiner.name: BatchMiner}

__all__ = ["MINERS", "SELECTORS", "BatchMiner", "Selection", "SelectionContext",
           "SubsetSelector", "build_selector", "class_balanced_sample"]


def build_selector(method: str, fraction: float, seed: int) -> SubsetSelector:
    if method not in SELECTORS:
        raise ValueError(f"unknown selection method {method!r}; allowed: {', '.join(SELECTORS)}")
    return SELECTORS[method](fraction=fraction, seed=seed)
