"""YUV 4:2:0 <-> RGB on the device, with FFmpeg's BT.601/BT.709 and limited/full-range math.

Decoders hand out YUV420 planes. Letting swscale convert them to RGB on the CPU costs more than
the whole lite generator at 1080p; copying the 1.5 bytes/pixel planes to the device and
converting there is cheaper, and the same holds in reverse for the encoder.

Conventions follow FFmpeg (libswscale `yuv2rgb.c`, `ff_yuv2rgb_coeffs`):
- matrix: `bt601` (Kr=0.299, Kb=0.114; also FFmpeg's default when a stream does not say) or
  `bt709` (Kr=0.2126, Kb=0.0722);
- limited ("MPEG", tv) range: Y in 16..235, Cb/Cr in 16..240; full ("JPEG", pc): 0..255, with
  chroma centred on 128;
- chroma upsampling replicates each sample over its 2×2 block, as swscale's unscaled
  yuv420p->rgb24 path does; downsampling averages the 2×2 block.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .frames import Colorimetry, Yuv420

MATRICES = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}

# AVColorSpace values (libavutil/pixfmt.h) that PyAV reports in `VideoFrame.colorspace`.
_AVCOL_SPC_BT709 = 1
_AVCOL_SPC_BT601 = (5, 6)  # bt470bg, smpte170m
_AVCOL_RANGE_MPEG = 1
_AVCOL_RANGE_JPEG = 2
_AVCOL_SPC = {"bt709": 1, "bt601": 5}


def _coefficients(matrix: str) -> tuple[float, float, float]:
    try:
        kr, kb = MATRICES[matrix]
    except KeyError:
        raise ValueError(f"unknown matrix {matrix!r}; choose from: {', '.join(MATRICES)}") from None
    return kr, 1.0 - kr - kb, kb


def _ranges(full_range: bool) -> tuple[float, float, float]:
    """(luma offset, luma scale, chroma scale) in 8-bit code values."""
    return (0.0, 255.0, 255.0) if full_range else (16.0, 219.0, 224.0)


def yuv420_to_rgb(y: torch.Tensor, u: torch.Tensor, v: torch.Tensor, *, matrix: str = "bt601",
                  full_range: bool = False, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 planes (H×W, ⌈H/2⌉×⌈W/2⌉ ×2; or with a leading batch dim) -> N×3×H×W RGB 0..1.

    Runs on whatever device the planes are on.
    """
    kr, kg, kb = _coefficients(matrix)
    y_off, y_scale, c_scale = _ranges(full_range)
    if y.dim() == 2:
        y, u, v = y[None], u[None], v[None]
    h, w = y.shape[-2:]
    luma = (y.to(dtype) - y_off) / y_scale
    chroma = (torch.stack((u, v), 1).to(dtype) - 128.0) / c_scale
    chroma = chroma.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)[..., :h, :w]
    cb, cr = chroma[:, 0], chroma[:, 1]
    r = luma + 2.0 * (1.0 - kr) * cr
    b = luma + 2.0 * (1.0 - kb) * cb
    g = (luma - kr * r - kb * b) / kg
    return torch.stack((r, g, b), 1).clamp_(0.0, 1.0)


def rgb_to_yuv420(rgb01: torch.Tensor, *, matrix: str = "bt601", full_range: bool = False
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """N×3×H×W RGB 0..1 -> uint8 planes N×H×W, N×⌈H/2⌉×⌈W/2⌉ ×2 (rounded, clamped)."""
    kr, kg, kb = _coefficients(matrix)
    y_off, y_scale, c_scale = _ranges(full_range)
    rgb = rgb01.float().clamp(0.0, 1.0)
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    luma = kr * r + kg * g + kb * b
    cb = (b - luma) / (2.0 * (1.0 - kb))
    cr = (r - luma) / (2.0 * (1.0 - kr))
    h, w = rgb.shape[-2:]
    chroma = torch.stack((cb, cr), 1)
    if h % 2 or w % 2:
        chroma = F.pad(chroma, (0, w % 2, 0, h % 2), mode="replicate")
    chroma = F.avg_pool2d(chroma, 2)
    y8 = (luma * y_scale + y_off).round_().clamp_(0, 255).to(torch.uint8)
    c8 = (chroma * c_scale + 128.0).round_().clamp_(0, 255).to(torch.uint8)
    return y8, c8[:, 0], c8[:, 1]


def colorimetry_of(tagged, width: int, height: int) -> Colorimetry:
    """The colorimetry of a PyAV `VideoFrame` or codec context, with FFmpeg-style defaults.

    An untagged matrix is BT.709 for HD (width ≥ 1280 or height ≥ 720) and BT.601 below, the
    guess FFmpeg's players and filters (ffplay, mpv, zscale) make; untagged range is limited.
    """
    colorspace = int(tagged.colorspace or 2)
    if colorspace in (_AVCOL_SPC_BT709, *_AVCOL_SPC_BT601):
        matrix = "bt709" if colorspace == _AVCOL_SPC_BT709 else "bt601"
    else:
        matrix = "bt709" if width >= 1280 or height >= 720 else "bt601"
    return Colorimetry(matrix, int(tagged.color_range or 0) == _AVCOL_RANGE_JPEG, colorspace,
                       int(tagged.color_primaries or 2), int(tagged.color_trc or 2))


def frame_colorimetry(frame) -> tuple[str, bool]:
    """(matrix, full_range) of a PyAV `VideoFrame` (see `colorimetry_of` for the defaults)."""
    c = colorimetry_of(frame, frame.width, frame.height)
    return c.matrix, c.full_range


def tag(target, colorimetry: Colorimetry) -> None:
    """Write `colorimetry` onto a PyAV `VideoFrame` or codec context; unknown codes are filled
    in from the matrix so that the output always says which matrix and range it uses."""
    target.colorspace = colorimetry.colorspace if colorimetry.colorspace not in (0, 2) \
        else _AVCOL_SPC[colorimetry.matrix]
    target.color_range = _AVCOL_RANGE_JPEG if colorimetry.full_range else _AVCOL_RANGE_MPEG
    if colorimetry.primaries != 2:
        target.color_primaries = colorimetry.primaries
    if colorimetry.trc != 2:
        target.color_trc = colorimetry.trc


def frame_yuv420_planes(frame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Y, U, V planes of a yuv420p (or yuvj420p) `VideoFrame`, without line padding."""
    if frame.format.name not in ("yuv420p", "yuvj420p"):
        frame = frame.reformat(format="yuv420p")
    planes = []
    for plane in frame.planes:
        rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        planes.append(rows[:plane.height, :plane.width])
    return planes[0], planes[1], planes[2]


def frame_to_device_rgb(frame, device: torch.device, dtype: torch.dtype = torch.float32
                        ) -> torch.Tensor:
    """PyAV yuv420p frame -> 1×3×H×W RGB 0..1 on `device`: 1.5 bytes/pixel cross the bus."""
    matrix, full_range = frame_colorimetry(frame)
    non_blocking = device.type == "cuda"
    y, u, v = (torch.from_numpy(np.ascontiguousarray(p)).to(device, non_blocking=non_blocking)
               for p in frame_yuv420_planes(frame))
    return yuv420_to_rgb(y, u, v, matrix=matrix, full_range=full_range, dtype=dtype)


def rgb_to_yuv420_frame(rgb01: torch.Tensor, *, matrix: str = "bt601",
                        full_range: bool = False):
    """1×3×H×W RGB 0..1 (any device) -> PyAV yuv420p `VideoFrame` tagged with its colorimetry.

    H and W must be even (every 4:2:0 encoder requires it; `geometry.target_size(even=True)`).
    """
    h, w = rgb01.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(f"yuv420p needs even width and height, got {w}×{h}")
    y, u, v = (p[0].cpu().numpy() for p in rgb_to_yuv420(rgb01, matrix=matrix,
                                                          full_range=full_range))
    return yuv420_to_av_frame(Yuv420(y, u, v, Colorimetry(matrix, full_range)))


def yuv420_to_av_frame(planes: Yuv420):
    """Host planes (even sides) -> PyAV yuv420p `VideoFrame` tagged with their colorimetry."""
    import av

    h, w = planes.y.shape
    # PyAV's yuv420p ndarray layout: the three planes back to back, viewed as (3H/2)×W.
    packed = np.concatenate([planes.y.ravel(), planes.u.ravel(), planes.v.ravel()])
    frame = av.VideoFrame.from_ndarray(packed.reshape(h * 3 // 2, w), format="yuv420p")
    tag(frame, planes.colorimetry)
    return frame
