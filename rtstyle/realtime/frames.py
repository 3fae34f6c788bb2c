"""`Frame`: the pixels of one picture plus the timing it was captured with.

The timestamp travels unchanged from source to sink, so the output keeps the input's timing
(variable frame rate included) and no stage has to invent one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One video frame.

    `rgb` is H×W×3 uint8 RGB, or None when the pixels travel as `yuv` planes instead (8-bit
    4:2:0 files and streams going to an encoder: converted on the device, never by swscale on
    the CPU). `pts` counts `time_base` units. `captured_at` is the
    `time.monotonic()` reading when the frame left the decoder or camera, which the pipeline uses
    for capture→output latency. `original` keeps the unstyled pixels for side-by-side preview.
    """

    rgb: np.ndarray | None
    pts: int
    time_base: Fraction
    index: int
    captured_at: float
    original: np.ndarray | None = None
    yuv: Yuv420 | None = None

    @property
    def seconds(self) -> float:
        return float(self.pts * self.time_base)

    @property
    def width(self) -> int:
        return int((self.rgb if self.rgb is not None else self.yuv.y).shape[1])

    @property
    def height(self) -> int:
        return int((self.rgb if self.rgb is not None else self.yuv.y).shape[0])

    def with_pixels(self, rgb: np.ndarray, keep_original: bool = False) -> Frame:
        """Same timing, new pixels; optionally remember the pixels being replaced."""
        return dataclasses.replace(self, rgb=rgb, yuv=None,
                                   original=self.rgb if keep_original else None)

    def mirrored(self) -> Frame:
        """Flipped left-right, in whichever form the pixels are in."""
        if self.yuv is None:
            return self.with_pixels(np.ascontiguousarray(self.rgb[:, ::-1]))
        p = self.yuv
        return self.with_yuv(Yuv420(*(np.ascontiguousarray(a[:, ::-1]) for a in (p.y, p.u, p.v)),
                                    p.colorimetry))

    def with_yuv(self, yuv: Yuv420) -> Frame:
        """Same timing, new pixels as 4:2:0 planes (for an encoder)."""
        return dataclasses.replace(self, rgb=None, yuv=yuv, original=None)


@dataclass(frozen=True)
class Colorimetry:
    """How YUV code values map to RGB: matrix `bt601`/`bt709` and limited or full range.

    `colorspace`, `primaries` and `trc` are the stream's own AVColor* codes (0 or 2 when
    unknown), copied to the output so players see the same tags as on the input.
    """

    matrix: str = "bt601"
    full_range: bool = False
    colorspace: int = 2
    primaries: int = 2
    trc: int = 2


@dataclass(frozen=True)
class FrameFormat:
    """The pixels a sink accepts, stated once by the sink: RGB (`yuv420` None) or 8-bit planar
    4:2:0 in the sink's colorimetry, which the pipeline converts to on the device."""

    yuv420: Colorimetry | None = None


RGB = FrameFormat()


@dataclass(frozen=True)
class Yuv420:
    """8-bit 4:2:0 planes: Y is H×W, U and V are ⌈H/2⌉×⌈W/2⌉, with their colorimetry."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    colorimetry: Colorimetry


@dataclass(frozen=True)
class VideoInfo:
    """What a source knows before the first frame: size, nominal rate, timing, orientation.

    `rate` is nominal (sinks use it as an encoder hint); the frames' own `pts` are authoritative.
    `rotation` is the display-matrix rotation in degrees counter-clockwise, as PyAV reports it.
    `frames` is the declared frame count, 0 when unknown (live sources, some containers).
    """

    width: int
    height: int
    rate: Fraction
    time_base: Fraction
    rotation: int = 0
    frames: int = 0
    has_audio: bool = False
    description: str = ""
    colorimetry: Colorimetry | None = None
