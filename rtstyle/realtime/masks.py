"""Spatial control: where the style goes. A mask is 1 where the frame is stylized and 0 where
the input is kept, N×1×H×W on the frame's device.

- `FileMask` (`--mask FILE`): a still image, the same for every frame (white = stylize). The
  edge is feathered *inward* over `--mask-feather` pixels (a distance ramp inside the region),
  so every pixel outside the region is the input, untouched.
- `PersonMask` (`--segment person|background`): MediaPipe's selfie-segmentation network
  (`rtstyle.models.segmentation`) on each frame, smoothed over time so the edge does not
  shimmer: an exponential moving average of the probabilities at the model's size, then a
  smoothstep around 0.5 that keeps the edge soft but stops a pixel hovering at 0.5 from
  flickering between styled and not.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserInputError
from ..images import read_image

log = logging.getLogger(__name__)

SEGMENT_TARGETS = ("person", "background")
DEFAULT_MASK_MEMORY = 0.6


def feathered_alpha(mask01: np.ndarray, feather: float) -> np.ndarray:
    """H×W float mask in 0..1 -> alpha: with `feather` > 0, the region (mask ≥ 0.5) ramps up
    from 0 at its edge to 1 at `feather` pixels inside; outside stays exactly 0."""
    if feather < 0:
        raise UserInputError(f"--mask-feather must be >= 0, got {feather}")
    if feather == 0:
        return mask01.astype(np.float32)
    inside = (mask01 >= 0.5).astype(np.uint8)
    distance = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    ramp = np.clip(distance / float(feather), 0.0, 1.0)
    return (ramp * mask01).astype(np.float32)


def read_mask(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """A mask image (grey or colour: its luma) resized to (W, H), as H×W float 0..1."""
    rgb = read_image(path)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    h, w = grey.shape
    if abs(w / h - size[0] / size[1]) > 0.02:
        log.warning("mask %s is %dx%d, the frames %dx%d: stretched to fit", path, w, h, *size)
    if (w, h) != tuple(size):
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA
                          if w > size[0] else cv2.INTER_LINEAR)
    return grey.astype(np.float32) / 255.0


class FileMask:
    """`--mask FILE`: the same alpha for every frame, made once per frame size."""

    def __init__(self, path: str | Path, feather: float = 0.0):
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise UserInputError(f"mask not found: {self.path}")
        if feather < 0:
            raise UserInputError(f"--mask-feather must be >= 0, got {feather}")
        self.feather = feather
        read_image(self.path)  # unreadable files fail here, before any warm-up
        self._alpha: torch.Tensor | None = None

    def alpha(self, width: int, height: int, device: torch.device) -> torch.Tensor:
        a = self._alpha
        if a is None or a.shape[-2:] != (height, width) or a.device != device:
            mask = feathered_alpha(read_mask(self.path, (width, height)), self.feather)
            a = self._alpha = torch.from_numpy(mask)[None, None].to(device)
        return a

    def __call__(self, source: torch.Tensor) -> torch.Tensor:
        return self.alpha(source.shape[-1], source.shape[-2], source.device)

    def reset(self) -> None:
        """A still mask has no history."""


def smoothstep(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    t = ((x - low) / (high - low)).clamp(0.0, 1.0)
    return t * t * (3 - 2 * t)


class PersonMask:
    """`--segment person|background`: a person mask per frame, steady over time.

    `memory` is the weight of the previous mask in the moving average (0: none). The average
    runs at the model's small size, so the full-resolution work is one bilinear upsampling.
    """

    def __init__(self, target: str = "person", *, device: torch.device,
                 memory: float = DEFAULT_MASK_MEMORY, kind: str | None = None,
                 feather: float = 0.0):
        from ..models.segmentation import PersonSegmenter

        if target not in SEGMENT_TARGETS:
            raise UserInputError(f"unknown --segment '{target}'; choose from: "
                                 f"{', '.join(SEGMENT_TARGETS)}")
        if not 0.0 <= memory < 1.0:
            raise UserInputError(f"mask memory must be in [0, 1), got {memory}")
        self.target = target
        self.memory = memory
        self.kind = kind
        self.device = device
        self.feather = feather
        self._segmenters: dict[str, PersonSegmenter] = {}
        self._make = PersonSegmenter
        self._previous: torch.Tensor | None = None
        self.segmenter(kind or "landscape")  # a missing model fails here, on entry

    def segmenter(self, kind: str):
        if kind not in self._segmenters:
            self._segmenters[kind] = self._make(kind).to(self.device).eval()
        return self._segmenters[kind]

    def probability(self, source: torch.Tensor) -> torch.Tensor:
        """The smoothed person probability at the model's size (N×1×h×w)."""
        h, w = source.shape[-2:]
        kind = self.kind or self._make.kind_for(w, h)
        p = self.segmenter(kind)(source)
        prev = self._previous
        if prev is not None and prev.shape == p.shape and self.memory > 0:
            p = torch.lerp(p, prev, self.memory)
        self._previous = p
        return p

    def __call__(self, source: torch.Tensor) -> torch.Tensor:
        p = smoothstep(self.probability(source), 0.3, 0.7)
        if self.target == "background":
            p = 1.0 - p
        if self.feather > 0:
            k = 2 * int(round(self.feather * p.shape[-1] / source.shape[-1])) + 1
            if k > 1:
                p = F.avg_pool2d(p, k, stride=1, padding=k // 2, count_include_pad=False)
        return F.interpolate(p, size=source.shape[-2:], mode="bilinear",
                             align_corners=False).to(source.dtype)

    def reset(self) -> None:
        self._previous = None


def composite(source: torch.Tensor, stylized: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The stylized frame where `alpha` is 1, the input where it is 0 (exactly: a lerp with
    weight 0 returns the input unchanged)."""
    return torch.lerp(source.to(stylized.dtype), stylized, alpha.to(stylized.dtype))
