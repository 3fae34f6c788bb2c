"""`--style-scale`: run the generator on a smaller frame, so strokes keep their trained size.

A feed-forward style net paints strokes of a fixed size in *pixels*: the size they had on the
training crops. On a 1280×720 frame they are therefore a third as large, relative to the
picture, as on a 360-line one, and the painting turns into fine noise. `--style-scale S` runs
the generator on the frame scaled by S and brings its output back to full size by edge-aware
(guided) upsampling, with the full-resolution input as the guide
(`rtstyle.models.guided.guided_upsample`): strokes come out 1/S times larger, edges stay as
sharp as the input's, and the generator's cost falls with S².

- `S = 1` (the default) is no step at all: the generator sees the frame as before.
- `S < 1`: area-downsample, generator, guided upsampling.
- `S > 1` (up to 4): the generator sees a larger frame (finer strokes); its output is
  area-downsampled back (no guide needed to make a picture smaller).
- `auto`: S such that the short side the generator sees is the style's training crop side
  (`Stylizer.train_size`, from the weights' metadata; 256 when they do not say), at most 1
  and at least `MIN_AUTO_SCALE`.
- `auto:N`: the same with N pixels for the short side instead of the training crop's: strokes
  train_size/N times their trained size at any frame size (a style file's recommendation for a
  style that flickers less with larger strokes).

`ScaledStylizer` wraps anything that maps RGB 0..1 N×3×H×W to the same (a `Stylizer`, an
`InferenceEngine`), so every backend gets it: the wrapped engine only ever sees the small
frame, and builds, caches and checks its programs for that size.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..errors import UserInputError
from .guided import downsample, guided_upsample

AUTO = "auto"
MAX_SCALE = 4.0
# `auto:N`: the short side N the generator sees, within these bounds.
AUTO_SIDE_RANGE = (16, 4096)
# `auto` goes no lower: below a quarter the guide has to invent too much between coarse
# pixels (He & Sun's fast guided filter subsamples by at most 4).
MIN_AUTO_SCALE = 0.25
# Johnson et al. trained on 256×256 crops, as do imported pytorch/examples styles.
DEFAULT_TRAIN_SIZE = 256
# Guided upsampling: a 3×3 window at the small size; eps in (0..1 RGB)², small, so the slopes
# follow every edge the small output follows.
RADIUS = 1
EPS = 1e-4

StyleScale = float | str


def parse_style_scale(value: StyleScale | None) -> StyleScale:
    """`--style-scale` as given (a number, its text, "auto" or "auto:N") -> a float in (0, 4],
    "auto" or "auto:N"; anything else is a `UserInputError` (one line, exit code 2)."""
    if value is None:
        return 1.0
    if isinstance(value, str):
        text = value.strip().lower()
        if text == AUTO:
            return AUTO
        if text.startswith(AUTO + ":"):
            return _parse_auto_side(value, text[len(AUTO) + 1:])
        try:
            number = float(text)
        except ValueError:
            number = math.nan
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
    if not (0.0 < number <= MAX_SCALE):  # also rejects nan and inf
        raise UserInputError(f"--style-scale must be in (0, {MAX_SCALE:g}] (e.g. 0.5), auto or "
                             f"auto:N, got {value}")
    return number


def _parse_auto_side(value: str, side: str) -> str:
    low, high = AUTO_SIDE_RANGE
    if not side.strip().isdigit() or not low <= int(side) <= high:
        raise UserInputError(f"--style-scale auto:N needs N, the short side the network sees, "
                             f"a whole number of pixels in [{low}, {high}], got {value}")
    return f"{AUTO}:{int(side)}"


def is_auto(scale: StyleScale) -> bool:
    """`auto` or `auto:N`: a factor that depends on the frame's size."""
    return isinstance(scale, str)


def train_size_of(module) -> int:
    """The training crop side of a stylizer (or of the first net of a mix), else 256."""
    for candidate in (module, getattr(module, "module", None),
                      *(getattr(module, "stylizers", None) or ())):
        size = getattr(candidate, "train_size", None)
        if size:
            return int(size)
    return DEFAULT_TRAIN_SIZE


def resolve_scale(scale: StyleScale, height: int, width: int,
                  train_size: int = DEFAULT_TRAIN_SIZE) -> float:
    """The factor for an `height`×`width` frame: `scale` itself, or for "auto" the one that
    brings the short side to `train_size` ("auto:N": to N), clamped to [MIN_AUTO_SCALE, 1]."""
    if not is_auto(scale):
        return float(scale)
    side = train_size if scale == AUTO else int(str(scale).split(":", 1)[1])
    return min(1.0, max(MIN_AUTO_SCALE, side / min(height, width)))


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """(h, w) of the frame the generator sees; (height, width) itself at scale 1."""
    return max(1, round(height * scale)), max(1, round(width * scale))


def describe(scale: StyleScale, height: int, width: int,
             train_size: int = DEFAULT_TRAIN_SIZE) -> str | None:
    """"0.5 (generator at 640×360)", "auto: 0.36 (…)", "auto:144: 0.4 (…)"; None when the
    step is off."""
    s = resolve_scale(scale, height, width, train_size)
    h, w = scaled_size(height, width, s)
    if (h, w) == (height, width):
        return None
    return f"{f'{scale}: ' if is_auto(scale) else ''}{s:.3g} (generator at {w}×{h})"


class ScaledStylizer:
    """`inner` (RGB 0..1 N×3×H×W -> same) run at `scale` of each frame's size, the result
    brought back to the frame's size (guided upsampling when smaller). Attributes it does not
    have (an engine's `active`, `skipped`, `steady_generator`, a stylizer's `name`) are the
    wrapped object's, so it stands wherever `inner` did."""

    def __init__(self, inner: Callable[[torch.Tensor], torch.Tensor], scale: StyleScale,
                 train_size: int | None = None, *, color: bool = False):
        self.inner = inner
        self.scale = parse_style_scale(scale)
        self.train_size = train_size or train_size_of(inner)
        self.color = color

    def __getattr__(self, name: str):
        # Only reached for attributes not set in __init__; `inner` itself is set first.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def size_for(self, height: int, width: int) -> tuple[int, int]:
        return scaled_size(height, width,
                           resolve_scale(self.scale, height, width, self.train_size))

    def describe(self, height: int, width: int) -> str | None:
        return describe(self.scale, height, width, self.train_size)

    def shrink(self, x: torch.Tensor) -> torch.Tensor:
        """The frame the generator sees."""
        h, w = x.shape[-2:]
        size = self.size_for(h, w)
        if size[0] <= h and size[1] <= w:
            return downsample(x, size)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    def warmup(self, x: torch.Tensor) -> None:
        """An engine's warm-up, at the size it will see."""
        self.inner.warmup(self.shrink(x))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if self.size_for(h, w) == (h, w):
            return self.inner(x)
        # The small frame in float32 for the fit (FP16/BF16 rounding of the guide would be
        # amplified by the slopes), in the frame's own dtype for the network.
        small = self.shrink(x.float())
        y = self.inner(small.to(x.dtype))
        if small.shape[-2] > h or small.shape[-1] > w:
            return downsample(y, (h, w))
        out = guided_upsample(x.to(y.dtype), small, y, RADIUS, EPS, color=self.color)
        return out.clamp_(0.0, 1.0)


def with_style_scale(inner, scale: StyleScale | None, train_size: int | None = None):
    """`inner` wrapped in a `ScaledStylizer`, or `inner` itself when the scale is 1."""
    scale = parse_style_scale(scale)
    if scale == 1.0:
        return inner
    return ScaledStylizer(inner, scale, train_size)
