"""YUV420 <-> RGB on the device against FFmpeg's own conversion (PyAV `reformat`).

Tolerances, in 8-bit levels:
- YUV -> RGB: max 3, mean under 1.5. swscale's unscaled yuv420p->rgb24 path uses fixed-point
  tables; we compute in float. Chroma is replicated per 2×2 block on both sides.
- RGB -> YUV: luma max 1 (rounding); chroma max 2 on smooth content, where swscale's 2:1
  chroma filter and our 2×2 average agree (they differ at hard colour edges, by design of the
  filter, not of the matrix).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from av import VideoFrame
from av.video.reformatter import ColorRange, Colorspace

from rtstyle.realtime.yuv import (
    frame_colorimetry,
    frame_to_device_rgb,
    frame_yuv420_planes,
    rgb_to_yuv420,
    rgb_to_yuv420_frame,
    yuv420_to_rgb,
)

CASES = [
    ("bt601", False, Colorspace.ITU601, ColorRange.MPEG),
    ("bt601", True, Colorspace.ITU601, ColorRange.JPEG),
    ("bt709", False, Colorspace.ITU709, ColorRange.MPEG),
    ("bt709", True, Colorspace.ITU709, ColorRange.JPEG),
]
IDS = ["bt601-limited", "bt601-full", "bt709-limited", "bt709-full"]


def smooth_rgb(h: int = 48, w: int = 80) -> np.ndarray:
    """Saturated, smoothly varying colours over the whole gamut corner to corner."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = xx / (w - 1)
    g = yy / (h - 1)
    b = 0.5 + 0.5 * np.sin(xx / w * 3.0 + yy / h * 2.0)
    return (np.stack([r, g, b], -1) * 255).round().astype(np.uint8)


def pyav_yuv(rgb: np.ndarray, cs, cr) -> VideoFrame:
    return VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format="yuv420p", src_colorspace=cs, dst_colorspace=cs,
        src_color_range=ColorRange.JPEG, dst_color_range=cr)


def levels(x: torch.Tensor) -> np.ndarray:
    return (x[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy().astype(int)


@pytest.mark.parametrize(("matrix", "full", "cs", "cr"), CASES, ids=IDS)
def test_yuv_to_rgb_matches_ffmpeg(matrix, full, cs, cr):
    rng = np.random.default_rng(0)
    rgb = np.clip(smooth_rgb().astype(int) + rng.integers(-40, 40, (48, 80, 3)), 0, 255)
    yuv = pyav_yuv(rgb.astype(np.uint8), cs, cr)
    expected = yuv.reformat(format="rgb24", src_colorspace=cs, dst_colorspace=cs,
                            src_color_range=cr, dst_color_range=ColorRange.JPEG).to_ndarray()
    y, u, v = (torch.from_numpy(p.copy()) for p in frame_yuv420_planes(yuv))
    got = levels(yuv420_to_rgb(y, u, v, matrix=matrix, full_range=full))
    diff = np.abs(got - expected.astype(int))
    assert diff.max() <= 3 and diff.mean() < 1.5, (diff.max(), diff.mean())


@pytest.mark.parametrize(("matrix", "full", "cs", "cr"), CASES, ids=IDS)
def test_rgb_to_yuv_matches_ffmpeg(matrix, full, cs, cr):
    rgb = smooth_rgb()
    expected = frame_yuv420_planes(pyav_yuv(rgb, cs, cr))
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    got = rgb_to_yuv420(x, matrix=matrix, full_range=full)
    limits = (1, 2, 2)
    for name, ours, theirs, limit in zip("YUV", got, expected, limits, strict=True):
        diff = np.abs(ours[0].numpy().astype(int) - theirs.astype(int))
        assert diff.max() <= limit, (name, diff.max())


def test_ranges_use_the_right_code_values():
    white = torch.ones(1, 3, 2, 2)
    black = torch.zeros(1, 3, 2, 2)
    assert rgb_to_yuv420(white)[0].unique().tolist() == [235]
    assert rgb_to_yuv420(black)[0].unique().tolist() == [16]
    assert rgb_to_yuv420(white, full_range=True)[0].unique().tolist() == [255]
    assert rgb_to_yuv420(black, full_range=True)[1].unique().tolist() == [128]


def test_odd_sizes_keep_their_shape():
    y = torch.full((41, 67), 100, dtype=torch.uint8)
    u = torch.full((21, 34), 128, dtype=torch.uint8)
    rgb = yuv420_to_rgb(y, u, u.clone(), matrix="bt709")
    assert rgb.shape == (1, 3, 41, 67)
    y8, u8, v8 = rgb_to_yuv420(rgb, matrix="bt709")
    assert y8.shape == (1, 41, 67) and u8.shape == v8.shape == (1, 21, 34)
    assert (y8.int() - 100).abs().max() <= 1


@pytest.mark.parametrize(("matrix", "full"), [("bt601", False), ("bt709", True)])
def test_av_frame_round_trip_keeps_tags_and_pixels(matrix, full):
    rgb = smooth_rgb(48, 80)
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    frame = rgb_to_yuv420_frame(x, matrix=matrix, full_range=full)
    assert frame.format.name == "yuv420p" and (frame.width, frame.height) == (80, 48)
    assert frame_colorimetry(frame) == (matrix, full)
    back = frame_to_device_rgb(frame, torch.device("cpu"))
    # 4:2:0 averages chroma over 2×2 blocks and limited range quantises coarser; on this
    # gradient (~3 levels per pixel) that costs a few levels, never a colour shift.
    diff = np.abs(levels(back) - rgb.astype(int))
    assert diff.max() <= 10 and diff.mean() < 2, (diff.max(), diff.mean())


def test_yuv420_frame_needs_even_sides():
    with pytest.raises(ValueError, match="even"):
        rgb_to_yuv420_frame(torch.zeros(1, 3, 41, 66))
