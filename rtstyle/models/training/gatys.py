"""Per-image style transfer by optimisation (Gatys et al. 2016): the quality reference.

A feed-forward net approximates what this optimisation reaches for one photo, so the Gatys
result on the same losses tells how much quality the fast nets give up. Adam on the pixels
(started from the photo) at lr 0.05 gets most of the way in ~100 steps at 128 px; LBFGS needs
closures and line searches that cost more VGG passes per step on a shared CPU.
"""

from __future__ import annotations

import torch

from .losses import PerceptualLoss


def gatys_stylize(content01: torch.Tensor, criterion: PerceptualLoss, steps: int = 200,
                  lr: float = 0.05) -> torch.Tensor:
    """Optimise a copy of `content01` (1×3×H×W, 0..1) against `criterion`; returns 0..1."""
    image = content01.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([image], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        criterion(image, content01)["total"].backward()
        optimizer.step()
        with torch.no_grad():
            image.clamp_(0, 1)
    return image.detach()
