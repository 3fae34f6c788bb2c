"""SANet arbitrary style transfer (Park & Lee, CVPR 2019).

VGG-19 encoder to relu5_1, style-attentional blocks at relu4_1 and relu5_1, merged and decoded by
a mirror of the encoder. Attribute names follow the unofficial GlebSBrykin/SANET code, so its
`decoder.pth` (`N.weight` keys of a Sequential) and `transformer.pth` (`sanet4_1.f.weight`, …,
`merge_conv.weight`) load into `decoder` and `transform` unchanged. RGB in 0..1 in and out.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import WeightsError
from .arch_registry import register_arch
from .padding import pad_to_multiple, unpad
from .vgg import VGG19


def mean_variance_norm(feat: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    n, c = feat.shape[:2]
    flat = feat.reshape(n, c, -1)
    mean = flat.mean(-1).view(n, c, 1, 1)
    std = (flat.var(-1) + eps).sqrt().view(n, c, 1, 1)
    return (feat - mean) / std


class SANet(nn.Module):
    """Style-attentional block: every content position attends over all style positions."""

    def __init__(self, in_planes: int):
        super().__init__()
        self.f = nn.Conv2d(in_planes, in_planes, 1)
        self.g = nn.Conv2d(in_planes, in_planes, 1)
        self.h = nn.Conv2d(in_planes, in_planes, 1)
        self.sm = nn.Softmax(dim=-1)
        self.out_conv = nn.Conv2d(in_planes, in_planes, 1)

    def style_keys(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Projections of the style features; constant for a style, so callers may cache them."""
        g = self.g(mean_variance_norm(style)).flatten(2)  # N×C×S
        h = self.h(style).flatten(2)  # N×C×S
        return g, h

    def forward(self, content: torch.Tensor, style: torch.Tensor,
                keys: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        g, h = keys if keys is not None else self.style_keys(style)
        n, c, hh, ww = content.shape
        f = self.f(mean_variance_norm(content)).flatten(2).transpose(1, 2)  # N×HW×C
        attn = self.sm(torch.bmm(f, g.expand(n, -1, -1)))  # N×HW×S
        out = torch.bmm(h.expand(n, -1, -1), attn.transpose(1, 2)).view(n, c, hh, ww)
        return self.out_conv(out) + content


class Transform(nn.Module):
    def __init__(self, in_planes: int = 512):
        super().__init__()
        self.sanet4_1 = SANet(in_planes)
        self.sanet5_1 = SANet(in_planes)
        self.upsample5_1 = nn.Upsample(scale_factor=2, mode="nearest")
        self.merge_conv_pad = nn.ReflectionPad2d((1, 1, 1, 1))
        self.merge_conv = nn.Conv2d(in_planes, in_planes, 3)

    def forward(self, c4: torch.Tensor, s4: torch.Tensor, c5: torch.Tensor, s5: torch.Tensor,
                keys4=None, keys5=None) -> torch.Tensor:
        up5 = self.upsample5_1(self.sanet5_1(c5, s5, keys5))
        # relu5_1 is half of relu4_1 rounded up; crop the upsampled map to match odd sizes.
        up5 = up5[..., : c4.shape[-2], : c4.shape[-1]]
        return self.merge_conv(self.merge_conv_pad(self.sanet4_1(c4, s4, keys4) + up5))


def make_decoder() -> nn.Sequential:
    def block(cin, cout):
        return [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(cin, cout, 3), nn.ReLU()]

    up = nn.Upsample(scale_factor=2, mode="nearest")
    layers = (
        block(512, 256) + [up]
        + block(256, 256) + block(256, 256) + block(256, 256) + block(256, 128) + [up]
        + block(128, 128) + block(128, 64) + [up]
        + block(64, 64) + [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(64, 3, 3)]
    )
    return nn.Sequential(*layers)


def sanet_params(state: dict) -> dict:
    if "transform.merge_conv.weight" not in state or "decoder.1.weight" not in state:
        raise WeightsError("not a SANet model: needs 'transform.*' and 'decoder.*' tensors")
    return {}


@register_arch("sanet", input_range="0_1", infer_params=sanet_params, needs_style_image=True,
               frozen_encoder_prefix="encoder.")
class SANetModel(nn.Module):
    """Encoder + transform + decoder. `set_style` caches a style so frames pay only for content."""

    stride_multiple = 16
    _LAYERS = ("relu4_1", "relu5_1")

    def __init__(self, encoder: VGG19 | None = None, alpha: float = 1.0):
        super().__init__()
        self.encoder = encoder if encoder is not None else VGG19()
        self.transform = Transform(512)
        self.decoder = make_decoder()
        self.alpha = alpha
        # The cached style lives in non-persistent buffers so `.to(device, dtype)` moves it too.
        for name in ("style4", "style5", "g4", "h4", "g5", "h5"):
            self.register_buffer(name, None, persistent=False)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.encoder(x, self._LAYERS)
        return feats["relu4_1"], feats["relu5_1"]

    @torch.no_grad()
    def set_style(self, style: torch.Tensor) -> None:
        """Encode a 1×3×H×W RGB 0..1 style image once and keep its attention keys."""
        s4, s5 = self.encode(style)
        self.style4, self.style5 = s4, s5
        self.g4, self.h4 = self.transform.sanet4_1.style_keys(s4)
        self.g5, self.h5 = self.transform.sanet5_1.style_keys(s5)

    def forward(self, content: torch.Tensor, style: torch.Tensor | None = None,
                alpha: float | None = None) -> torch.Tensor:
        alpha = self.alpha if alpha is None else alpha
        content, size = pad_to_multiple(content, self.stride_multiple)
        c4, c5 = self.encode(content)
        if style is not None:
            s4, s5 = self.encode(style)
            k4 = k5 = None
        elif self.style4 is not None:
            s4, s5 = self.style4, self.style5
            k4, k5 = (self.g4, self.h4), (self.g5, self.h5)
        else:
            raise ValueError("SANet needs a style image: pass `style` or call `set_style` first")
        feat = self.transform(c4, s4, c5, s5, k4, k5)
        if alpha < 1.0:
            feat = alpha * feat + (1 - alpha) * self.transform(c4, c4, c5, c5)
        return unpad(self.decoder(feat), size)
