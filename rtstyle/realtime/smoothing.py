"""Run-time temporal smoothing: carry the previous output along the motion and blend it in.

Per-frame stylization flickers because a feed-forward generator answers small input changes
(noise, compression, sub-pixel motion) with different brush strokes. Smoothing here is a
recursive filter along motion trajectories: the previous *output* is warped onto the current
frame with optical flow of the *inputs*, and blended with the new stylized frame where the warp
can be trusted. The full-resolution work (one bilinear upsampling of a small sampling grid, one
warp, one blend) runs on the stylizer's device; the analysis runs on small frames:

* flow at reduced resolution (`flow_scale`), because smoothing must cost a small fraction of a
  frame: on GPUs by pyramidal Lucas–Kanade in torch (`rtstyle.flow`), for CPU tensors
  by OpenCV's DIS with the small-image work in numpy. Measured on a loaded 2-core CPU, the
  torch estimator's few dozen small ops took 57 ms with one thread and seconds with two
  (threads waiting on busy cores), while one DIS call on the same 256×144 frame took 2–15 ms;
* trust from the photometric error of the warped previous *input* against the current input,
  so occluded, disoccluded or mis-tracked pixels take the fresh stylized value (no ghosts);
* scene-cut detection from colour histograms and the fraction of trusted pixels, which resets
  the filter so nothing of the previous shot survives a cut.

The filter is recursive, so the warp resamples the same texture every frame and any softening
compounds: with the bilinear warp, carrying the history at full weight over 36 frames of a Big
Buck Bunny pan left 0.33 of the per-frame output's mean |Laplacian|. `resample="bicubic"`
loses less per step but costs about twice as much at full resolution (README "Temporal
stability" has both measured).

Smoothers are small callables (`smoother(stylized, source) -> stylized`) with `reset()`, so the
pipeline does not care which one it holds. None of them is random.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserInputError
from ..flow import DIS_PRESETS, inside_mask, lucas_kanade_flow, sampling_grid, to_gray
from ..models.guided import resize

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_STRENGTH", "NoSmoothing", "TemporalSmoother", "make_smoother",
           "resolve_blend"]

DEFAULT_STRENGTH = 0.7
BLENDS = ("auto", "frame", "lowpass")


def resolve_blend(blend: str, steady: bool) -> str:
    """"auto" -> "lowpass" for a generator trained for stability, else "frame"."""
    if blend != "auto":
        return blend
    return "lowpass" if steady else "frame"


class NoSmoothing:
    """Per-frame output, unchanged: the baseline and the `--no-smooth` choice."""

    strength = 0.0
    active_blend = None

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


class _DeviceTracker:
    """Lucas–Kanade flow and photometric trust in torch, on the frames' device."""

    def __init__(self, lk: dict, sigma: float, bins: int):
        self.lk, self.sigma, self.bins = lk, sigma, bins

    def observe(self, small: torch.Tensor):
        return small, _histogram(small, self.bins)

    def track(self, small: torch.Tensor, prev: torch.Tensor, strength: float):
        """(1×3×h×w: normalised sampling grid x, y and strength·trust; fraction trusted)."""
        flow = lucas_kanade_flow(to_gray(small), to_gray(prev), **self.lk)
        grid = sampling_grid(flow)
        warped = F.grid_sample(prev, grid, mode="bilinear", padding_mode="border",
                               align_corners=True)
        error = (warped - small).abs().mean(dim=1, keepdim=True)
        trust = inside_mask(grid) * torch.exp(-(error / self.sigma) ** 2)
        low = torch.cat((grid.permute(0, 3, 1, 2), strength * trust), dim=1)
        return low, (trust > 0.5).float().mean().item()


class _HostTracker:
    """DIS flow and photometric trust with OpenCV/numpy on the host.

    The small-image work is a few dozen tiny ops; torch would split each across its CPU
    threads, which costs more than the op itself, and far more when the cores are busy.
    """

    def __init__(self, preset: str, sigma: float, bins: int):
        self.dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
        self.sigma, self.bins = sigma, bins

    def observe(self, small: torch.Tensor):
        rgb = small[0].permute(1, 2, 0).float().cpu().numpy().clip(0, 1)
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        idx = np.rint(rgb * (self.bins - 1)).astype(np.int64).reshape(-1, 3)
        idx += np.arange(3) * self.bins
        hist = np.bincount(idx.ravel(), minlength=3 * self.bins) / idx.shape[0]
        return (rgb, np.rint(gray * 255).astype(np.uint8)), hist

    def track(self, small, prev, strength: float):
        (rgb, gray), (prev_rgb, prev_gray) = small, prev
        h, w = gray.shape
        flow = self.dis.calc(gray, prev_gray, None)
        xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        map_x, map_y = xs + flow[..., 0], ys + flow[..., 1]
        warped = cv2.remap(prev_rgb, map_x, map_y, cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        error = np.abs(warped - rgb).mean(axis=-1)
        inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
        trust = inside * np.exp(-(error / self.sigma) ** 2)
        low = np.stack((map_x * (2.0 / max(w - 1, 1)) - 1, map_y * (2.0 / max(h - 1, 1)) - 1,
                        strength * trust)).astype(np.float32)
        return torch.from_numpy(low).unsqueeze(0), float((trust > 0.5).mean())


class TemporalSmoother:
    """Flow-guided recursive blending of stylized frames (see the module docstring).

    strength     0..1, the weight of the warped previous output where it is fully trusted;
                 the output is `stylized + strength·trust·(warped_previous - stylized)`.
    flow_scale   flow is estimated at this fraction of the frame size (min side `min_flow_side`).
    resample     how the previous output is warped: "bilinear" (default) or "bicubic" (blurs
                 less as the recursion resamples the texture frame after frame; slower).
    flow_method  "auto" (DIS for CPU tensors, Lucas–Kanade on other devices), "dis" or "lk".
    photometric_sigma  input colour error (0..1 units) at which trust falls to 1/e.
    cut_histogram      histogram distance (0..1, half the L1 distance) above which a scene
                       cut is declared; `cut_trusted_fraction`: a cut is also declared when
                       fewer pixels than this can be tracked.
    blend        "frame" (default): blend whole frames, the steadiest, but brush texture that
                 differs from frame to frame is averaged away (style loss grows). "lowpass":
                 only the low frequencies (below the flow resolution) follow the history; they
                 are warped and blended at flow resolution, so the full-resolution cost is one
                 downscale, one upscale and one add, and the texture stays each frame's own.
                 Meant for generators trained with `--temporal-weight`, whose texture is
                 steady already; see README "Temporal stability". "auto": "lowpass" while
                 `steady()` says the current generator was trained that way, else "frame"
                 (the history is dropped when the choice changes, e.g. on a style switch).
    steady       for "auto": a callable, usually the process's `steady_generator`.
    detail_window      0: blend whole frames (steadiest, but flickering brush texture is
                       averaged away). k > 0: blend only the k×k local mean of the difference,
                       so texture stays per-frame; keeps the style (Gram loss) at the cost of
                       less flicker removed. See README "Temporal stability" for measurements.
    """

    def __init__(self, strength: float = DEFAULT_STRENGTH, flow_scale: float = 0.2, *,
                 resample: str = "bilinear", flow_method: str = "auto", dis_preset: str = "medium",
                 min_flow_side: int = 48, lk_levels: int = 4, lk_iterations: int = 2,
                 lk_window: int = 9, photometric_sigma: float = 0.06,
                 cut_histogram: float = 0.35, cut_trusted_fraction: float = 0.3,
                 histogram_bins: int = 16, detail_window: int = 0, blend: str = "frame",
                 steady: Callable[[], bool] | None = None):
        if not 0.0 <= strength <= 1.0:
            raise UserInputError(f"smoothing strength must be in 0..1, got {strength}")
        if not 0.0 < flow_scale <= 1.0:
            raise UserInputError(f"flow_scale must be in (0, 1], got {flow_scale}")
        if resample not in ("bicubic", "bilinear"):
            raise UserInputError(f"resample must be bicubic or bilinear, got {resample!r}")
        if flow_method not in ("auto", "dis", "lk"):
            raise UserInputError(f"flow_method must be auto, dis or lk, got {flow_method!r}")
        if dis_preset not in DIS_PRESETS:
            raise UserInputError(f"dis_preset must be one of {', '.join(DIS_PRESETS)}")
        self.strength = strength
        self.flow_scale = flow_scale
        self.flow_method = flow_method
        self.min_flow_side = min_flow_side
        self.cut_histogram = cut_histogram
        self.cut_trusted_fraction = cut_trusted_fraction
        self.detail_window = detail_window
        self.resample = resample
        if blend not in BLENDS:
            raise UserInputError(f"blend must be one of {', '.join(BLENDS)}, got {blend!r}")
        self.blend = blend
        self._steady = steady or (lambda: False)
        self._blend_in_use: str | None = None
        lk = {"levels": lk_levels, "iterations": lk_iterations, "window": lk_window}
        self._trackers = {"lk": _DeviceTracker(lk, photometric_sigma, histogram_bins),
                          "dis": _HostTracker(dis_preset, photometric_sigma, histogram_bins)}
        self.cuts = 0
        self.reset()

    @property
    def active_blend(self) -> str:
        """The blend the next frame gets ("auto" resolved against the current generator)."""
        return resolve_blend(self.blend, self.blend == "auto" and self._steady())

    def reset(self) -> None:
        """Forget the previous frame (new stream, seek, or scene cut)."""
        self._prev_output: torch.Tensor | None = None
        self._prev_state = None
        self._prev_hist = None

    def _flow_size(self, h: int, w: int) -> tuple[int, int]:
        scale = min(max(self.flow_scale, self.min_flow_side / min(h, w)), 1.0)
        return max(1, round(h * scale)), max(1, round(w * scale))

    def _tracker(self, device: torch.device):
        if self.flow_method == "auto":
            return self._trackers["dis" if device.type == "cpu" else "lk"]
        return self._trackers[self.flow_method]

    def _restart(self, current: torch.Tensor, state, hist) -> None:
        # A copy: `current` may be the engine's reusable output buffer (CUDA graphs, TensorRT).
        self._prev_output, self._prev_state, self._prev_hist = current.clone(), state, hist

    @torch.no_grad()
    def __call__(self, stylized: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """Blend `stylized` (1×3×H×W, 0..1) with the motion-compensated previous output.

        `source` is the input frame the stylized one came from (1×3×h×w, 0..1, any size; it is
        only used, downscaled, for flow, trust and cut detection). The returned tensor is kept
        as the next frame's reference: read it, do not modify it in place.
        """
        blend = self.active_blend
        if blend != self._blend_in_use:  # the two blends keep different histories
            self.reset()
            self._blend_in_use = blend
        out_dtype = stylized.dtype
        current = stylized.float()
        h, w = current.shape[-2:]
        small = resize(source.float(), self._flow_size(h, w), "area")
        tracker = self._tracker(current.device)
        state, hist = tracker.observe(small)
        # The history this blend keeps: lowpass warps and blends at flow resolution, so full
        # resolution sees one area downscale, one bilinear upscale and one add.
        reference = resize(current, tuple(small.shape[-2:]), "area") if blend == "lowpass" else current
        prev = self._prev_output
        if (self.strength == 0.0 or prev is None or prev.shape != reference.shape
                or type(self._prev_hist) is not type(hist)):
            self._restart(reference, state, hist)
            return stylized
        if 0.5 * float(abs(hist - self._prev_hist).sum()) > self.cut_histogram:
            return self._cut(reference, state, hist, stylized, "histogram")
        low, tracked = tracker.track(state, self._prev_state, self.strength)
        if tracked < self.cut_trusted_fraction:
            return self._cut(reference, state, hist, stylized, "untrackable")
        low = low.to(current.device)
        if blend == "lowpass":
            warped_small = F.grid_sample(prev, low[:, :2].permute(0, 2, 3, 1), mode="bilinear",
                                         padding_mode="border", align_corners=True)
            delta = low[:, 2:] * (warped_small - reference)
            self._prev_output = reference + delta
            self._prev_state, self._prev_hist = state, hist
            up = resize(delta, (h, w), "bilinear")
            return (current + up).clamp_(0, 1).to(out_dtype)

        # Upsampling the normalised grid is exact for its identity part and bilinear for the
        # flow, so the full-resolution work is one interpolation, one warp and one lerp.
        full = F.interpolate(low, size=(h, w), mode="bilinear",
                             align_corners=True)
        warped_prev = F.grid_sample(prev, full[:, :2].permute(0, 2, 3, 1), mode=self.resample,
                                    padding_mode="border", align_corners=True)
        if self.resample == "bicubic":  # its kernel overshoots at edges
            warped_prev = warped_prev.clamp(0, 1)
        if self.detail_window:
            # Only the local mean follows the history; fine detail stays this frame's own.
            k = self.detail_window
            delta = full[:, 2:] * (warped_prev - current)
            output = current + F.avg_pool2d(F.pad(delta, (k // 2,) * 4, mode="replicate"), k, 1)
        else:
            output = torch.lerp(current, warped_prev, full[:, 2:])
        self._prev_output, self._prev_state, self._prev_hist = output, state, hist
        return output.to(out_dtype)

    def _cut(self, current, state, hist, stylized, reason: str) -> torch.Tensor:
        self.cuts += 1
        log.debug("scene cut (%s): smoothing reset", reason)
        self._restart(current, state, hist)
        return stylized


def make_smoother(strength: float | None, **kwargs) -> TemporalSmoother | NoSmoothing:
    """`NoSmoothing` for None/0, else a `TemporalSmoother` (what `--smooth`/`--no-smooth` map to)."""
    if not strength:
        return NoSmoothing()
    return TemporalSmoother(strength=strength, **kwargs)
