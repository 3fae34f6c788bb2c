"""Perceptual losses of Johnson et al. (2016) on rtstyle's VGG-19, plus total variation.

Content is compared at one relu layer, style as Gram matrices over several; all images are RGB
0..1 (the VGG wrapper converts to its own input space). Each term is relative to the size of its
target (squared error / mean square of the target): the Caffe VGG's layers differ by three orders
of magnitude in Gram size, so raw sums would let relu4_1 drown the others and make the weights
depend on the loss network; relative terms keep `--style-weight` meaningful across layers. Gram matrices are computed in float32
even under autocast: bf16/fp16 sums over H·W lose the small differences the loss lives on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ..vgg import CONV_NAMES, VGG19, load_vgg19
from .configs import DEFAULT_CONTENT_LAYER, DEFAULT_STYLE_LAYERS

if TYPE_CHECKING:
    from .trainer import TrainingRun


def gram_matrix(feat: torch.Tensor) -> torch.Tensor:
    """N×C×C channel correlations, normalised by C·H·W so the size of the image cancels."""
    n, c, h, w = feat.shape
    flat = feat.float().reshape(n, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def content_loss(output_feat: torch.Tensor, target_feat: torch.Tensor) -> torch.Tensor:
    target = target_feat.float()
    return F.mse_loss(output_feat.float(), target) / target.pow(2).mean().clamp_min(1e-8)


def style_loss(output_feats: dict[str, torch.Tensor],
               target_grams: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean over layers of the relative squared Gram difference; targets are 1×C×C."""
    total = 0.0
    for layer, target in target_grams.items():
        gram = gram_matrix(output_feats[layer])
        scale = target.pow(2).mean().clamp_min(1e-12)
        total = total + F.mse_loss(gram, target.expand_as(gram)) / scale
    return total / len(target_grams)


def tv_loss(img: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbouring pixels; discourages high-frequency noise."""
    dh = (img[..., 1:, :] - img[..., :-1, :]).abs().mean()
    dw = (img[..., :, 1:] - img[..., :, :-1]).abs().mean()
    return dh + dw


class PerceptualLoss(nn.Module):
    """Content + style + TV terms against one painting, with its Gram targets precomputed."""

    def __init__(self, vgg: nn.Module, style_image01: torch.Tensor,
                 content_layer: str = DEFAULT_CONTENT_LAYER,
                 style_layers: Sequence[str] = DEFAULT_STYLE_LAYERS,
                 content_weight: float = 1.0, style_weight: float = 1.0, tv_weight: float = 0.0):
        super().__init__()
        self.vgg = vgg
        self.content_layer = content_layer
        self.style_layers = tuple(style_layers)
        self.weights = {"content": content_weight, "style": style_weight, "tv": tv_weight}
        with torch.no_grad():
            feats = vgg(style_image01.float(), self.style_layers)
        self.style_grams = {k: gram_matrix(v) for k, v in feats.items()}

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.style_layers, self.content_layer)))

    def forward(self, output01: torch.Tensor, content01: torch.Tensor) -> dict[str, torch.Tensor]:
        """Weighted terms by name, plus `total`."""
        with torch.no_grad():
            target = self.vgg(content01, (self.content_layer,))[self.content_layer]
        feats = self.vgg(output01, self.layers)
        terms = {
            "content": self.weights["content"] * content_loss(feats[self.content_layer], target),
            "style": self.weights["style"] * style_loss(feats, self.style_grams),
            "tv": self.weights["tv"] * tv_loss(output01.float()),
        }
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        return terms


def truncate_vgg(vgg: VGG19, layers: Iterable[str]) -> VGG19:
    """Drop the convolutions after the deepest of `layers` (relu4_1 for the default losses).

    `VGG19.forward` already stops at the deepest layer asked for; this frees the weights of the
    rest (conv4_2 … conv5_1, 12M of the 20M parameters) and makes a deeper request fail loudly.
    """
    deepest = max(CONV_NAMES.index("conv" + layer[4:]) for layer in layers)
    for name in CONV_NAMES[deepest + 1:]:
        setattr(vgg, name, None)
    return vgg


def loss_network(run: TrainingRun, layers: Iterable[str]) -> VGG19:
    """The frozen VGG-19 of a training run: on its device, in its memory format (channels-last
    when it uses it), cut after the deepest of `layers`. Not compiled: compile the module that
    calls it (`run.compiled`), so the loss terms fuse with it."""
    return run.to_format(truncate_vgg(load_vgg19(device=run.device), layers))


def perceptual_loss(run: TrainingRun, style_image01: torch.Tensor,
                    content_layer: str = DEFAULT_CONTENT_LAYER,
                    style_layers: Sequence[str] = DEFAULT_STYLE_LAYERS,
                    content_weight: float = 1.0, style_weight: float = 1.0,
                    tv_weight: float = 0.0) -> nn.Module:
    """`PerceptualLoss` for a training run: `loss_network`, the painting's Gram matrices
    computed once (float32, eagerly), and the forward/backward compiled when the run compiles.
    Call it under `run.autocast()` like the generator."""
    layers = (*style_layers, content_layer)
    criterion = PerceptualLoss(loss_network(run, layers), style_image01, content_layer,
                               style_layers, content_weight, style_weight, tv_weight)
    return run.compiled(criterion)


def _gaussian_window(size: int, sigma: float, device, dtype) -> torch.Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(3, 1, size, size)


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004) of two N×3×H×W images in 0..1, per channel, Gaussian window.

    Differentiable, so CycleGAN can use `1 - ssim` as a reconstruction term; the quality
    benchmark uses it to measure how much structure of the photo a style keeps.
    """
    c1, c2 = 0.01**2, 0.03**2
    a, b = a.float(), b.float()
    w = _gaussian_window(window, sigma, a.device, a.dtype)
    pad = window // 2
    a_p = F.pad(a, (pad,) * 4, mode="reflect")
    b_p = F.pad(b, (pad,) * 4, mode="reflect")
    mu_a = F.conv2d(a_p, w, groups=3)
    mu_b = F.conv2d(b_p, w, groups=3)
    var_a = F.conv2d(a_p * a_p, w, groups=3) - mu_a**2
    var_b = F.conv2d(b_p * b_p, w, groups=3) - mu_b**2
    cov = F.conv2d(a_p * b_p, w, groups=3) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return (num / den).mean()
