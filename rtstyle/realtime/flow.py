"""Dense optical flow on the device: backward warping and a pyramidal Lucas–Kanade estimator.

Flow convention everywhere in rtstyle: a flow field `flow_ab` (N×2×H×W, channels (dx, dy) in
pixels) lives on the pixel grid of frame `a` and points to where that pixel is found in frame
`b`, i.e. `a(p) ≈ b(p + flow_ab(p))`. Middlebury `.flo` files and OpenCV's
`calcOpticalFlow(a, b)` use the same convention. `warp(b, flow_ab)` therefore pulls `b` onto
`a`'s grid; backward warping never leaves holes, which is why every consumer warps this way.

The estimator is plain torch (no OpenCV, no custom kernels) so it runs wherever the stylizer
runs, on small grayscale images: the run-time smoother only needs flow good enough to carry the
previous output along, and it rejects pixels where the flow is wrong by a photometric check.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_LUMA = (0.299, 0.587, 0.114)


def pixel_grid(h: int, w: int, device: torch.device | str = "cpu",
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """1×2×H×W tensor of pixel coordinates (x, y)."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=dtype),
                            torch.arange(w, device=device, dtype=dtype), indexing="ij")
    return torch.stack((xs, ys)).unsqueeze(0)


def sampling_grid(flow: torch.Tensor) -> torch.Tensor:
    """`grid_sample` grid (N×H×W×2, normalised, align_corners=True) for `p + flow(p)`.

    In these normalised units the grid does not depend on the resolution, so a grid built from
    low-resolution flow can be upsampled bilinearly and used at full resolution directly.
    """
    _, _, h, w = flow.shape
    coords = pixel_grid(h, w, flow.device, flow.dtype) + flow
    scale = torch.tensor((2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)), device=flow.device,
                         dtype=flow.dtype).view(1, 2, 1, 1)
    return (coords * scale - 1.0).permute(0, 2, 3, 1)


def warp(image: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample `image` (N×C×H×W) at `p + flow(p)`; return the warped image and its validity.

    Validity (N×1×H×W, float 0/1) is 1 where the sampled point lies inside the image, so
    callers can ignore pixels that came from the border padding. Bilinear, with
    `align_corners=True` so integer flows reproduce pixels exactly.
    """
    grid = sampling_grid(flow)
    warped = F.grid_sample(image, grid.to(image.dtype), mode="bilinear",
                           padding_mode="border", align_corners=True)
    return warped, inside_mask(grid).to(image.dtype)


def inside_mask(grid: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """N×1×H×W bool: which grid points fall inside the image."""
    return (grid.abs() <= 1.0 + eps).all(dim=-1).unsqueeze(1)


def to_gray(rgb01: torch.Tensor) -> torch.Tensor:
    """N×3×H×W RGB -> N×1×H×W luma (Rec. 601 weights)."""
    r, g, b = rgb01[:, 0:1], rgb01[:, 1:2], rgb01[:, 2:3]
    return _LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b


def resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resample a flow field to (H, W), rescaling the vectors with the grid."""
    h0, w0 = flow.shape[-2:]
    h, w = size
    if (h, w) == (h0, w0):
        return flow
    out = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=True)
    sx = (w - 1) / max(w0 - 1, 1)
    sy = (h - 1) / max(h0 - 1, 1)
    return out * torch.tensor((sx, sy), device=flow.device, dtype=flow.dtype).view(1, 2, 1, 1)


def _gradients(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences with replicated borders."""
    padded = F.pad(img, (1, 1, 1, 1), mode="replicate")
    gx = 0.5 * (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2])
    gy = 0.5 * (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1])
    return gx, gy


def _box(x: torch.Tensor, window: int) -> torch.Tensor:
    """Box mean over `window`² by running sums: O(1) per pixel, unlike a pooled window."""
    r = window // 2
    for dim in (-1, -2):
        pad = (r, r, 0, 0) if dim == -1 else (0, 0, r, r)
        sums = torch.cumsum(F.pad(x, pad, mode="replicate"), dim=dim)
        sums = F.pad(sums, (1, 0, 0, 0) if dim == -1 else (0, 0, 1, 0))
        n = sums.shape[dim]
        x = (sums.narrow(dim, window, n - window) - sums.narrow(dim, 0, n - window)) / window
    return x


def _pyramid(img: torch.Tensor, levels: int, min_side: int) -> list[torch.Tensor]:
    pyr = [img]
    while len(pyr) < levels and min(pyr[-1].shape[-2:]) >= 2 * min_side:
        pyr.append(F.avg_pool2d(pyr[-1], 2, ceil_mode=True))
    return pyr


def lucas_kanade_flow(ref_gray: torch.Tensor, other_gray: torch.Tensor, *, levels: int = 4,
                      iterations: int = 3, window: int = 9, min_side: int = 12,
                      regularization: float = 1e-4) -> torch.Tensor:
    """Dense flow `ref -> other` (N×2×H×W) by coarse-to-fine iterative Lucas–Kanade.

    Each iteration warps `other` with the current flow and solves the 2×2 least-squares system
    of the linearised brightness constancy in a `window`² box around every pixel, all at once
    with running sums, then box-filters the field. `regularization` (in squared gradient units) keeps flat regions, where
    the system is singular, from producing large vectors: there the update shrinks to zero.
    """
    ref_pyr = _pyramid(ref_gray, levels, min_side)
    other_pyr = _pyramid(other_gray, levels, min_side)
    flow = torch.zeros_like(ref_pyr[-1]).expand(-1, 2, -1, -1).contiguous()
    for level in range(len(ref_pyr) - 1, -1, -1):
        ref, other = ref_pyr[level], other_pyr[level]
        if flow.shape[-2:] != ref.shape[-2:]:
            flow = resize_flow(flow, ref.shape[-2:])
        rx, ry = _gradients(ref)
        for _ in range(iterations):
            warped, _ = warp(other, flow)
            wx, wy = _gradients(warped)
            gx, gy = 0.5 * (rx + wx), 0.5 * (ry + wy)
            diff = warped - ref
            sums = _box(torch.cat((gx * gx, gy * gy, gx * gy, gx * diff, gy * diff), 1), window)
            sxx, syy, sxy = sums[:, 0:1] + regularization, sums[:, 1:2] + regularization, sums[:, 2:3]
            bx, by = -sums[:, 3:4], -sums[:, 4:5]
            det = sxx * syy - sxy * sxy
            du = (syy * bx - sxy * by) / det
            dv = (sxx * by - sxy * bx) / det
            # Smoothing the field keeps per-pixel drift from feeding back through the warp
            # (without it, more iterations diverge on noise).
            flow = _box(flow + torch.cat((du, dv), dim=1), window)
    return flow
