"""Warping error: how much a stylized video flickers, after motion is accounted for.

The metric of Lai et al. 2018 ("Learning Blind Video Temporal Consistency"), also used by
ReCoNet: for each consecutive pair (t, t+1), compute optical flow between the *input* frames
(the output's own flow would reward blurry, flow-free outputs), find the pixels of frame t that
stay visible in t+1 (forward–backward check, or given occlusion masks), warp output t+1 onto
frame t, and take the mean squared difference over those pixels, RGB in [0, 1], averaged over
channels. The video's score is the mean over pairs.

The same flow and masks applied to the raw input give the floor: what a perfectly stable
stylization that still follows the input's lighting changes would score. A per-frame baseline
(the same style without smoothing) gives the ceiling that smoothing must beat.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from ..errors import MediaError, UserInputError
from ..flow import consistency_mask, dis_flow, read_flo, read_mask, warp
from ..images import IMAGE_SUFFIXES, read_image

log = logging.getLogger(__name__)

NamedFrame = tuple[str, np.ndarray]


@dataclass(frozen=True)
class FlowPair:
    """Flow from frame t to t+1 on t's grid (H×W×2) and where it can be trusted (bool H×W)."""

    flow: np.ndarray
    valid: np.ndarray


@dataclass
class TemporalReport:
    """Mean warping errors of one evaluation; per-pair values are kept for plots."""

    pairs: int
    flow: str
    output: float
    input: float
    baseline: float | None = None
    valid_fraction: float = 0.0
    per_pair: dict[str, list[float]] = field(default_factory=dict)

    @property
    def ratio_to_baseline(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.output / self.baseline

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ratio_to_baseline"] = self.ratio_to_baseline
        return d


def iter_frames(path: str | Path, max_frames: int | None = None) -> Iterator[NamedFrame]:
    """Frames of a video file or of a folder of images (sorted by name) as (name, RGB uint8)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise MediaError(f"no images in folder {path}")
        for p in files[:max_frames]:
            yield p.stem, read_image(p)
        return
    if not path.is_file():
        raise MediaError(f"not found: {path}")
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path.name}: no video stream")
            stream = container.streams.video[0]
            for index, frame in enumerate(container.decode(stream)):
                if max_frames is not None and index >= max_frames:
                    return
                yield f"{index:06d}", frame.to_ndarray(format="rgb24")
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path.name}: cannot decode video ({exc})") from None


def estimate_flow_pair(frame_a: np.ndarray, frame_b: np.ndarray,
                       preset: str = "medium") -> FlowPair:
    """DIS flow a -> b with occlusions from the forward–backward check."""
    forward = dis_flow(frame_a, frame_b, preset)
    backward = dis_flow(frame_b, frame_a, preset)
    return FlowPair(forward, consistency_mask(forward, backward))


def read_flow_pair(flow_dir: Path, stem: str) -> FlowPair | None:
    """`STEM.flo` plus optional `STEM_occlusions.png` / `STEM_invalid.png` (white = excluded).

    This is the layout of the MPI-Sintel ground truth; None when there is no `STEM.flo`.
    """
    flo = flow_dir / f"{stem}.flo"
    if not flo.is_file():
        return None
    flow = read_flo(flo)
    h, w = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(w), np.arange(h))
    x, y = xs + flow[..., 0], ys + flow[..., 1]
    valid = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    for suffix in ("occlusions", "invalid"):
        mask_path = flow_dir / f"{stem}_{suffix}.png"
        if mask_path.is_file():
            excluded = read_mask(mask_path)
            if excluded.shape != valid.shape:
                raise MediaError(f"{mask_path.name}: mask is {excluded.shape[::-1]}, "
                                 f"flow is {w}x{h}")
            valid &= ~excluded
    return FlowPair(flow, valid)


def resize_flow_pair(pair: FlowPair, size: tuple[int, int]) -> FlowPair:
    """Resample flow (vectors rescaled) and mask (nearest) to (W, H)."""
    h0, w0 = pair.valid.shape
    w, h = size
    if (w, h) == (w0, h0):
        return pair
    flow = cv2.resize(pair.flow, (w, h), interpolation=cv2.INTER_LINEAR)
    flow *= np.array((w / w0, h / h0), np.float32)
    valid = cv2.resize(pair.valid.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    return FlowPair(flow, valid)


def _as_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).unsqueeze(0).float() / 255


def pair_warping_error(frame_t: np.ndarray, frame_next: np.ndarray, pair: FlowPair) -> float:
    """Mean over valid pixels and RGB channels of (frame_t - warp(frame_next))², in [0, 1]."""
    if frame_t.shape != frame_next.shape or frame_t.shape[:2] != pair.valid.shape:
        raise UserInputError(f"frame sizes differ: {frame_t.shape[:2]}, {frame_next.shape[:2]}, "
                             f"flow {pair.valid.shape}")
    flow = torch.from_numpy(np.ascontiguousarray(pair.flow)).permute(2, 0, 1).unsqueeze(0)
    warped, inside = warp(_as_tensor(frame_next), flow.float())
    valid = torch.from_numpy(pair.valid)[None, None].float() * inside
    count = valid.sum().item()
    if count == 0:
        return 0.0
    sq = (_as_tensor(frame_t) - warped).pow(2).mean(dim=1, keepdim=True)
    return float((sq * valid).sum().item() / count)


def _fit(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (rgb.shape[1], rgb.shape[0]) == size:
        return rgb
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def evaluate_temporal(inputs: Iterable[NamedFrame], outputs: Iterable[NamedFrame], *,
                      baseline: Iterable[NamedFrame] | None = None,
                      flow_dir: Path | None = None, preset: str = "medium") -> TemporalReport:
    """Warping error of `outputs` (and `baseline`), with flow from `inputs`, streamed pairwise.

    All sequences must have the same number of frames. Outputs may be smaller or larger than
    the inputs: the inputs (and ground-truth flow) are resampled to the output size. With
    `flow_dir`, only the pairs whose first frame has a `.flo` file there are scored.
    """
    streams = [iter(inputs), iter(outputs)] + ([iter(baseline)] if baseline is not None else [])
    sentinel = object()
    errors: dict[str, list[float]] = {"output": [], "input": []}
    if baseline is not None:
        errors["baseline"] = []
    valid_fractions: list[float] = []
    previous = None
    while True:
        items = [next(s, sentinel) for s in streams]
        if all(i is sentinel for i in items):
            break
        if any(i is sentinel for i in items):
            raise UserInputError("input, output (and baseline) have different frame counts")
        (name, rgb_in), (_, rgb_out) = items[0], items[1]
        size = (rgb_out.shape[1], rgb_out.shape[0])
        current = {"input": _fit(rgb_in, size), "output": rgb_out}
        if baseline is not None:
            current["baseline"] = items[2][1]
        if previous is not None and current["output"].shape != previous[1]["output"].shape:
            raise UserInputError("output frames change size mid-sequence")
        if previous is not None:
            prev_name, prev = previous
            if flow_dir is not None:
                pair = read_flow_pair(flow_dir, prev_name)
                pair = None if pair is None else resize_flow_pair(pair, size)
            else:
                pair = estimate_flow_pair(prev["input"], current["input"], preset)
            if pair is not None:
                valid_fractions.append(float(pair.valid.mean()))
                for key in errors:
                    errors[key].append(pair_warping_error(prev[key], current[key], pair))
        previous = (name, current)
    if not errors["output"]:
        where = f" with a .flo file in {flow_dir}" if flow_dir is not None else ""
        raise UserInputError(f"no consecutive frame pairs{where} to evaluate")
    means = {k: float(np.mean(v)) for k, v in errors.items()}
    log.info("warping error over %d pairs: %s", len(errors["output"]), means)
    return TemporalReport(
        pairs=len(errors["output"]),
        flow="ground truth" if flow_dir is not None else f"DIS {preset}",
        output=means["output"], input=means["input"], baseline=means.get("baseline"),
        valid_fraction=float(np.mean(valid_fractions)), per_pair=errors,
    )
