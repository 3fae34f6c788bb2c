"""AdaIN arbitrary style transfer (Huang & Belongie, ICCV 2017).

The frozen VGG-19 encoder up to relu4_1, adaptive instance normalisation there (the content
features, normalised per channel, take the painting's per-channel mean and standard deviation),
and a decoder that mirrors the encoder (nearest upsampling, reflect-padded 3×3 convolutions).
The decoder is the one of the paper's code (naoto0804/pytorch-AdaIN), which is also SANet's
(`sanet.make_decoder`), so an official `decoder.pth` imports with its `vgg_normalised.pth` as
`--vgg`. RGB 0..1 in and out.

- **Mixing paintings**: `set_style([a, b], weights=[0.3, 0.7])` targets the weighted mean of the
  paintings' statistics. AdaIN is affine in them, so this is exactly the paper's interpolation of
  the AdaIN features, `Σ wᵢ·AdaIN(c, sᵢ)`, at the cost of one style.
- **Strength**: `alpha` (the paper's content-style trade-off) interpolates the AdaIN features with
  the content's own relu4_1 features before the decoder; `alpha = 0` is the decoder's
  reconstruction of the photo. rtstyle's `--strength` is *not* this: like every network, AdaIN
  runs at `alpha = 1` and `--strength` blends pixels after it (`stylizer.blend_strength`), so a
  compiled engine has no strength baked in and a key press changes it at once. `alpha` is for
  library callers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsError
from .arch_registry import register_arch
from .padding import pad_to_multiple, unpad
from .sanet import make_decoder
from .vgg import VGG19

ENCODER_LAYER = "relu4_1"
# Below 16 px a side, relu4_1 is 1×1 and the reflect-padded convolutions have nothing to
# reflect; smaller pictures are padded (replicated) up to this and cropped back.
MIN_SIDE = 16


def feature_stats(feat: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel mean and standard deviation, each N×C×1×1 (the sample variance,
    as the paper's code computes it; a 1×1 map has std √eps)."""
    n, c = feat.shape[:2]
    flat = feat.reshape(n, c, -1).float()  # bf16/fp16 sums over a whole map lose too much
    mean = flat.mean(-1, keepdim=True)
    # sym_max: no shape guard, so torch.export (ONNX) keeps the size dynamic
    var = (flat - mean).pow(2).sum(-1) / torch.sym_max(flat.shape[-1] - 1, 1)
    mean = mean.view(n, c, 1, 1)
    std = (var + eps).sqrt().view(n, c, 1, 1)
    return mean, std


def adain(content: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Content features normalised per channel, then given the target mean and std."""
    c_mean, c_std = feature_stats(content)
    out = (content.float() - c_mean) / c_std * std.float() + mean.float()
    return out.to(content.dtype)


def mix_stats(stats: Sequence[tuple[torch.Tensor, torch.Tensor]],
              weights: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """The weighted mean of several paintings' (mean, std); weights sum to 1."""
    if len(stats) != len(weights):
        raise ValueError(f"{len(weights)} weights for {len(stats)} styles")
    mean = sum(w * m for (m, _), w in zip(stats, weights, strict=True))
    std = sum(w * s for (_, s), w in zip(stats, weights, strict=True))
    return mean, std


def adain_params(state: dict) -> dict:
    if "decoder.1.weight" not in state:
        raise WeightsError("not an AdaIN model: needs 'decoder.*' tensors")
    if any(k.startswith("transform.") for k in state):
        raise WeightsError("this file has SANet's 'transform.*' tensors: use --arch sanet")
    return {}


@register_arch("adain", input_range="0_1", infer_params=adain_params, needs_style_image=True,
               frozen_encoder_prefix="encoder.")
class AdaINModel(nn.Module):
    """Encoder (relu4_1) + AdaIN + decoder. `set_style` caches a painting's statistics, so a
    video frame pays only for its own encoding and the decoder."""

    # relu4_1 is 1/8 of the input (three poolings); the decoder upsamples by 8.
    stride_multiple = 8
    # mixes paintings by their statistics (`set_style` takes several), not by blending outputs
    mixes_style_statistics = True

    def __init__(self, encoder: VGG19 | None = None, alpha: float = 1.0):
        super().__init__()
        self.encoder = encoder if encoder is not None else VGG19()
        self.decoder = make_decoder()
        self.alpha = alpha
        # Non-persistent buffers: `.to(device, dtype)` moves the cached style too.
        self.register_buffer("style_mean", None, persistent=False)
        self.register_buffer("style_std", None, persistent=False)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x, (ENCODER_LAYER,))[ENCODER_LAYER]

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Pad to the stride multiple (and at least `MIN_SIDE`); `unpad` undoes it."""
        h, w = x.shape[-2:]
        if h < MIN_SIDE or w < MIN_SIDE:
            x = F.pad(x, (0, max(0, MIN_SIDE - w), 0, max(0, MIN_SIDE - h)), mode="replicate")
        x, _ = pad_to_multiple(x, self.stride_multiple)
        return x, (h, w)

    def style_stats(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """relu4_1 (mean, std) of a 1×3×H×W (or N×…) RGB 0..1 painting."""
        return feature_stats(self.encode(self._pad(style)[0]))

    @torch.no_grad()
    def set_style(self, style: torch.Tensor | Sequence[torch.Tensor],
                  weights: Sequence[float] | None = None) -> None:
        """Keep the target statistics of one painting, or the weighted mix of several (weights
        default to equal and are scaled to sum to 1)."""
        styles = [style] if isinstance(style, torch.Tensor) else list(style)
        if not styles:
            raise ValueError("set_style needs at least one painting")
        if weights is None:
            weights = [1.0] * len(styles)
        total = float(sum(weights))
        if len(weights) != len(styles) or total <= 0 or min(weights) < 0:
            raise ValueError(f"weights {list(weights)} do not fit {len(styles)} paintings")
        stats = [self.style_stats(s) for s, w in zip(styles, weights, strict=True) if w > 0]
        kept = [w / total for w in weights if w > 0]
        self.style_mean, self.style_std = mix_stats(stats, kept)

    def target(self, content_feat: torch.Tensor, style: torch.Tensor | None = None,
               alpha: float | None = None) -> torch.Tensor:
        """The relu4_1 features the decoder gets: AdaIN, interpolated with the content by α."""
        alpha = self.alpha if alpha is None else alpha
        if style is not None:
            mean, std = self.style_stats(style)
        elif self.style_mean is not None:
            mean, std = self.style_mean, self.style_std
        else:
            raise ValueError("AdaIN needs a style image: pass `style` or call `set_style` first")
        feat = adain(content_feat, mean, std)
        if alpha < 1.0:
            feat = alpha * feat + (1.0 - alpha) * content_feat
        return feat

    def forward(self, content: torch.Tensor, style: torch.Tensor | None = None,
                alpha: float | None = None) -> torch.Tensor:
        content, size = self._pad(content)
        feat = self.target(self.encode(content), style, alpha)
        return unpad(self.decoder(feat), size)

    def reconstruct(self, content: torch.Tensor) -> torch.Tensor:
        """decoder(encoder(x)): the photo through the network with no style (α = 0)."""
        content, size = self._pad(content)
        return unpad(self.decoder(self.encode(content)), size)
