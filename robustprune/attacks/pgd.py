"""PGD (Madry et al. 2018): K projected steps of size α from a uniform random start."""

from __future__ import annotations

from dataclasses import dataclass

from robustprune.attacks.base import Attack


@dataclass(frozen=True)
class PGD(Attack):
    """Projected gradient descent in the ℓ∞ or ℓ2 ball; the base :class:`Attack` as is."""

    name = "pgd"
