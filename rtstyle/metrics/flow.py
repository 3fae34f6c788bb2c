"""Optical flow for evaluation: Middlebury `.flo` files, OpenCV DIS, occlusion masks.

Evaluation flow is computed on the *input* frames at full resolution on the CPU with OpenCV's
DIS (accurate and fast enough offline), unlike the run-time smoother's small device-side
estimator. Conventions follow `rtstyle.realtime.flow`: `flow_ab[y, x] = (dx, dy)` with
`a(p) ≈ b(p + flow_ab(p))`; arrays here are H×W×2 float32.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import MediaError, UserInputError

FLO_MAGIC = np.float32(202021.25)
DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


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


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def dis_flow(frame_a: np.ndarray, frame_b: np.ndarray, preset: str = "medium") -> np.ndarray:
    """Flow `a -> b` between two H×W×3 uint8 RGB frames with OpenCV's DIS."""
    if preset not in DIS_PRESETS:
        raise UserInputError(f"unknown DIS preset '{preset}'; choose from: {', '.join(DIS_PRESETS)}")
    dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
    return dis.calc(_gray(frame_a), _gray(frame_b), None)


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
