"""Colour preservation: keep the photo's colours, take the painting's strokes.

Two ways, after Gatys et al., "Preserving Color in Neural Artistic Style Transfer" (2016):

- `luminance`: the output's brightness (BT.601 Y) with the photo's chroma (Cb, Cr). The
  photo's colours stay exactly where they were; only light and texture come from the style.
- `histogram`: the output recoloured so that its colour mean and covariance equal the photo's
  (the linear colour transfer the paper calls colour histogram matching). The style's colour
  variation (a blue stroke beside a red one) survives, in the photo's palette.

Both act on the stylized image after the network (or the optimisation), before
`blend_strength`, as one function of (photo, output) on the output's device: a compiled or
exported engine never has colour preservation baked in, and a key press toggles it live.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import UserInputError

COLOR_MODES = ("luminance", "histogram")

# BT.601 full range (JPEG), RGB 0..1 -> Y 0..1, Cb/Cr centred on 0.
_RGB_TO_YCBCR = torch.tensor([[0.299, 0.587, 0.114],
                              [-0.168736, -0.331264, 0.5],
                              [0.5, -0.418688, -0.081312]])


def check_color_mode(mode: str | None) -> str | None:
    """`None`/"off" -> None; a known mode -> itself; anything else is a user error."""
    if mode is None or mode == "off":
        return None
    if mode not in COLOR_MODES:
        raise UserInputError(f"unknown colour preservation '{mode}'; choose from: "
                             f"{', '.join(COLOR_MODES)}, off")
    return mode


def rgb_to_ycbcr(x01: torch.Tensor) -> torch.Tensor:
    """N×3×H×W RGB 0..1 -> Y 0..1, Cb, Cr in -0.5..0.5 (BT.601 full range)."""
    m = _RGB_TO_YCBCR.to(x01.device, torch.float32)
    return torch.einsum("ij,njhw->nihw", m, x01.float())


def ycbcr_to_rgb(ycc: torch.Tensor) -> torch.Tensor:
    m = torch.linalg.inv(_RGB_TO_YCBCR.double()).float().to(ycc.device)
    return torch.einsum("ij,njhw->nihw", m, ycc.float())


def _match_size(photo01: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if photo01.shape[-2:] == like.shape[-2:]:
        return photo01.float()
    return F.interpolate(photo01.float(), size=like.shape[-2:], mode="bilinear",
                         antialias=True, align_corners=False)


def keep_luminance(photo01: torch.Tensor, stylized01: torch.Tensor) -> torch.Tensor:
    """Stylized Y with the photo's Cb/Cr.

    A saturated colour does not exist at every brightness (no saturated red is as bright as
    white), so where the pair leaves the RGB cube the photo's chroma is scaled down, just
    enough to fit, towards grey: the brightness and the hue stay exact, only saturation
    gives way. Clipping each channel instead would shift the hue and the brightness.
    """
    luma = rgb_to_ycbcr(stylized01)[:, :1].clamp(0.0, 1.0)
    chroma = rgb_to_ycbcr(_match_size(photo01, stylized01))[:, 1:]
    offset = ycbcr_to_rgb(torch.cat([torch.zeros_like(luma), chroma], 1))  # RGB - Y per pixel
    room = torch.where(offset > 0, (1 - luma) / offset.clamp_min(1e-12),
                       torch.where(offset < 0, luma / (-offset).clamp_min(1e-12),
                                   torch.ones_like(offset)))
    scale = room.amin(1, keepdim=True).clamp(0.0, 1.0)
    return (luma + scale * offset).clamp(0.0, 1.0)


def _sqrt_and_inverse_sqrt(cov: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric square root of a batch of 3×3 covariances, and of its inverse (float64:
    a near-grey image has a near-singular covariance)."""
    vals, vecs = torch.linalg.eigh(cov.double())
    vals = vals.clamp_min(eps)
    root = vecs @ torch.diag_embed(vals.sqrt()) @ vecs.transpose(-1, -2)
    inv_root = vecs @ torch.diag_embed(vals.rsqrt()) @ vecs.transpose(-1, -2)
    return root, inv_root


def match_color_statistics(photo01: torch.Tensor, stylized01: torch.Tensor,
                           eps: float = 1e-5) -> torch.Tensor:
    """Recolour `stylized01` so its per-image RGB mean and covariance equal the photo's:
    x' = Σp^½ Σs^-½ (x − μs) + μp, the linear map that changes the colour statistics and
    nothing else (no rotation of the colour axes). Clamped to 0..1."""
    photo = _match_size(photo01, stylized01)
    n = stylized01.shape[0]
    s = stylized01.float().reshape(n, 3, -1)
    p = photo.reshape(n, 3, -1)
    mu_s, mu_p = s.mean(-1, keepdim=True), p.mean(-1, keepdim=True)
    ds, dp = s - mu_s, p - mu_p
    cov_s = ds @ ds.transpose(1, 2) / ds.shape[-1]
    cov_p = dp @ dp.transpose(1, 2) / dp.shape[-1]
    # eigh is small work on any device; MPS lacks it, so 3×3 matrices go to the CPU there.
    on_cpu = stylized01.device.type == "mps"
    dev = torch.device("cpu") if on_cpu else stylized01.device
    root_p, _ = _sqrt_and_inverse_sqrt(cov_p.to(dev), eps)
    _, inv_root_s = _sqrt_and_inverse_sqrt(cov_s.to(dev), eps)
    transform = (root_p @ inv_root_s).float().to(stylized01.device)
    out = transform @ ds + mu_p
    return out.reshape(stylized01.shape).clamp(0.0, 1.0)


def preserve_color(photo01: torch.Tensor, stylized01: torch.Tensor,
                   mode: str | None) -> torch.Tensor:
    """Apply `--preserve-color MODE` (None: the stylized image unchanged). RGB 0..1, N×3×H×W;
    the result has `stylized01`'s dtype."""
    mode = check_color_mode(mode)
    if mode is None:
        return stylized01
    if mode == "luminance":
        out = keep_luminance(photo01, stylized01)
    else:
        out = match_color_statistics(photo01, stylized01)
    return out.to(stylized01.dtype)
