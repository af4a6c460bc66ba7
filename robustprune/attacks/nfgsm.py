"""N-FGSM (de Jorge et al. 2022): noise of radius 2ε, one step of α = ε, no projection.

Skipping the projection is the point of the method: the larger effective perturbation avoids
catastrophic overfitting without extra passes. Outputs stay in [0,1] but may leave the ε-ball.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from robustprune.attacks.base import OneStep, random_in_ball


@dataclass(frozen=True)
class NFGSM(OneStep):
    name = "n-fgsm"
    fixed = ("steps", "alpha")

    noise_factor: float = 2.0
    project_to_ball: bool = False

    @classmethod
    def from_params(cls, cfg: Any) -> NFGSM:
        """The paper's step is always ε (``attack.alpha`` does not apply)."""
        return cls(eps=cfg.eps, alpha=max(cfg.eps, 1e-12), norm=cfg.norm)

    def initial_delta(self, x: torch.Tensor) -> torch.Tensor:
        return random_in_ball(x, self.noise_factor * self.eps, self.norm)
