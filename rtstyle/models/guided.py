"""The colour guided filter (He et al. 2013) in its fast form (He & Sun 2015), shared by the
photoreal step (`rtstyle.models.photoreal`), Deep Photo's final fit and the edge-aware
upsampling of `--style-scale` (`guided_upsample`, used by `rtstyle.models.style_scale`).

For a guide I (RGB) and a target p, every (2r+1)² window gets the least-squares affine map

    q_c = A_c · I + b_c,    (A_c, b_c) = argmin Σ_window (A_c·I + b_c − p_c)² + ε|A_c|²

(a 3×3 colour covariance per window, so an edge in any channel of the guide is an edge of the
map), and each pixel averages the maps of the windows that cover it. The coefficients vary
slowly, so they can be solved on a smaller frame, upsampled bilinearly and applied to the
full-resolution guide: the only full-resolution work is one bilinear upsampling of 12
channels and a 3×3 matrix per pixel.

Everything here runs on any device and batch size; the statistics are float32 whatever the
input's dtype (variances are differences of means, which FP16/BF16 cannot hold), and the
result comes back in the guide's dtype.
"""

from __future__ import annotations

import cv2
import torch
import torch.nn.functional as F


def _window_sum(x: torch.Tensor, radius: int, dim: int) -> torch.Tensor:
    """Sum over the 2r+1 neighbours along `dim` (-1 or -2), zeros outside: 2r shifted adds,
    several times faster on a CPU than `avg_pool2d` for the small radii used here."""
    n = x.shape[dim]
    out = x.clone()
    for i in range(1, min(radius, n - 1) + 1):
        out.narrow(dim, i, n - i).add_(x.narrow(dim, 0, n - i))
        out.narrow(dim, 0, n - i).add_(x.narrow(dim, i, n - i))
    return out


def _window_count(n: int, radius: int, device: torch.device) -> torch.Tensor:
    """How many of the 2r+1 neighbours of each of n positions lie inside."""
    i = torch.arange(n, device=device)
    return (1 + i.clamp(max=radius) + (n - 1 - i).clamp(max=radius)).float()


def box_filter(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over the (2r+1)² window around each pixel, over the pixels inside the image
    (the guided filter's normalisation at borders); separable, so O(r) per pixel."""
    if radius < 1:
        return x
    h, w = x.shape[-2:]
    counts = torch.outer(_window_count(h, radius, x.device), _window_count(w, radius, x.device))
    sums = _window_sum(_window_sum(x, radius, -2), radius, -1)
    return sums.mul_(counts.reciprocal_().to(x.dtype))


def inverse_sym3(m: torch.Tensor) -> torch.Tensor:
    """Inverses of symmetric 3×3 matrices stored as 6 channels (xx, xy, xz, yy, yz, zz) of an
    N×6×H×W tensor, by the adjugate: one fused expression per pixel instead of a batched
    LAPACK call per pixel. Returns N×9×H×W, row-major."""
    a, b, c, d, e, f = m.unbind(1)
    i00 = d * f - e * e
    i01 = c * e - b * f
    i02 = b * e - c * d
    i11 = a * f - c * c
    i12 = b * c - a * e
    i22 = a * d - b * b
    det = a * i00 + b * i01 + c * i02
    inv = torch.stack([i00, i01, i02, i01, i11, i12, i02, i12, i22], 1)
    return inv / det.unsqueeze(1)


_PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))


def guided_coefficients(guide: torch.Tensor, target: torch.Tensor, radius: int,
                        eps: float, *, smooth_offset: bool = True
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """The colour guided filter's averaged coefficients (mean A: N×9×H×W with A[c*3+i] the
    weight of guide channel i in output channel c; b: N×3×H×W), both N×3×H×W inputs in 0..1;
    float32 out.

    `smooth_offset=False` keeps b per pixel, `b = p − Ā·I`, instead of averaging it over the
    windows: q then reproduces the target exactly at this resolution, and only what the
    averaged slopes Ā add at a finer one differs (`guided_upsample`).
    """
    guide, target = guide.float(), target.float()
    n, _, h, w = guide.shape
    products = [guide[:, i] * guide[:, j] for i, j in _PAIRS]
    cross = [guide[:, i] * target[:, c] for c in range(3) for i in range(3)]
    means = box_filter(torch.cat([guide, target, torch.stack(products + cross, 1)], 1), radius)
    mean_i, mean_p = means[:, :3], means[:, 3:6]
    var = means[:, 6:12] - torch.stack([mean_i[:, i] * mean_i[:, j] for i, j in _PAIRS], 1)
    var[:, [0, 3, 5]] += eps
    cov = means[:, 12:21] - torch.stack(
        [mean_i[:, i] * mean_p[:, c] for c in range(3) for i in range(3)], 1)
    inv = inverse_sym3(var).view(n, 3, 3, h, w)                # inv[j, i]
    cov = cov.view(n, 3, 3, h, w)                               # cov[c, i]
    a = (cov.unsqueeze(2) * inv.unsqueeze(1)).sum(3)            # a[c, j] = Σ_i cov[c,i] inv[i,j]
    if not smooth_offset:
        a = box_filter(a.reshape(n, 9, h, w), radius)
        b = target - (a.view(n, 3, 3, h, w) * guide.unsqueeze(1)).sum(2)
        return a, b
    b = mean_p - (a * mean_i.unsqueeze(1)).sum(2)
    smoothed = box_filter(torch.cat([a.reshape(n, 9, h, w), b], 1), radius)
    return smoothed[:, :9], smoothed[:, 9:]


def gray_guided_coefficients(guide: torch.Tensor, target: torch.Tensor, radius: int,
                             eps: float, *, smooth_offset: bool = True
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """`guided_coefficients` with a one-channel guide (N×1×H×W, e.g. luminance): a scalar
    slope per output channel (A: N×3×H×W) instead of a 3×3 colour matrix, about a third of
    the work."""
    guide, target = guide.float(), target.float()
    means = box_filter(torch.cat([guide, target, guide * guide, guide * target], 1), radius)
    mean_i, mean_p = means[:, :1], means[:, 1:4]
    var = means[:, 4:5] - mean_i * mean_i
    a = (means[:, 5:8] - mean_i * mean_p) / (var + eps)
    if not smooth_offset:
        a = box_filter(a, radius)
        return a, target - a * guide
    smoothed = box_filter(torch.cat([a, mean_p - a * mean_i], 1), radius)
    return smoothed[:, :3], smoothed[:, 3:]


def apply_coefficients(guide: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """q_c = A_c · I + b_c, coefficients upsampled (bilinear) to the guide's size first.
    `guide` has k channels (3: colour, 1: luminance) and `a` 3·k."""
    n, k, h, w = guide.shape
    coeffs = torch.cat([a, b], 1)
    if coeffs.shape[-2:] != (h, w):
        coeffs = resize(coeffs, (h, w), "bilinear")
    coeffs = coeffs.to(guide.dtype)
    a = coeffs[:, :3 * k].view(n, 3, k, h, w)
    out = coeffs[:, 3 * k:].contiguous()
    for i in range(k):
        out.addcmul_(a[:, :, i], guide[:, i:i + 1])
    return out


def _on_opencv(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.shape[0] == 1 and x.dtype == torch.float32


def resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Area downscale or bilinear upscale (half-pixel centres) of 1×C×H×W float.

    CPU float32 tensors go through OpenCV plane by plane, straight into the result (no layout
    copies): at 640×360 torch's area and bilinear kernels took 0.5 and 2.1 ms on one core of
    the 2-core EPYC, OpenCV about a tenth of that, and the smoother and `--style-scale` run
    them on every frame. Non-integer area factors weigh partly covered pixels (OpenCV) where
    torch's adaptive pooling rounds the windows: both are area averages.
    """
    if not _on_opencv(x):
        return F.interpolate(x, size=size, mode=mode,
                             **({} if mode == "area" else {"align_corners": False}))
    src = x[0].contiguous().numpy()
    out = torch.empty((1, x.shape[1], *size), dtype=torch.float32)
    dst = out[0].numpy()
    flag = cv2.INTER_AREA if mode == "area" else cv2.INTER_LINEAR
    for c in range(x.shape[1]):
        cv2.resize(src[c], (size[1], size[0]), dst=dst[c], interpolation=flag)
    return out


def downsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """To (h, w) by area averaging (what a box filter expects of a smaller frame)."""
    h, w = x.shape[-2:]
    if (h, w) == tuple(size):
        return x
    k = h // size[0]
    if k > 1 and (h, w) == (size[0] * k, size[1] * k) and not _on_opencv(x):
        return F.avg_pool2d(x, k)  # the same numbers, without the adaptive kernel's cost
    return resize(x, tuple(size), "area")


# Rec. 601 luma weights: the one-channel guide of `guided_upsample`.
_LUMA = (0.299, 0.587, 0.114)


def luminance(x: torch.Tensor) -> torch.Tensor:
    """N×3×H×W RGB -> N×1×H×W luma, in x's dtype."""
    r, g, b = _LUMA  # Python floats: no tensor to copy to the device every frame
    return (x[:, 0:1] * r).add_(x[:, 1:2], alpha=g).add_(x[:, 2:3], alpha=b)


def guided_upsample(guide: torch.Tensor, guide_small: torch.Tensor, target_small: torch.Tensor,
                    radius: int = 1, eps: float = 1e-4, *, color: bool = False) -> torch.Tensor:
    """`target_small` (a function of `guide_small`, e.g. a network's output on it) brought to
    `guide`'s size with `guide`'s edges: the coefficients are solved at the small size, where
    both are known, and applied to the full-resolution guide (joint upsampling). Both guides
    are N×3×H×W RGB; `target_small` is N×3×h×w.

    The per-pixel offset is kept (`smooth_offset=False`), so what is not a local function of
    the guide (a brush stroke over a flat sky) is upsampled bilinearly, as it was painted,
    instead of being averaged away; the averaged slopes carry the guide's full-resolution
    detail across every edge the small output follows. The guide is the luminance (a slope
    per output channel), or with `color` the RGB with its 3×3 covariance (about 4× the work
    for edges that only change hue). Computes in float32, returns the guide's dtype,
    unclamped.
    """
    # Applied in float32 too: with a small eps the slopes can be large and the offsets cancel
    # them, which FP16/BF16 cannot hold to a level (BF16 missed by up to 0.05 on noise).
    full = guide.float()
    if color:
        a, b = guided_coefficients(guide_small, target_small, radius, eps, smooth_offset=False)
        return apply_coefficients(full, a, b).to(guide.dtype)
    a, b = gray_guided_coefficients(luminance(guide_small.float()), target_small, radius, eps,
                                    smooth_offset=False)
    return apply_coefficients(luminance(full), a, b).to(guide.dtype)
