"""Output sizes from `--size WxH`, `--scale` and `--max-side`, keeping the aspect ratio."""

from __future__ import annotations

import re

from .errors import UserInputError

_SIZE = re.compile(r"^(-1|\d+)[xX:](-1|\d+)$")


def parse_size(text: str | None) -> tuple[int, int] | None:
    """`640x360` -> (640, 360); `640x-1` keeps the aspect from the width alone."""
    if text is None:
        return None
    match = _SIZE.match(text.strip())
    if not match:
        raise UserInputError(f"--size must look like 640x360 (or 640x-1), got '{text}'")
    w, h = int(match.group(1)), int(match.group(2))
    if (w <= 0 and h <= 0) or w == 0 or h == 0:
        raise UserInputError(f"--size needs a positive width or height, got '{text}'")
    return w, h


def target_size(width: int, height: int, *, size: tuple[int, int] | None = None,
                scale: float | None = None, max_side: int | None = None,
                even: bool = False) -> tuple[int, int]:
    """(W, H) to process at. With both sides in `size`, the frame fits inside that box."""
    if scale is not None and scale <= 0:
        raise UserInputError(f"--scale must be positive, got {scale}")
    if max_side is not None and max_side <= 0:
        raise UserInputError(f"--max-side must be positive, got {max_side}")
    factor = 1.0
    if size is not None:
        bw, bh = size
        factors = [bw / width if bw > 0 else None, bh / height if bh > 0 else None]
        factor = min(f for f in factors if f is not None)
    if scale is not None:
        factor *= scale
    if max_side is not None:
        factor = min(factor, max_side / max(width, height))
    w, h = max(1, round(width * factor)), max(1, round(height * factor))
    if even:  # 4:2:0 encoders need even sides
        w, h = max(2, w - w % 2), max(2, h - h % 2)
    return w, h
