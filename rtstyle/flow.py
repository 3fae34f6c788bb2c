"""Optical flow, in one place: the run-time estimator on the device and the evaluation tools.

Flow convention everywhere in rtstyle: a flow field `flow_ab` (channels (dx, dy) in pixels)
lives on the pixel grid of frame `a` and points to where that pixel is found in frame `b`, i.e.
`a(p) ≈ b(p + flow_ab(p))`. Middlebury `.flo` files and OpenCV's `calcOpticalFlow(a, b)` use
the same convention. `warp(b, flow_ab)` therefore pulls `b` onto `a`'s grid; backward warping
never leaves holes, which is why every consumer warps this way.

Two families share that convention and live here so that every floor can use them (the
smoother, the warping-error metric and the training term all need both warping and flow):

* Torch, N×2×H×W on any device: `warp`, `pixel_grid`, `sampling_grid` and a pyramidal
  Lucas–Kanade estimator. The estimator is plain torch (no OpenCV, no custom kernels) so it runs
  wherever the stylizer runs, on small grayscale images: the run-time smoother only needs flow
  good enough to carry the previous output along, and it rejects pixels where the flow is wrong
  by a photometric check.
* NumPy/OpenCV, H×W×2 float32 on the CPU: Middlebury `.flo` files, OpenCV's DIS, the
  forward–backward occlusion check and mask images. Evaluation flow is computed on the *input*
  frames at full resolution with DIS (accurate and fast enough offline), and the smoother uses
  DIS at low resolution for CPU tensors.

This is a ground-floor module: it imports nothing from rtstyle but other ground modules.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .errors import MediaError, UserInputError

_LUMA = (0.299, 0.587, 0.114)
FLO_MAGIC = np.float32(202021.25)
DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


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
    with running sums, then box-filters the field. `regularization` (in squared gradient units)
    keeps flat regions, where the system is singular, from producing large vectors: there the
    update shrinks to zero.
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


def read_flo(path: str | Path) -> np.ndarray:
    """Read a Middlebury `.flo` file as H×W×2 float32; reject files with a wrong magic or size."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MediaError(f"cannot read flow file {path}: {exc}") from None
    if len(raw) < 12 or np.frombuffer(raw[:4], "<f4")[0] != FLO_MAGIC:
        raise MediaError(f"{path.name}: not a Middlebury .flo file (bad magic number)")
    w, h = (int(v) for v in np.frombuffer(raw[4:12], "<i4"))
    expected = 12 + w * h * 2 * 4
    if w <= 0 or h <= 0 or len(raw) != expected:
        raise MediaError(f"{path.name}: .flo header says {w}x{h} but the file has "
                         f"{len(raw)} bytes (expected {expected})")
    return np.frombuffer(raw[12:], "<f4").reshape(h, w, 2).copy()


def write_flo(path: str | Path, flow: np.ndarray) -> Path:
    """Write H×W×2 flow as a Middlebury `.flo` file."""
    path = Path(path)
    h, w = flow.shape[:2]
    with path.open("wb") as fh:
        fh.write(FLO_MAGIC.tobytes())
        fh.write(np.array((w, h), "<i4").tobytes())
        fh.write(np.ascontiguousarray(flow, "<f4").tobytes())
    return path


def _gray_u8(rgb: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 RGB -> H×W uint8 luma, the input DIS expects."""
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def dis_flow(frame_a: np.ndarray, frame_b: np.ndarray, preset: str = "medium") -> np.ndarray:
    """Flow `a -> b` between two H×W×3 uint8 RGB frames with OpenCV's DIS."""
    if preset not in DIS_PRESETS:
        raise UserInputError(f"unknown DIS preset '{preset}'; choose from: {', '.join(DIS_PRESETS)}")
    dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
    return dis.calc(_gray_u8(frame_a), _gray_u8(frame_b), None)


def warp_flow_field(field: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample `field` (H×W×C) at `p + flow(p)`, bilinear, border replicated."""
    h, w = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(field, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def consistency_mask(flow_ab: np.ndarray, flow_ba: np.ndarray,
                     alpha1: float = 0.01, alpha2: float = 0.5) -> np.ndarray:
    """True where `a`'s pixel is visible in `b`, by the forward–backward check.

    Following Sundaram et al. 2010 as used by Ruder et al. 2016 and Lai et al. 2018: a pixel is
    occluded when going to `b` and back does not return to it,
    |f + b(p+f)|² > alpha1 (|f|² + |b(p+f)|²) + alpha2, or when `p + f` leaves the frame.
    """
    back = warp_flow_field(flow_ba, flow_ab)
    mismatch = np.sum((flow_ab + back) ** 2, axis=-1)
    bound = alpha1 * (np.sum(flow_ab**2, axis=-1) + np.sum(back**2, axis=-1)) + alpha2
    h, w = flow_ab.shape[:2]
    xs, ys = np.meshgrid(np.arange(w), np.arange(h))
    x, y = xs + flow_ab[..., 0], ys + flow_ab[..., 1]
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    return (mismatch <= bound) & inside


def read_mask(path: str | Path) -> np.ndarray:
    """An 8-bit mask PNG as bool H×W, white = True (Sintel's occlusion/invalid convention)."""
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise MediaError(f"cannot read mask image {path}")
    return img > 127
