"""``full``: every training example, every epoch: the denominator of every speed-up."""

from __future__ import annotations

import torch

from robustprune.selection.base import Selection, SelectionContext, SubsetSelector


class Full(SubsetSelector):
    name = "full"
    uses_fraction = False

    def select(self, ctx: SelectionContext) -> Selection:
        return Selection(indices=torch.arange(ctx.y_train.shape[0]))
