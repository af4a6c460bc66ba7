"""``prune``: static data pruning by a per-example score from the scoring stage ("Less is More").

Keeps ⌈f·|class|⌉ examples per class (class-balanced), chosen once and kept for the whole run:
from the hardest (highest score) or the easiest end, or by coverage (CCS, Zheng et al., ICLR
2023): drop the hardest ``cut`` share of the class (mislabelled or hopeless examples), split
the rest's score range into ``bins`` equal-width strata and fill the budget evenly across
them, smallest stratum first, at random within each. Hardest-first keeps only the boundary and
collapses at high prune rates (a class can lose every typical example and be given up on);
coverage keeps every difficulty level represented. The scoring stage's passes and seconds
are charged to this method's ``select`` phase at its first epoch: a pruning method is only as
cheap as its scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from robustprune import distributed
from robustprune.errors import InputError
from robustprune.schema import param
from robustprune.selection.base import (
    Selection,
    SelectionContext,
    SubsetSelector,
    class_budgets,
    sorted_union,
)
from robustprune.selection.scoring import SCORES


def top_per_class(scores: torch.Tensor, y: torch.Tensor, fraction: float, num_classes: int,
                  hardest: bool = True) -> torch.Tensor:
    """Indices of the ⌈f·n_c⌉ highest (or lowest) scores of each class; ties by index."""
    return sorted_union([
        members[torch.sort(-scores[members] if hardest else scores[members],
                           stable=True).indices[:k]]
        for members, k in class_budgets(y, fraction, num_classes)])


def coverage_per_class(scores: torch.Tensor, y: torch.Tensor, fraction: float,
                       num_classes: int, cut: float, bins: int,
                       generator: torch.Generator) -> torch.Tensor:
    """CCS's stratified selection, class by class: ⌈f·n_c⌉ indices per class (see the module)."""
    picked = []
    for members, k in class_budgets(y, fraction, num_classes):
        s = scores[members]
        order = torch.sort(s, stable=True).indices  # easiest first
        keep_n = max(k, members.numel() - math.ceil(cut * members.numel()))
        pool, ps = members[order[:keep_n]], s[order[:keep_n]]
        lo, hi = float(ps.min()), float(ps.max())
        width = (hi - lo) / bins if hi > lo else 1.0
        stratum = ((ps - lo) / width).floor().clamp(0, bins - 1).long()
        strata = [pool[stratum == b] for b in range(bins)]
        strata = sorted((t for t in strata if t.numel()), key=lambda t: t.numel())
        chosen, left = [], k
        for i, t in enumerate(strata):
            take = min(t.numel(), left // (len(strata) - i))
            chosen.append(t[torch.randperm(t.numel(), generator=generator)[:take]])
            left -= take
        got = torch.cat(chosen) if chosen else torch.empty(0, dtype=torch.long)
        if left > 0:  # floors left a few: fill at random from the pool's unpicked
            rest = pool[~torch.isin(pool, got)]
            got = torch.cat([got, rest[torch.randperm(rest.numel(), generator=generator)[:left]]])
        picked.append(got)
    return sorted_union(picked)


@dataclass(frozen=True)
class ScoreTable:
    """The scoring stage's output as the prune selector reads it: the per-example table and
    what computing it cost (charged to the method, since pruning is only as cheap as its
    scores)."""

    path: Path
    cost: dict[str, Any]


@dataclass(frozen=True)
class PruneOptions:
    score: str = param("adv_loss", choices=SCORES, doc="which score ranks the examples")
    keep: str = param("hardest", choices=("hardest", "easiest", "coverage"),
                      doc="which examples are kept, class-balanced: one end of the ranking, "
                          "or coverage-centric strata over it (CCS)")
    cut: float = param(0.1, lo=0.0, hi=0.9, doc="keep: coverage: share of each class's "
                                                 "hardest examples dropped first")
    bins: int = param(50, lo=1, doc="keep: coverage: equal-width score strata per class")


class Prune(SubsetSelector):
    name = "prune"
    Options = PruneOptions
    needs = ("scores",)

    def __init__(self, fraction: float = 1.0, seed: int = 0,
                 options: PruneOptions | None = None, scores: ScoreTable | None = None) -> None:
        super().__init__(fraction, seed, options)
        if scores is None:
            raise InputError("the prune selector needs the scoring stage's table (--scores)")
        self.table = scores
        self.current: Selection | None = None
        self.charged = False

    def _load_scores(self, n: int) -> torch.Tensor:
        import pandas as pd

        df = pd.read_parquet(self.table.path)
        if len(df) != n or not (df["index"].to_numpy() == range(n)).all():
            raise InputError(f"{self.table.path}: scores are for {len(df)} examples, training "
                             f"has {n}; rerun the scoring stage")
        return torch.tensor(df[self.options.score].to_numpy(copy=True), dtype=torch.float64)

    def select(self, ctx: SelectionContext) -> Selection:
        if not self.charged:
            cost = self.table.cost
            if distributed.world().main:  # once per run: the ranks' counters are summed
                ctx.meter.add("select", forward=int(cost.get("forward_passes", 0)),
                              backward=int(cost.get("backward_passes", 0)),
                              seconds=float(cost.get("seconds", 0.0)))
            self.charged = True
        if self.current is None:
            scores = self._load_scores(len(ctx.y_train))
            y = ctx.y_train.cpu()
            if self.options.keep == "coverage":
                g = torch.Generator().manual_seed(self.seed)
                idx = coverage_per_class(scores, y, self.fraction, ctx.num_classes,
                                         self.options.cut, self.options.bins, g)
            else:
                idx = top_per_class(scores, y, self.fraction, ctx.num_classes,
                                    hardest=self.options.keep == "hardest")
            self.current = Selection(indices=idx)
        return self.current

    def state_dict(self) -> dict[str, Any]:
        return {"charged": self.charged}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.charged = bool(state.get("charged", False))
