"""Mixing styles: several paintings or style nets, each with a weight.

For Gatys optimisation the mix is a weighted sum of the paintings' Gram targets (one target,
`rtstyle.models.gatys`). For feed-forward nets, which are trained for one painting each (no
multi-style net is bundled), `MixedStylizer` blends their *outputs* pixel by pixel: a cheap
stand-in for a mixed style, not the same as a net trained on the mixed Gram target.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import UserInputError


def parse_mix(text: str | None) -> list[float] | None:
    """`"0.3,0.7"` -> [0.3, 0.7]; None stays None (equal weights)."""
    if text is None or not text.strip():
        return None
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise UserInputError(f"--mix must be comma-separated numbers like 0.3,0.7, got '{text}'") from None


def mix_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    """One non-negative weight per style, scaled to sum to 1 (default: equal weights)."""
    if count < 1:
        raise UserInputError("no style given")
    if weights is None:
        return [1.0 / count] * count
    weights = [float(w) for w in weights]
    if len(weights) != count:
        raise UserInputError(f"--mix has {len(weights)} weights for {count} styles; give one "
                             "weight per --style")
    if any(w < 0 or w != w for w in weights) or sum(weights) <= 0:
        raise UserInputError(f"--mix weights must be >= 0 and not all 0, got {weights}")
    total = sum(weights)
    return [w / total for w in weights]


class MixedStylizer(nn.Module):
    """Several stylizers seen as one: the weighted sum of their outputs (RGB 0..1).

    A style with weight 0 is not run at all, so a mix of (0, 1) is exactly the second style.
    """

    def __init__(self, stylizers: Sequence[nn.Module], weights: Sequence[float] | None = None):
        super().__init__()
        self.weights = mix_weights(weights, len(stylizers))
        self.stylizers = nn.ModuleList(stylizers)
        names = [getattr(s, "name", "") for s in stylizers]
        self.name = "+".join(f"{n}*{w:g}" for n, w in zip(names, self.weights, strict=True)
                             if w > 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        active = [(s, w) for s, w in zip(self.stylizers, self.weights, strict=True) if w > 0]
        out = None
        for stylizer, weight in active:
            y = stylizer(x)
            if len(active) == 1:
                return y
            out = y * weight if out is None else out.add_(y, alpha=weight)
        return out.clamp_(0.0, 1.0)
