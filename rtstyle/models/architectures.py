"""One factory from architecture name + parameters to an `nn.Module` (cf. CycleGAN `define_G`).

Facts about each architecture's tensors (input range, how to read its parameters back from a
state dict) live here, so no caller needs an `if arch == …` chain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import WeightsError
from .cyclegan import ResnetGenerator
from .johnson import TransformerNet
from .lite import LiteTransformerNet
from .sanet import SANetModel


@dataclass(frozen=True)
class ArchInfo:
    name: str
    build: Callable[..., nn.Module]
    input_range: str  # "0_255" | "-1_1" | "0_1": what the network eats and emits
    infer_params: Callable[[dict[str, torch.Tensor]], dict]
    needs_style_image: bool = False
    # Tensors under this prefix are a frozen VGG-19 that files may omit (default weights then).
    frozen_encoder_prefix: str | None = None


def _count(state: dict, fmt: str, start: int = 1) -> int:
    n = start
    while fmt.format(n) in state:
        n += 1
    return n - start


def _johnson_params(state: dict) -> dict:
    try:
        channels = int(state["conv1.conv2d.weight"].shape[0])
    except KeyError:
        raise WeightsError("not a Johnson transformer net: no 'conv1.conv2d.weight'") from None
    return {"channels": channels, "n_res": _count(state, "res{}.conv1.conv2d.weight")}


def _lite_params(state: dict) -> dict:
    try:
        channels = int(state["conv1.conv2d.weight"].shape[0])
    except KeyError:
        raise WeightsError("not a lite transformer net: no 'conv1.conv2d.weight'") from None
    return {"channels": channels, "n_res": _count(state, "res.{}.dw1.weight", start=0)}


def _cyclegan_params(state: dict) -> dict:
    try:
        ngf = int(state["model.1.weight"].shape[0])
    except KeyError:
        raise WeightsError("not a CycleGAN ResNet generator: no 'model.1.weight'") from None
    return {"ngf": ngf, "n_blocks": _count(state, "model.{}.conv_block.1.weight", start=10)}


def _sanet_params(state: dict) -> dict:
    if "transform.merge_conv.weight" not in state or "decoder.1.weight" not in state:
        raise WeightsError("not a SANet model: needs 'transform.*' and 'decoder.*' tensors")
    return {}


ARCHITECTURES: dict[str, ArchInfo] = {}


def register_arch(info: ArchInfo) -> None:
    if info.name in ARCHITECTURES:
        raise ValueError(f"architecture '{info.name}' is already registered")
    ARCHITECTURES[info.name] = info


register_arch(ArchInfo("johnson", TransformerNet, "0_255", _johnson_params))
register_arch(ArchInfo("johnson-lite", LiteTransformerNet, "0_255", _lite_params))
register_arch(ArchInfo("cyclegan", ResnetGenerator, "-1_1", _cyclegan_params))
register_arch(ArchInfo("sanet", SANetModel, "0_1", _sanet_params, needs_style_image=True,
                       frozen_encoder_prefix="encoder."))


def get_arch(name: str) -> ArchInfo:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise WeightsError(
            f"unknown architecture '{name}'; choose from: {', '.join(sorted(ARCHITECTURES))}"
        ) from None


def build_generator(arch: str, params: dict | None = None) -> nn.Module:
    return get_arch(arch).build(**(params or {}))
