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

    `rgb` is H×W×3 uint8 RGB. `pts` counts `time_base` units. `captured_at` is the
    `time.monotonic()` reading when the frame left the decoder or camera, which the pipeline uses
    for capture→output latency. `original` keeps the unstyled pixels for side-by-side preview.
    """

    rgb: np.ndarray
    pts: int
    time_base: Fraction
    index: int
    captured_at: float
    original: np.ndarray | None = None

    @property
    def seconds(self) -> float:
        return float(self.pts * self.time_base)

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    def with_pixels(self, rgb: np.ndarray, keep_original: bool = False) -> Frame:
        """Same timing, new pixels; optionally remember the pixels being replaced."""
        return dataclasses.replace(self, rgb=rgb, original=self.rgb if keep_original else None)


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
