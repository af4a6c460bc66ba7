"""``score``: static pruning by a per-example score from the selection-scoring stage.

Keeps ⌈f·|class|⌉ examples per class (class-balanced) from the hardest (highest score) or the
easiest end, chosen once and kept for the whole run. The scoring stage's passes and seconds
are charged to this method's ``select`` phase at its first epoch: a pruning method is only as
cheap as its scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from robustprune.selection.base import (
    Selection,
    SelectionContext,
    SubsetSelector,
    class_budgets,
    sorted_union,
)


def top_per_class(scores: torch.Tensor, y: torch.Tensor, fraction: float, num_classes: int,
                  hardest: bool = True) -> torch.Tensor:
    """Indices of the ⌈f·n_c⌉ highest (or lowest) scores of each class; ties by index."""
    return sorted_union([
        members[torch.sort(-scores[members] if hardest else scores[members],
                           stable=True).indices[:k]]
        for members, k in class_budgets(y, fraction, num_classes)])


class ScoreSelector(SubsetSelector):
    name = "score"

    def __init__(self, fraction: float = 1.0, seed: int = 0, score: str = "adv_loss",
                 keep: str = "hardest", table: Path | None = None,
                 cost: dict[str, Any] | None = None) -> None:
        super().__init__(fraction, seed)
        self.score, self.keep, self.table, self.cost = score, keep, table, cost or {}
        self.current: Selection | None = None
        self.charged = False

    def _load_scores(self, n: int) -> torch.Tensor:
        import pandas as pd

        if self.table is None:
            raise ValueError("the score selector needs the scores table (selection scoring stage)")
        df = pd.read_parquet(self.table)
        if len(df) != n or not (df["index"].to_numpy() == range(n)).all():
            raise ValueError(f"{self.table}: scores are for {len(df)} examples, training has {n}")
        return torch.tensor(df[self.score].to_numpy(copy=True), dtype=torch.float64)

    def select(self, ctx: SelectionContext) -> Selection:
        if not self.charged:
            ctx.meter.add("select", forward=int(self.cost.get("forward_passes", 0)),
                          backward=int(self.cost.get("backward_passes", 0)),
                          seconds=float(self.cost.get("seconds", 0.0)))
            self.charged = True
        if self.current is None:
            scores = self._load_scores(len(ctx.y_train))
            idx = top_per_class(scores, ctx.y_train.cpu(), self.fraction, ctx.num_classes,
                                hardest=self.keep == "hardest")
            self.current = Selection(indices=idx, scores=scores.float())
        return self.current

    def state_dict(self) -> dict[str, Any]:
        return {"charged": self.charged}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.charged = bool(state.get("charged", False))
