"""One factory from architecture name + parameters to an `nn.Module` (cf. CycleGAN `define_G`).

Each network registers itself and its facts in its own file (`@register_arch`, see
`arch_registry.py`); importing this module imports every network, so the registry is complete
for whoever asks it. A new architecture is a new file beside `johnson.py` (copy it) plus one
import line here.
"""

from __future__ import annotations

from torch import nn

from ..errors import WeightsError
from . import adain, cyclegan, johnson, lite, mid, sanet  # noqa: F401  (each registers itself)
from .arch_registry import ARCHITECTURES, ArchInfo, register_arch

__all__ = ["ARCHITECTURES", "ArchInfo", "build_generator", "get_arch", "register_arch"]


def get_arch(name: str) -> ArchInfo:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise WeightsError(
            f"unknown architecture '{name}'; choose from: {', '.join(sorted(ARCHITECTURES))}"
        ) from None


def build_generator(arch: str, params: dict | None = None) -> nn.Module:
    return get_arch(arch).build(**(params or {}))
