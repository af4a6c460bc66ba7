"""FGSM-RS (Wong et al. 2020, "Fast is better than free"): one step from a uniform random start.

Wong et al. use α = 1.25·ε; the step is projected back to the ε-ball.
"""

from __future__ import annotations

from dataclasses import dataclass

from robustprune.attacks.base import Attack


@dataclass(frozen=True)
class FGSMRS(Attack):
    steps: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.steps != 1:
            raise ValueError("FGSM-RS takes exactly one step")
