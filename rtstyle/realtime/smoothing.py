"""Run-time temporal smoothing: carry the previous output along the motion and blend it in.

Per-frame stylization flickers because a feed-forward generator answers small input changes
(noise, compression, sub-pixel motion) with different brush strokes. Smoothing here is a
recursive filter along motion trajectories: the previous *output* is warped onto the current
frame with optical flow of the *inputs*, and blended with the new stylized frame where the warp
can be trusted. Everything runs on the stylizer's device in plain torch:

* flow at reduced resolution (`flow_scale`), by pyramidal Lucas–Kanade on grayscale
  (`rtstyle.realtime.flow`), because smoothing must cost a small fraction of a frame;
* trust from the photometric error of the warped previous *input* against the current input,
  so occluded, disoccluded or mis-tracked pixels take the fresh stylized value (no ghosts);
* scene-cut detection from colour histograms and the fraction of trusted pixels, which resets
  the filter so nothing of the previous shot survives a cut.

Smoothers are small callables (`smoother(stylized, source) -> stylized`) with `reset()`, so the
pipeline does not care which one it holds. None of them is random.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from ..errors import UserInputError
from .flow import inside_mask, lucas_kanade_flow, sampling_grid, to_gray

log = logging.getLogger(__name__)

__all__ = ["NoSmoothing", "TemporalSmoother", "make_smoother"]


class NoSmoothing:
    """Per-frame output, unchanged: the baseline and the `--no-smooth` choice."""

    strength = 0.0

    def __call__(self, stylized: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        return stylized

    def reset(self) -> None:
        """Nothing to forget."""


def _histogram(small_rgb: torch.Tensor, bins: int) -> torch.Tensor:
    """Normalised per-channel histograms (3·bins) of a small RGB image."""
    idx = (small_rgb.clamp(0, 1) * (bins - 1)).round().long().flatten(2)[0]
    offsets = torch.arange(3, device=idx.device).view(3, 1) * bins
    counts = torch.bincount((idx + offsets).flatten(), minlength=3 * bins).float()
    return counts / idx.shape[1]


class TemporalSmoother:
    """Flow-guided recursive blending of stylized frames (see the module docstring).

    strength     0..1, the weight of the warped previous output where it is fully trusted;
                 the output is `stylized + strength·trust·(warped_previous - stylized)`.
    flow_scale   flow is estimated at this fraction of the frame size (min side `min_flow_side`).
    photometric_sigma  input colour error (0..1 units) at which trust falls to 1/e.
    cut_histogram      histogram distance (0..1, half the L1 distance) above which a scene
                       cut is declared; `cut_trusted_fraction`: a cut is also declared when
                       fewer pixels than this can be tracked.
    """

    def __init__(self, strength: float = 0.7, flow_scale: float = 0.25, *,
                 min_flow_side: int = 48, lk_levels: int = 4, lk_iterations: int = 3,
                 lk_window: int = 9, photometric_sigma: float = 0.06,
                 cut_histogram: float = 0.35, cut_trusted_fraction: float = 0.3,
                 histogram_bins: int = 16):
        if not 0.0 <= strength <= 1.0:
            raise UserInputError(f"smoothing strength must be in 0..1, got {strength}")
        if not 0.0 < flow_scale <= 1.0:
            raise UserInputError(f"flow_scale must be in (0, 1], got {flow_scale}")
        self.strength = strength
        self.flow_scale = flow_scale
        self.min_flow_side = min_flow_side
        self.lk = {"levels": lk_levels, "iterations": lk_iterations, "window": lk_window}
        self.photometric_sigma = photometric_sigma
        self.cut_histogram = cut_histogram
        self.cut_trusted_fraction = cut_trusted_fraction
        self.histogram_bins = histogram_bins
        self.cuts = 0
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame (new stream, seek, or scene cut)."""
        self._prev_output: torch.Tensor | None = None
        self._prev_small: torch.Tensor | None = None
        self._prev_hist: torch.Tensor | None = None

    def _flow_size(self, h: int, w: int) -> tuple[int, int]:
        scale = max(self.flow_scale, self.min_flow_side / min(h, w))
        scale = min(scale, 1.0)
        return max(1, round(h * scale)), max(1, round(w * scale))

    def _remember(self, output: torch.Tensor, small: torch.Tensor, hist: torch.Tensor) -> None:
        self._prev_output, self._prev_small, self._prev_hist = output, small, hist

    @torch.no_grad()
    def __call__(self, stylized: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """Blend `stylized` (1×3×H×W, 0..1) with the motion-compensated previous output.

        `source` is the input frame the stylized one came from (1×3×h×w, 0..1, any size; it is
        only used, downscaled, for flow, trust and cut detection).
        """
        out_dtype = stylized.dtype
        current = stylized.float()
        h, w = current.shape[-2:]
        small = F.interpolate(source.float(), size=self._flow_size(h, w), mode="area")
        hist = _histogram(small, self.histogram_bins)
        prev = self._prev_output
        if (self.strength == 0.0 or prev is None or prev.shape != current.shape
                or self._prev_small.shape != small.shape):
            self._remember(current, small, hist)
            return stylized
        if 0.5 * (hist - self._prev_hist).abs().sum().item() > self.cut_histogram:
            return self._cut(current, small, hist, stylized, "histogram")

        flow = lucas_kanade_flow(to_gray(small), to_gray(self._prev_small), **self.lk)
        grid = sampling_grid(flow)
        warped_small = F.grid_sample(self._prev_small, grid, mode="bilinear",
                                     padding_mode="border", align_corners=True)
        error = (warped_small - small).abs().mean(dim=1, keepdim=True)
        trust = inside_mask(grid) * torch.exp(-(error / self.photometric_sigma) ** 2)
        if (trust > 0.5).float().mean().item() < self.cut_trusted_fraction:
            return self._cut(current, small, hist, stylized, "untrackable")

        # Upsampling the normalised grid is exact for the identity part and bilinear for the
        # flow, so the full-resolution work is one interpolation, one warp and one lerp.
        full_grid = F.interpolate(grid.permute(0, 3, 1, 2), size=(h, w), mode="bilinear",
                                  align_corners=True).permute(0, 2, 3, 1)
        warped_prev = F.grid_sample(prev, full_grid, mode="bilinear", padding_mode="border",
                                    align_corners=True)
        weight = F.interpolate(self.strength * trust, size=(h, w), mode="bilinear",
                               align_corners=False)
        output = torch.lerp(current, warped_prev, weight)
        self._remember(output, small, hist)
        return output.to(out_dtype)

    def _cut(self, current, small, hist, stylized, reason: str) -> torch.Tensor:
        self.cuts += 1
        log.debug("scene cut (%s): smoothing reset", reason)
        self._remember(current, small, hist)
        return stylized


def make_smoother(strength: float | None, **kwargs) -> TemporalSmoother | NoSmoothing:
    """`NoSmoothing` for None/0, else a `TemporalSmoother` (what `--smooth`/`--no-smooth` map to)."""
    if not strength:
        return NoSmoothing()
    return TemporalSmoother(strength=strength, **kwargs)
