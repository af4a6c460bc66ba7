"""FGSM-RS (Wong et al. 2020, "Fast is better than free"): one step from a uniform random start.

Wong et al. use α = 1.25·ε; the step is projected back to the ε-ball.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from robustprune.attacks.base import OneStep


@dataclass(frozen=True)
class FGSMRS(OneStep):
    name = "fgsm-rs"

    @classmethod
    def from_params(cls, cfg: Any) -> FGSMRS:
        return cls(eps=cfg.eps, alpha=cfg.alpha, norm=cfg.norm)
