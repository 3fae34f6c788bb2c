"""The last per-frame steps, on the device: the photoreal transform, then the mask.

    network → strength (`StyleCycler`) → temporal smoothing → FrameFinish → sink

They run *after* smoothing, on purpose:

- The photoreal step makes the output a locally affine transform of the *current* input
  frame. After smoothing, the smoothed stylized frame is only its target, so whatever the
  smoother carries from earlier frames (a warped stroke, a ghost where the flow was wrong)
  can change colours but never put a past frame's edges into this one. Before smoothing, the
  smoother would blend warped past outputs back in and undo that guarantee.
- The mask keeps the input outside the region. After smoothing, "outside" means the input
  itself; before smoothing, the smoother would blend in earlier outputs there.

Smoothing still sees the full stylized frame, so its flow and trust work as without a mask.
"""

from __future__ import annotations

import torch

from ..models.photoreal import LocalAffineTransform, PhotorealSettings
from .masks import FileMask, PersonMask, composite


class FrameFinish:
    """`finish(stylized, source) -> frame`; `reset()` at the start of a run (the person mask
    has a history)."""

    def __init__(self, photoreal: LocalAffineTransform | None = None,
                 mask: FileMask | PersonMask | None = None):
        self.photoreal = photoreal
        self.mask = mask

    def __call__(self, stylized: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        y = stylized
        if self.photoreal is not None:
            y = self.photoreal(y, source)
        if self.mask is not None:
            y = composite(source, y, self.mask(source))
        return y

    def reset(self) -> None:
        if self.mask is not None:
            self.mask.reset()

    def describe(self) -> str | None:
        """"photoreal r=8 eps=0.01, mask FILE" for a report; None when there is nothing."""
        parts = []
        if self.photoreal is not None:
            s = self.photoreal.settings
            parts.append(f"photoreal r={s.radius} eps={s.eps:g}")
        if isinstance(self.mask, FileMask):
            parts.append(f"mask {self.mask.path.name}")
        elif isinstance(self.mask, PersonMask):
            parts.append(f"segment {self.mask.target}")
        return ", ".join(parts) or None


def make_finish(*, photoreal: bool = False, radius: int | None = None, eps: float | None = None,
                mask=None, mask_feather: float = 0.0, segment: str | None = None,
                device: torch.device) -> FrameFinish | None:
    """The finishing steps for a run's options, or None when there are none. Everything that
    can fail (a missing mask file, no segmentation model) fails here, on entry."""
    from ..errors import UserInputError

    if mask is not None and segment is not None:
        raise UserInputError("--mask and --segment both choose where the style goes; "
                             "give one of them")
    step = None
    if photoreal:
        defaults = PhotorealSettings()
        step = LocalAffineTransform(PhotorealSettings(
            radius=defaults.radius if radius is None else radius,
            eps=defaults.eps if eps is None else eps))
    alpha = None
    if mask is not None:
        alpha = FileMask(mask, feather=mask_feather)
    elif segment is not None:
        alpha = PersonMask(segment, device=device, feather=mask_feather)
    if step is None and alpha is None:
        return None
    return FrameFinish(step, alpha)
