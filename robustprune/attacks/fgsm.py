"""FGSM-RS (Wong et al. 2020, "Fast is better than free"): one step from a uniform random start.

Wong et al. use α = 1.25·ε; the step is projected back to the ε-ball.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from robustprune.attacks.base import Attack


@dataclass(frozen=True)
class FGSMRS(Attack):
    name = "fgsm-rs"

    steps: int = 1

    @classmethod
    def from_params(cls, cfg: Any) -> FGSMRS:
        return cls(eps=cfg.eps, alpha=cfg.alpha, norm=cfg.norm)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.steps != 1:
            raise ValueError("FGSM-RS takes exactly one step")
