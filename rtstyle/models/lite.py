"""Lite generator for CPU real time: early downsampling and depthwise-separable residuals.

The standard Johnson net spends ~33 GMAC on a 640×360 frame, most of it in full-width residual
blocks at 1/4 resolution and in the two upsampling convolutions. This net reaches 1/8 resolution
in three cheap strided convolutions, keeps 64 channels there, and replaces each residual 3×3 conv
by depthwise 3×3 + pointwise 1×1 (MobileNet), for under 1 GMAC at 640×360. Input and output are
RGB 0..255 like `TransformerNet`, so the same losses and pre/post-processing apply.
"""

import torch
from torch import nn

from .layers import ConvLayer, UpsampleConvLayer
from .padding import pad_to_multiple, unpad


class SeparableResidualBlock(nn.Module):
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


class LiteTransformerNet(nn.Module):
    stride_multiple = 8

    def __init__(self, channels: int = 16, n_res: int = 4):
        super().__init__()
        c1, c2, c3 = channels, channels * 2, channels * 4
        self.channels = channels
        self.n_res = n_res
        self.conv1 = ConvLayer(3, c1, kernel_size=3, stride=2)
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
        self.deconv3 = UpsampleConvLayer(c1, 3, kernel_size=3, stride=1, upsample=2)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, size = pad_to_multiple(x, self.stride_multiple)
        y = self.relu(self.in1(self.conv1(x)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res(y)
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        return unpad(self.deconv3(y), size)
