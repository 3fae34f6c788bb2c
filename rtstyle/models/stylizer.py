"""`Stylizer`: a generator plus its pre/post-processing, RGB 0..1 in and out.

Everything downstream (engine backends, pipeline, metrics) sees only this signature, whatever
range the network was trained on; the range comes from the style's metadata.
"""

from __future__ import annotations

import torch
from torch import nn

_TO_NET = {"0_255": (255.0, 0.0), "-1_1": (2.0, -1.0), "0_1": (1.0, 0.0)}


class Stylizer(nn.Module):
    """Wraps a generator; `strength` in 0..1 blends the stylized frame with the input.

    For SANet the strength is its own α (feature-space interpolation); for feed-forward nets it
    is a pixel blend, which is the only knob a fixed-style network offers.
    """

    def __init__(self, net: nn.Module, input_range: str, strength: float = 1.0,
                 name: str = "", feature_strength: bool = False, temporal_weight: float = 0.0):
        super().__init__()
        if input_range not in _TO_NET:
            raise ValueError(f"unknown input_range {input_range!r}")
        self.net = net
        self.input_range = input_range
        self.scale, self.offset = _TO_NET[input_range]
        self.strength = strength
        self.name = name
        self.feature_strength = feature_strength
        # > 0: the generator was trained with the synthetic-motion term (`train --temporal-weight`),
        # so its texture is steady already and run-time smoothing need only follow colour/light.
        self.temporal_weight = temporal_weight

    @property
    def steady_generator(self) -> bool:
        """Trained for temporal stability (what `--smooth-blend auto` asks)."""
        return self.temporal_weight > 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        strength = float(self.strength)
        if self.feature_strength:
            y = self.net(x * self.scale + self.offset, alpha=strength)
        else:
            y = self.net(x * self.scale + self.offset)
        y = ((y - self.offset) / self.scale).clamp(0.0, 1.0)
        if not self.feature_strength and strength < 1.0:
            y = torch.lerp(x, y, strength)
        return y
