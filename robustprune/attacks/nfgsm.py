"""N-FGSM (de Jorge et al. 2022): noise of radius 2ε, one step of α = ε, no projection.

Skipping the projection is the point of the method: the larger effective perturbation avoids
catastrophic overfitting without extra passes. Outputs stay in [0,1] but may leave the ε-ball.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from robustprune.attacks.base import Attack, random_in_ball


@dataclass(frozen=True)
class NFGSM(Attack):
    steps: int = 1
    noise_factor: float = 2.0
    project_to_ball: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.steps != 1:
            raise ValueError("N-FGSM takes exactly one step")

    def initial_delta(self, x: torch.Tensor) -> torch.Tensor:
        return random_in_ball(x, self.noise_factor * self.eps, self.norm)
