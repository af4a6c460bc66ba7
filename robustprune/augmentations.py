"""Training-time augmentations (``warmup.augment``, ``train.augment``): each maps a float batch
in [0,1] to a batch of the same shape, drawing its randomness from the loop's data generator so
a run's augmentations are fixed by its seed and survive a resume."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from robustprune.registry import Registry

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def none(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    del g
    return x


def crop(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random crop of each example, reflect-padded by 1/8 of the side."""
    b, _, h, w = x.shape
    pad = max(1, h // 8)
    xp = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    di = torch.randint(0, 2 * pad + 1, (b,), generator=g).to(x.device)
    dj = torch.randint(0, 2 * pad + 1, (b,), generator=g).to(x.device)
    rows = (di[:, None] + torch.arange(h, device=x.device))[:, :, None]
    cols = (dj[:, None] + torch.arange(w, device=x.device))[:, None, :]
    out = xp.permute(0, 2, 3, 1)[torch.arange(b, device=x.device)[:, None, None], rows, cols]
    return out.permute(0, 3, 1, 2).contiguous()


def crop_flip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random crop, then a horizontal flip of each example with probability 1/2."""
    out = crop(x, g)
    flip = (torch.rand(out.shape[0], generator=g) < 0.5).to(x.device).view(-1, 1, 1, 1)
    return torch.where(flip, out.flip(3), out).contiguous()


AUGMENTS: Registry[Augment] = Registry(
    "augment", {"none": none, "crop-flip": crop_flip, "crop": crop})
