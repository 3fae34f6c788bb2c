"""Photorealism by a locally affine colour transform: the output is the input, recoloured.

Deep Photo Style Transfer (Luan et al. 2017) keeps a result photographic by asking that it be,
in every small window, an affine function of the input's colours: edges, texture and detail
then come from the photo, and only colour and tone from the style. Its optimisation does that
with the matting Laplacian (`rtstyle.models.matting`, for stills). For frames there is a
closed-form shortcut: the colour guided filter (He et al. 2013) gives, for every window, the
least-squares affine map from the input's RGB to a target image,

    q_c(x) = A_c(x) · I(x) + b_c(x),    (A_c, b_c) = argmin Σ_window (A_c·I + b_c − p_c)² + ε|A_c|²

averaged over the windows that cover x. With the stylized frame as the target p, q is the
locally affine recolouring of the input that best fits the painting. The fast guided filter
(He & Sun 2015; `rtstyle.models.guided`, shared with `--style-scale`) makes it cheap: the coefficients vary slowly, so they are solved on a frame
`scale` times smaller, upsampled, and applied to the full-resolution input; the only
full-resolution work is one bilinear upsampling of 12 channels and a 3×3 matrix per pixel.

`radius` is in pixels of the full frame; `eps` (RGB in 0..1) trades fit for smoothness: small
values follow the target's local contrast, large ones keep only its local mean colour.

For a reference *photo* as the style, there is no painting to fit: `ColorStatisticsTransfer`
moves the frame's colour statistics in CIELAB to the reference's (mean and standard deviation
per channel, Reinhard et al. 2001), a global colour map that the guided filter then turns
into a locally affine one like any other target.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import UserInputError
from .guided import apply_coefficients, downsample, guided_coefficients

DEFAULT_RADIUS = 8
DEFAULT_EPS = 1e-2
# The coefficient frame is at least this many pixels on the long side (4× smaller at 640×360).
MIN_COARSE_SIDE = 160


@dataclass(frozen=True)
class PhotorealSettings:
    """`--photoreal-radius` (pixels of the processed frame) and `--photoreal-eps`."""

    radius: int = DEFAULT_RADIUS
    eps: float = DEFAULT_EPS

    def __post_init__(self):
        if self.radius < 1:
            raise UserInputError(f"--photoreal-radius must be at least 1, got {self.radius}")
        if not self.eps > 0:
            raise UserInputError(f"--photoreal-eps must be > 0, got {self.eps}")


def coarse_factor(width: int, height: int, radius: int) -> int:
    """How much smaller the coefficient frame is: as much as the radius allows (at least two
    coarse pixels of radius, so the windows still see structure) while the long side stays at
    least `MIN_COARSE_SIDE`; at most 4× (He & Sun's choice)."""
    s = max(1, min(4, radius // 2, max(width, height) // MIN_COARSE_SIDE))
    return s


def locally_affine(guide: torch.Tensor, target: torch.Tensor,
                   settings: PhotorealSettings = PhotorealSettings(),
                   factor: int | None = None) -> torch.Tensor:
    """The locally affine transform of `guide` (the input frame) that best fits `target` (the
    stylized frame), both N×3×H×W 0..1 on one device; clamped to 0..1.

    `target` may be smaller than the guide (e.g. already at the coarse size): only its coarse
    version is used.
    """
    n, _, h, w = guide.shape
    s = coarse_factor(w, h, settings.radius) if factor is None else factor
    small = (max(1, round(h / s)), max(1, round(w / s)))
    g = downsample(guide.float(), small)
    p = downsample(target.float(), small) if target.shape[-2:] != small else target.float()
    a, b = guided_coefficients(g, p, max(1, round(settings.radius / s)), settings.eps)
    return apply_coefficients(guide, a, b).clamp_(0.0, 1.0)


class LocalAffineTransform:
    """The per-frame photoreal step: `step(stylized, source) -> photoreal`, on the frames'
    device, any size; keeps nothing between frames."""

    def __init__(self, settings: PhotorealSettings = PhotorealSettings()):
        self.settings = settings

    def __call__(self, stylized: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        return locally_affine(source, stylized, self.settings).to(stylized.dtype)


# sRGB (D65) <-> CIELAB. Matrices from IEC 61966-2-1; white point D65.
_RGB_TO_XYZ = torch.tensor([[0.4124564, 0.3575761, 0.1804375],
                            [0.2126729, 0.7151522, 0.0721750],
                            [0.0193339, 0.1191920, 0.9503041]])
_WHITE = torch.tensor([0.95047, 1.0, 1.08883])
_DELTA = 6.0 / 29.0


def rgb_to_lab(x01: torch.Tensor) -> torch.Tensor:
    """N×3×H×W sRGB 0..1 -> L 0..100, a, b (about −100..100)."""
    x = x01.float().clamp(0.0, 1.0)
    linear = torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    m = (_RGB_TO_XYZ / _WHITE[:, None]).to(x.device)
    xyz = torch.einsum("ij,njhw->nihw", m, linear)
    f = torch.where(xyz > _DELTA ** 3, xyz.clamp_min(1e-12) ** (1 / 3),
                    xyz / (3 * _DELTA ** 2) + 4 / 29)
    return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]),
                        200 * (f[:, 1] - f[:, 2])], 1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Inverse of `rgb_to_lab`, clamped to 0..1."""
    fy = (lab[:, 0] + 16) / 116
    f = torch.stack([fy + lab[:, 1] / 500, fy, fy - lab[:, 2] / 200], 1)
    xyz = torch.where(f > _DELTA, f ** 3, 3 * _DELTA ** 2 * (f - 4 / 29))
    m = torch.linalg.inv(_RGB_TO_XYZ.double()).float().to(lab.device) * _WHITE.to(lab.device)
    linear = torch.einsum("ij,njhw->nihw", m, xyz).clamp(0.0, 1.0)
    rgb = torch.where(linear <= 0.0031308, linear * 12.92,
                      1.055 * linear.clamp_min(1e-12) ** (1 / 2.4) - 0.055)
    return rgb.clamp(0.0, 1.0)


def lab_moments(x01: torch.Tensor, mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation in Lab (N×3×1×1 each), over `mask` if given
    (N×1×H×W weights)."""
    lab = rgb_to_lab(x01)
    if mask is None:
        return lab.mean((2, 3), keepdim=True), lab.std((2, 3), keepdim=True)
    wsum = mask.sum((2, 3), keepdim=True).clamp_min(1e-6)
    mean = (lab * mask).sum((2, 3), keepdim=True) / wsum
    var = ((lab - mean) ** 2 * mask).sum((2, 3), keepdim=True) / wsum
    return mean, var.sqrt()


def transfer_lab_moments(x01: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                         min_std: float = 1.0, mask: torch.Tensor | None = None) -> torch.Tensor:
    """`x01` with its Lab mean and standard deviation (over `mask`, if given) moved to
    (`mean`, `std`)."""
    lab = rgb_to_lab(x01)
    if mask is None:
        mu, sigma = lab.mean((2, 3), keepdim=True), lab.std((2, 3), keepdim=True)
    else:
        mu, sigma = lab_moments(x01, mask)
    out = (lab - mu) * (std / sigma.clamp_min(min_std)) + mean
    return lab_to_rgb(out)


class ColorStatisticsTransfer(nn.Module):
    """A reference photo as a style: each frame recoloured to the reference's Lab statistics.

    Stands where a style network would (RGB 0..1 in and out), so strength, smoothing and the
    photoreal step treat it like one. Statistics are measured once, on the reference.
    """

    def __init__(self, reference01: torch.Tensor, name: str = "reference"):
        super().__init__()
        mean, std = lab_moments(reference01)
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return transfer_lab_moments(x, self.mean, self.std).to(x.dtype)


def load_reference_style(path, *, device: str | torch.device = "cpu",
                         side: int = 512) -> ColorStatisticsTransfer:
    """A reference photo (or painting) file as a `ColorStatisticsTransfer` on `device`."""
    from pathlib import Path

    from ..images import image_to_tensor, read_image, resize_max_side

    rgb = resize_max_side(read_image(path), side)
    return ColorStatisticsTransfer(image_to_tensor(rgb, device),
                                   name=f"{Path(path).stem} (colour statistics)").eval()
