"""Random baselines at the same budget as a method: they are the bar every selector must clear.

``random``: one class-balanced subset of ``fraction`` drawn once from the seed and kept.
``random-online``: a fresh class-balanced subset every epoch (a strong baseline in the coreset
literature because every example is seen over the run).
"""

from __future__ import annotations

from robustprune.selection.base import (
    Selection,
    SelectionContext,
    SubsetSelector,
    class_balanced_sample,
    seeded_generator,
)


class RandomStatic(SubsetSelector):
    name = "random"
    random = True

    def select(self, ctx: SelectionContext) -> Selection:
        g = seeded_generator(self.seed, 0x5EED)
        return Selection(class_balanced_sample(ctx.y_train, self.fraction, g, ctx.num_classes))


class RandomOnline(SubsetSelector):
    name = "random-online"
    random = True

    def select(self, ctx: SelectionContext) -> Selection:
        g = seeded_generator(self.seed, 0x5EED, ctx.epoch + 1)
        return Selection(class_balanced_sample(ctx.y_train, self.fraction, g, ctx.num_classes))
