"""Lite generator for CPU real time: unshuffled stem, 1/8-res separable blocks, sub-pixel output.

On a 2-core CPU the standard Johnson net is limited less by its ~33 GMAC of convolutions than by
memory traffic: every full-resolution layer with 32 channels reads and writes ~30 MB per
640×360 frame (reflection pad, instance norm, ReLU, nearest upsampling). This net never holds
more than 3 channels at full resolution:

- the stem folds each 2×2 block into channels (`pixel_unshuffle`, lossless) and starts at 1/2 res;
- two strided 3×3 convs reach 1/8 res, where depthwise-separable residual blocks (MobileNet) do
  the bulk of the work for ~1/8 of a dense 3×3 block's cost;
- the decoder climbs back to 1/2 res and `to_rgb` emits 4 sub-pixels per position, which
  `pixel_shuffle` places at full res (ESPCN, Shi et al. 2016).

Input and output are RGB 0..255 like `TransformerNet`, so the same perceptual losses and
pre/post-processing apply. Instance norm stays: it is what lets a feed-forward net carry a
painting's style (Ulyanov et al. 2016), and compiled backends fuse it with the adjacent ReLU.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsError
from .arch_registry import count_keys, register_arch
from .layers import ConvLayer, UpsampleConvLayer
from .padding import pad_to_multiple, unpad


class SeparableResidualBlock(nn.Module):
    """Residual block whose 3×3 convs are depthwise 3×3 + pointwise 1×1."""

    def __init__(self, channels: int):
        super().__init__()
        self.dw1 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect",
                             groups=channels)
        self.pw1 = nn.Conv2d(channels, channels, 1)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.dw2 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect",
                             groups=channels)
        self.pw2 = nn.Conv2d(channels, channels, 1)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.in1(self.pw1(self.dw1(x))))
        return self.in2(self.pw2(self.dw2(y))) + x


def _init_subpixel_as_nearest(conv: nn.Conv2d, scale: int) -> None:
    """ICNR init (Aitken et al. 2017): all sub-pixels of a position start with the same weights.

    A freshly initialised sub-pixel conv is a checkerboard generator; this start makes it
    equal to nearest upsampling of a normal conv, and training moves away from it smoothly.
    """
    out_ch = conv.out_channels // (scale * scale)
    with torch.no_grad():
        base = torch.empty(out_ch, *conv.weight.shape[1:])
        nn.init.kaiming_uniform_(base, a=5 ** 0.5)
        conv.weight.copy_(base.repeat_interleave(scale * scale, dim=0))
        if conv.bias is not None:
            conv.bias.copy_(conv.bias[::scale * scale].repeat_interleave(scale * scale))


def lite_params(state: dict) -> dict:
    try:
        channels = int(state["conv1.conv2d.weight"].shape[0])
    except KeyError:
        raise WeightsError("not a lite transformer net: no 'conv1.conv2d.weight'") from None
    return {"channels": channels, "n_res": count_keys(state, "res.{}.dw1.weight", start=0)}


@register_arch("johnson-lite", input_range="0_255", infer_params=lite_params)
class LiteTransformerNet(nn.Module):
    """`channels` at 1/2 res, 2× at 1/4, 4× at 1/8 (16/32/64 by default); `n_res` blocks at 1/8."""

    stride_multiple = 8
    unshuffle = 2

    def __init__(self, channels: int = 16, n_res: int = 4):
        super().__init__()
        c1, c2, c3 = channels, channels * 2, channels * 4
        folded = 3 * self.unshuffle ** 2
        self.channels = channels
        self.n_res = n_res
        self.conv1 = ConvLayer(folded, c1, kernel_size=3, stride=1)
        self.in1 = nn.InstanceNorm2d(c1, affine=True)
        self.conv2 = ConvLayer(c1, c2, kernel_size=3, stride=2)
        self.in2 = nn.InstanceNorm2d(c2, affine=True)
        self.conv3 = ConvLayer(c2, c3, kernel_size=3, stride=2)
        self.in3 = nn.InstanceNorm2d(c3, affine=True)
        self.res = nn.Sequential(*[SeparableResidualBlock(c3) for _ in range(n_res)])
        self.deconv1 = UpsampleConvLayer(c3, c2, kernel_size=3, stride=1, upsample=2)
        self.in4 = nn.InstanceNorm2d(c2, affine=True)
        self.deconv2 = UpsampleConvLayer(c2, c1, kernel_size=3, stride=1, upsample=2)
        self.in5 = nn.InstanceNorm2d(c1, affine=True)
        self.to_rgb = ConvLayer(c1, folded, kernel_size=3, stride=1)
        _init_subpixel_as_nearest(self.to_rgb.conv2d, self.unshuffle)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, size = pad_to_multiple(x, self.stride_multiple)
        y = F.pixel_unshuffle(x, self.unshuffle)
        y = self.relu(self.in1(self.conv1(y)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res(y)
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        return unpad(F.pixel_shuffle(self.to_rgb(y), self.unshuffle), size)
