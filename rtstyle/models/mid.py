"""Mid generator: Johnson's shape at full resolution, slim enough for CPU real time; and
conditional instance norm, so one file holds several styles.

**The net.** Between the standard Johnson net (32-64-128 channels, 35 GMAC at 640×360,
~10 fps on a 2-core CPU) and the lite net (which works at 1/8 and paints through a
pixel-shuffle, so its strokes are 2×2 mosaics of a 1/2-resolution grid), this one keeps
Johnson's layout: a 9×9 convolution at full resolution, two stride-2 convolutions to 1/4,
five dense residual blocks at 1/4, nearest-neighbour upsampling plus convolution back to full
resolution (no sub-pixel output, no checkerboard) and a convolution to RGB at full
resolution. At 16-32-64 channels it has 421k parameters (Johnson 1.68M, lite 89k) and 9.0
GMAC at 640×360.

Chosen by measurement on a 2-core EPYC shared with other jobs (`python benchmarks/mid_net.py
--threads 1 --backend compile --precision bf16 --variant …`: process CPU time per 640×360
frame of the `compile/bf16` engine; lite 18 ms, Johnson 200 ms): what costs is full
resolution, not the blocks at 1/4. The 9×9 output convolution from 16 channels took the dense
net from 62 to 76 ms (so the output is 3×3: the two full-resolution 3×3 layers give strokes a
5×5 footprint there, on top of what the blocks at 1/4 paint); dense residual blocks cost 19 ms
more than depthwise-separable ones (44 ms) for 4× the parameters; 24 or 32 channels instead
of 16 took the separable net from 63 to 116 and 132 ms. The README's "Speed and backends" has
the frame rates.

**Several styles** (Dumoulin et al. 2017, "A learned representation for artistic style"):
every instance norm is a `ConditionalInstanceNorm2d` with one (γ, β) row per style, and the
forward takes a style weight vector `w` (`n_styles`, summing to 1): γ = wᵀΓ, β = wᵀB. A one-hot
`w` is one style; a convex combination blends styles in one forward pass. With `n_styles=1` the
tables are plain `weight`/`bias` vectors, the same keys and shapes as `nn.InstanceNorm2d`.

The live weight vector is a plain tensor attribute (`style_weights`), not a parameter or
buffer: it is not part of the weights' fingerprint (so the engine cache key does not depend on
which style is showing), and compiled backends take it as a second graph input
(`graph_inputs()`), so switching styles is a copy into that tensor, never a rebuild.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsError
from .arch_registry import register_arch
from .layers import ConvLayer, UpsampleConvLayer
from .padding import pad_to_multiple, unpad


class ConditionalInstanceNorm2d(nn.Module):
    """Instance norm whose affine (γ, β) is a weighted sum of per-style rows.

    `style`: (n_styles,) for the whole batch, or (N, n_styles) per image (training). With
    `n_styles == 1` the style is ignored and this is `nn.InstanceNorm2d(affine=True)`.
    """

    def __init__(self, channels: int, n_styles: int = 1, eps: float = 1e-5):
        super().__init__()
        self.n_styles = n_styles
        self.eps = eps
        shape = (channels,) if n_styles == 1 else (n_styles, channels)
        self.weight = nn.Parameter(torch.ones(shape))
        self.bias = nn.Parameter(torch.zeros(shape))

    def affine(self, style: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(γ, β) for `style`: (C,) each, or (N, C) for a per-image style."""
        if self.n_styles == 1:
            return self.weight, self.bias
        w = style.to(self.weight.dtype)
        return w @ self.weight, w @ self.bias

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        gamma, beta = self.affine(style)
        if gamma.dim() == 1:
            return F.instance_norm(x, weight=gamma, bias=beta, eps=self.eps)
        y = F.instance_norm(x, eps=self.eps)
        return y * gamma[:, :, None, None].to(y.dtype) + beta[:, :, None, None].to(y.dtype)


class CINResidualBlock(nn.Module):
    """Residual block at 1/4 res: two (depthwise 3×3 + pointwise 1×1) or two dense 3×3 convs."""

    def __init__(self, channels: int, n_styles: int, separable: bool):
        super().__init__()
        if separable:
            self.conv1 = _separable(channels)
            self.conv2 = _separable(channels)
        else:
            self.conv1 = ConvLayer(channels, channels, kernel_size=3, stride=1)
            self.conv2 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in1 = ConditionalInstanceNorm2d(channels, n_styles)
        self.in2 = ConditionalInstanceNorm2d(channels, n_styles)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        y = F.relu(self.in1(self.conv1(x), style))
        return self.in2(self.conv2(y), style) + x


def _separable(channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect", groups=channels),
        nn.Conv2d(channels, channels, 1))


def mid_params(state: dict) -> dict:
    try:
        stem = state["conv1.conv2d.weight"]
        norm = state["in1.weight"]
    except KeyError:
        raise WeightsError("not a mid transformer net: no 'conv1.conv2d.weight'") from None
    n_res = 0
    while f"res.{n_res}.in1.weight" in state:
        n_res += 1
    return {"channels": int(stem.shape[0]), "n_res": n_res,
            "n_styles": int(norm.shape[0]) if norm.dim() == 2 else 1,
            "separable": "res.0.conv1.0.weight" in state,
            "kernel": int(stem.shape[-1]),
            "out_kernel": int(state["deconv3.conv2d.weight"].shape[-1])}


def one_hot(index: int, n_styles: int) -> torch.Tensor:
    w = torch.zeros(n_styles)
    w[index] = 1.0
    return w


@register_arch("johnson-mid", input_range="0_255", infer_params=mid_params)
class MidTransformerNet(nn.Module):
    """`channels` at full res, 2× at 1/2, 4× at 1/4 (16/32/64 by default); `n_res` residual
    blocks at 1/4 (`separable`: depthwise-separable); `kernel` and `out_kernel`: the
    full-resolution stem and output convolutions; `n_styles`: rows of each conditional
    instance norm."""

    stride_multiple = 4

    def __init__(self, channels: int = 16, n_res: int = 5, n_styles: int = 1,
                 separable: bool = False, kernel: int = 9, out_kernel: int = 3):
        super().__init__()
        if n_styles < 1:
            raise ValueError("n_styles must be >= 1")
        c1, c2, c3 = channels, channels * 2, channels * 4
        self.channels, self.n_res, self.n_styles = channels, n_res, n_styles
        self.conv1 = ConvLayer(3, c1, kernel_size=kernel, stride=1)
        self.in1 = ConditionalInstanceNorm2d(c1, n_styles)
        self.conv2 = ConvLayer(c1, c2, kernel_size=3, stride=2)
        self.in2 = ConditionalInstanceNorm2d(c2, n_styles)
        self.conv3 = ConvLayer(c2, c3, kernel_size=3, stride=2)
        self.in3 = ConditionalInstanceNorm2d(c3, n_styles)
        self.res = nn.ModuleList(CINResidualBlock(c3, n_styles, separable)
                                 for _ in range(n_res))
        self.deconv1 = UpsampleConvLayer(c3, c2, kernel_size=3, stride=1, upsample=2)
        self.in4 = ConditionalInstanceNorm2d(c2, n_styles)
        self.deconv2 = UpsampleConvLayer(c2, c1, kernel_size=3, stride=1, upsample=2)
        self.in5 = ConditionalInstanceNorm2d(c1, n_styles)
        self.deconv3 = ConvLayer(c1, 3, kernel_size=out_kernel, stride=1)
        self.style_weights = one_hot(0, n_styles)

    # -- the live style vector -------------------------------------------------------------
    def set_style_weights(self, weights) -> None:
        """Show one style (an int) or a blend (n_styles non-negative weights, scaled to sum
        1). Copies into the live tensor in place: a compiled engine reads it on its next
        frame."""
        w = (one_hot(int(weights), self.n_styles) if isinstance(weights, int)
             else torch.as_tensor(weights, dtype=torch.float32).flatten())
        if w.numel() != self.n_styles or bool((w < 0).any()) or float(w.sum()) <= 0:
            raise ValueError(f"style weights must be {self.n_styles} non-negative numbers, "
                             f"not all 0; got {w.tolist()}")
        self.style_weights.copy_(w / w.sum())

    def graph_inputs(self) -> tuple[torch.Tensor, ...]:
        """Inputs a compiled graph takes after the image: the style vector of a multi-style
        net (nothing for one style, whose graph is exactly the plain one)."""
        return (self.style_weights,) if self.n_styles > 1 else ()

    def _apply(self, fn, recurse=True):
        module = super()._apply(fn, recurse)
        # Follow the weights' device; stay float32 (the norms cast it to their own dtype).
        device = self.in1.weight.device
        if self.style_weights.device != device:
            self.style_weights = self.style_weights.to(device)
        return module

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        if style is None and self.n_styles > 1:
            style = self.style_weights
        if style is not None:
            style = style.to(x.device)
        x, size = pad_to_multiple(x, self.stride_multiple)
        y = F.relu(self.in1(self.conv1(x), style))
        y = F.relu(self.in2(self.conv2(y), style))
        y = F.relu(self.in3(self.conv3(y), style))
        for block in self.res:
            y = block(y, style)
        y = F.relu(self.in4(self.deconv1(y), style))
        y = F.relu(self.in5(self.deconv2(y), style))
        return unpad(self.deconv3(y), size)
