"""CycleGAN ResNet generator (Zhu et al. 2017), instance norm, reflect padding, no dropout.

Built as one `nn.Sequential` named `model`, exactly as junyanz/pytorch-CycleGAN-and-pix2pix
`models/networks.py` `ResnetGenerator`, so official `latest_net_G.pth` files (`model.N.…` keys)
load with strict=True. Input and output are RGB in -1..1 (tanh).
"""

import torch
from torch import nn

from ..errors import WeightsError
from .arch_registry import count_keys, register_arch
from .padding import pad_to_multiple, unpad


class ResnetBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=True),
            nn.InstanceNorm2d(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=True),
            nn.InstanceNorm2d(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def cyclegan_params(state: dict) -> dict:
    try:
        ngf = int(state["model.1.weight"].shape[0])
    except KeyError:
        raise WeightsError("not a CycleGAN ResNet generator: no 'model.1.weight'") from None
    return {"ngf": ngf, "n_blocks": count_keys(state, "model.{}.conv_block.1.weight", start=10)}


@register_arch("cyclegan", input_range="-1_1", infer_params=cyclegan_params)
class ResnetGenerator(nn.Module):
    stride_multiple = 4

    def __init__(self, ngf: int = 64, n_blocks: int = 9):
        super().__init__()
        self.ngf = ngf
        self.n_blocks = n_blocks
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(3, ngf, kernel_size=7, padding=0, bias=True),
            nn.InstanceNorm2d(ngf),
            nn.ReLU(True),
        ]
        for i in range(2):
            mult = 2**i
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1),
                nn.InstanceNorm2d(ngf * mult * 2),
                nn.ReLU(True),
            ]
        layers += [ResnetBlock(ngf * 4) for _ in range(n_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, kernel_size=3, stride=2,
                                   padding=1, output_padding=1),
                nn.InstanceNorm2d(ngf * mult // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, size = pad_to_multiple(x, self.stride_multiple)
        return unpad(self.model(x), size)
