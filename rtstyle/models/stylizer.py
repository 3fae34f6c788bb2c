"""`Stylizer`: a generator plus its pre/post-processing, RGB 0..1 in and out.

Everything downstream (engine backends, pipeline, metrics) sees only this signature, whatever
range the network was trained on; the range comes from the style's metadata. Trainers reach the
network through the same `ValueRange` (`UnitRangeNet`), so no code converts ranges by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ValueRange:
    """What a network eats and emits, an affine map of RGB 0..1: `net = rgb01 * scale + offset`."""

    name: str
    scale: float
    offset: float

    def to_net(self, rgb01: torch.Tensor) -> torch.Tensor:
        return rgb01 * self.scale + self.offset

    def from_net(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.offset) / self.scale


VALUE_RANGES = {r.name: r for r in (ValueRange("0_255", 255.0, 0.0),
                                     ValueRange("-1_1", 2.0, -1.0),
                                     ValueRange("0_1", 1.0, 0.0))}


def value_range(name: str) -> ValueRange:
    try:
        return VALUE_RANGES[name]
    except KeyError:
        raise ValueError(f"unknown input_range {name!r}; choose from: "
                         f"{', '.join(VALUE_RANGES)}") from None


class UnitRangeNet(nn.Module):
    """A generator seen in RGB 0..1, unclamped: what a trainer differentiates through.

    `Stylizer` adds the clamp that inference wants; clamping here would
    zero the gradients of every pixel the net overshoots.
    """

    def __init__(self, net: nn.Module, input_range: str):
        super().__init__()
        self.net = net
        self.range = value_range(input_range)

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return self.range.from_net(self.net(self.range.to_net(x), *args, **kwargs))


def blend_strength(x01: torch.Tensor, stylized: torch.Tensor, strength: float) -> torch.Tensor:
    """What `--strength` means everywhere: the output moves `strength` of the way from the input
    (0) to the full style (1), as a pixel blend after the network.

    One meaning for every verb, network and backend: it is applied outside the network, so a
    compiled or exported engine never has a strength baked in, and a live key press changes it
    without a rebuild. (SANet's own feature-space α stays at 1 for the same reason.)
    """
    if strength >= 1.0:
        return stylized
    return torch.lerp(x01.to(stylized.dtype), stylized, float(strength))


class Stylizer(nn.Module):
    """Wraps a generator with its range conversion and clamp: RGB 0..1 in and out, full style.

    Strength is applied by `blend_strength`, once, by whoever runs the network.
    """

    def __init__(self, net: nn.Module, input_range: str, name: str = "",
                 temporal_weight: float = 0.0, train_size: int | None = None):
        super().__init__()
        self.net = net
        self.input_range = input_range
        self.range = value_range(input_range)
        self.name = name
        # > 0: the generator was trained with the synthetic-motion term (`train --temporal-weight`),
        # so its texture is steady already and run-time smoothing need only follow colour/light.
        self.temporal_weight = temporal_weight
        # The training crop side, when the weights say (what `--style-scale auto` aims at).
        self.train_size = train_size

    @property
    def steady_generator(self) -> bool:
        """Trained for temporal stability (what `--smooth-blend auto` asks)."""
        return self.temporal_weight > 0

    @property
    def n_styles(self) -> int:
        """Styles the network holds (conditional instance norm, `rtstyle.models.mid`); 1 for
        every single-style network."""
        return int(getattr(self.net, "n_styles", 1))

    def set_style_weights(self, weights) -> None:
        """Which of a multi-style network's styles to paint: an index, or one weight per style
        (a blend). Changes a live tensor in place: no backend rebuilds for it."""
        if self.n_styles == 1:
            if isinstance(weights, int) and weights != 0:
                raise ValueError(f"{self.name or 'this network'} holds one style")
            return
        self.net.set_style_weights(weights)

    def graph_inputs(self) -> tuple[torch.Tensor, ...]:
        """Live tensors a compiled graph takes after the frame (`forward(x, *graph_inputs())`):
        a multi-style net's style weight vector, read anew at every call; () otherwise."""
        inputs = getattr(self.net, "graph_inputs", None)
        return tuple(inputs()) if inputs is not None else ()

    def forward(self, x: torch.Tensor, *graph_inputs: torch.Tensor) -> torch.Tensor:
        return self.range.from_net(self.net(self.range.to_net(x), *graph_inputs)).clamp(0.0, 1.0)
