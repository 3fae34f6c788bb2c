"""The architecture registry: each network registers itself, with its facts, where it is defined.

Like timm's `@register_model`, `@register_arch(...)` sits on the builder (the `nn.Module` class)
and carries what every caller needs to know about its tensors, so nothing outside the network's
own file writes an `if arch == …` chain or a literal input range. This module imports no
network; `architectures.py` imports them all (filling the registry) and is what callers use.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .stylizer import ValueRange, value_range

PRECISION_NAMES = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class ArchInfo:
    name: str
    build: Callable[..., nn.Module]
    input_range: str  # "0_255" | "-1_1" | "0_1": what the network eats and emits
    infer_params: Callable[[dict[str, torch.Tensor]], dict]  # builder kwargs from a state dict
    stride_multiple: int  # the network pads its input to a multiple of this
    precisions: tuple[str, ...] = PRECISION_NAMES  # dtypes it runs (and trains) correctly in
    needs_style_image: bool = False  # arbitrary style: a painting at run time (`set_style`)
    # Tensors under this prefix are a frozen VGG-19 that files may omit (default weights then)
    # and that training leaves alone.
    frozen_encoder_prefix: str | None = None

    @property
    def value_range(self) -> ValueRange:
        return value_range(self.input_range)

    def default_params(self) -> dict:
        """The builder's keyword defaults that a style file can record (numbers, strings)."""
        return {p.name: p.default for p in inspect.signature(self.build).parameters.values()
                if isinstance(p.default, (bool, int, float, str))}


ARCHITECTURES: dict[str, ArchInfo] = {}


def register_arch(name: str, *, input_range: str,
                  infer_params: Callable[[dict[str, torch.Tensor]], dict],
                  stride_multiple: int | None = None,
                  precisions: tuple[str, ...] = PRECISION_NAMES,
                  needs_style_image: bool = False,
                  frozen_encoder_prefix: str | None = None):
    """Class (or builder) decorator; `stride_multiple` defaults to the builder's own attribute."""

    def decorate(build):
        if name in ARCHITECTURES:
            raise ValueError(f"architecture '{name}' is already registered")
        value_range(input_range)  # an unknown range fails at import, not at the first frame
        unknown = set(precisions) - set(PRECISION_NAMES)
        if unknown:
            raise ValueError(f"architecture '{name}': unknown precisions {sorted(unknown)}")
        ARCHITECTURES[name] = ArchInfo(
            name=name, build=build, input_range=input_range, infer_params=infer_params,
            stride_multiple=int(stride_multiple if stride_multiple is not None
                                else build.stride_multiple),
            precisions=tuple(precisions), needs_style_image=needs_style_image,
            frozen_encoder_prefix=frozen_encoder_prefix,
        )
        return build

    return decorate


def count_keys(state: dict, fmt: str, start: int = 1) -> int:
    """How many consecutive `fmt.format(i)` keys, from `start`, are in `state` (blocks of a net)."""
    n = start
    while fmt.format(n) in state:
        n += 1
    return n - start
