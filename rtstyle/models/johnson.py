"""Johnson et al. (2016) feed-forward transformer network.

State-dict compatible with pytorch/examples `fast_neural_style` checkpoints at the default
`channels=32, n_res=5`; smaller values give a lighter variant with the same key layout.
Input and output are RGB in 0..255 (the examples' convention); `forward` keeps H×W for any size.
"""

import torch
from torch import nn

from ..errors import WeightsError
from .arch_registry import count_keys, register_arch
from .layers import ConvLayer, ResidualBlock, UpsampleConvLayer
from .padding import pad_to_multiple, unpad


def johnson_params(state: dict) -> dict:
    try:
        channels = int(state["conv1.conv2d.weight"].shape[0])
    except KeyError:
        raise WeightsError("not a Johnson transformer net: no 'conv1.conv2d.weight'") from None
    return {"channels": channels, "n_res": count_keys(state, "res{}.conv1.conv2d.weight")}


@register_arch("johnson", input_range="0_255", infer_params=johnson_params)
class TransformerNet(nn.Module):
    stride_multiple = 4

    def __init__(self, channels: int = 32, n_res: int = 5):
        super().__init__()
        c1, c2, c3 = channels, channels * 2, channels * 4
        self.channels = channels
        self.n_res = n_res
        self.conv1 = ConvLayer(3, c1, kernel_size=9, stride=1)
        self.in1 = nn.InstanceNorm2d(c1, affine=True)
        self.conv2 = ConvLayer(c1, c2, kernel_size=3, stride=2)
        self.in2 = nn.InstanceNorm2d(c2, affine=True)
        self.conv3 = ConvLayer(c2, c3, kernel_size=3, stride=2)
        self.in3 = nn.InstanceNorm2d(c3, affine=True)
        for i in range(1, n_res + 1):
            self.add_module(f"res{i}", ResidualBlock(c3))
        self.deconv1 = UpsampleConvLayer(c3, c2, kernel_size=3, stride=1, upsample=2)
        self.in4 = nn.InstanceNorm2d(c2, affine=True)
        self.deconv2 = UpsampleConvLayer(c2, c1, kernel_size=3, stride=1, upsample=2)
        self.in5 = nn.InstanceNorm2d(c1, affine=True)
        self.deconv3 = ConvLayer(c1, 3, kernel_size=9, stride=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, size = pad_to_multiple(x, self.stride_multiple)
        y = self.relu(self.in1(self.conv1(x)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        for i in range(1, self.n_res + 1):
            y = getattr(self, f"res{i}")(y)
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        return unpad(self.deconv3(y), size)
