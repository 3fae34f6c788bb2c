"""Putting a source, a model and a sink together for `rtstyle video` and `rtstyle webcam`.

The order of steps is chosen so that bad input fails before anything is written: the input is
opened and the output name checked first, the model is loaded next, and only then is the
output file created (under a temporary name until it is complete).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserInputError
from ..geometry import target_size
from .frames import VideoInfo
from .pipeline import Pipeline, PipelineStats, Process
from .sinks import (
    FileSink,
    PreviewSink,
    StreamSink,
    VirtualCameraSink,
    check_output,
    is_stream_url,
)
from .sources import FileSource, open_source

log = logging.getLogger(__name__)


def load_engine(style: str, device: torch.device, *, backend: str = "auto",
                precision: str = "auto", style_image: Path | None = None,
                on_status: Callable[[str], None] | None = None) -> Process:
    """A style name or file -> a callable taking and returning 1×3×H×W RGB 0..1 tensors.

    `on_status` receives the engine's warm-up and fallback messages (the CLI prints them).
    """
    from ..models.loading import load_stylizer
    from .engine import InferenceEngine

    stylizer = load_stylizer(style, device=device, style_image=style_image)
    return InferenceEngine(stylizer, device, backend=backend, precision=precision,
                           on_status=on_status)


def warm_up(engine, width: int, height: int, device: torch.device) -> str | None:
    """Build the engine for `width`×`height` before the first frame, so a compile (up to a
    minute on CPU) happens while the user is told, not silently inside the first frame.

    The build is checked against FP32 eager on a fixed noise frame (real content arrives later).
    Returns "backend/precision (skipped: why)" for engines that say, else None.
    """
    if not hasattr(engine, "warmup"):
        return None
    noise = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        engine.warmup(noise.to(device))
    skipped = "; ".join(f"{k} skipped: {v}" for k, v in engine.skipped.items())
    return engine.active.label + (f" ({skipped})" if skipped else "")


def output_geometry(info: VideoInfo, *, size: tuple[int, int] | None = None,
                    scale: float | None = None, max_side: int | None = None) -> tuple[int, int]:
    """Frame size to process and write: the input's, unless asked otherwise, with even sides.

    4:2:0 video (what every player expects) stores colour per 2×2 block, so an odd side is
    rounded down to even; 853×480 becomes 852×480.
    """
    return target_size(info.width, info.height, size=size, scale=scale, max_side=max_side,
                       even=True)


@dataclass
class VideoJob:
    """An opened input and a checked output name, ready for `run` once a model is loaded."""

    source: FileSource
    target: Path
    width: int
    height: int
    overwrite: bool = False
    pipeline: Pipeline | None = None

    def run(self, process: Process, device: torch.device, *, codec: str | None = None,
            crf: int | None = None, preset: str | None = None, smoother=None,
            on_frame: Callable[[PipelineStats], None] | None = None,
            max_frames: int | None = None) -> PipelineStats:
        """Stylize every frame into the target; Ctrl-C still leaves a finalized file."""
        try:
            sink = FileSink(self.target, self.source.info, width=self.width, height=self.height,
                            codec=codec, crf=crf, preset=preset, audio_from=self.source.path,
                            overwrite=self.overwrite)
        except BaseException:
            self.source.close()
            raise
        self.source.emit_yuv = sink.takes_yuv
        self.pipeline = Pipeline(self.source, process, sink, device=device, smoother=smoother,
                                 max_frames=max_frames, on_frame=on_frame)
        stats = self.pipeline.run()
        problems = self.source.problems()
        if problems:
            log.info("%s: %s", self.source.spec, problems)
        return stats

    @property
    def stats(self) -> PipelineStats | None:
        """Counters of the last run, also after it was interrupted."""
        return self.pipeline.stats if self.pipeline is not None else None

    @property
    def total_frames(self) -> int | None:
        return self.source.info.frames or None


def open_video_job(source: str | Path, target: str | Path, *, size=None, scale=None,
                   max_side=None, overwrite: bool = False) -> VideoJob:
    target = Path(target).expanduser()
    src = FileSource(str(source))
    try:
        if Path(str(source)).expanduser().resolve() == target.resolve():
            raise UserInputError("the output would overwrite the input; choose another name")
        check_output(target, overwrite)
        width, height = output_geometry(src.info, size=size, scale=scale, max_side=max_side)
    except BaseException:
        src.close()
        raise
    src.set_output_size(width, height)
    return VideoJob(src, target, width, height, overwrite)


def open_live_source(spec: str, *, size=None, scale=None, max_side=None,
                     fps: float | None = None, reconnect: bool = False):
    """A camera, file, URL or lavfi graph in live mode, resized to the requested geometry."""
    source = open_source(spec, live=True, reconnect=reconnect, capture_size=size, capture_fps=fps)
    width, height = output_geometry(source.info, size=size, scale=scale, max_side=max_side)
    source.set_output_size(width, height)
    return source, (width, height)


def open_live_sink(output: str, info: VideoInfo, width: int, height: int, *,
                   overwrite: bool = False, view_state=None, on_view_change=None,
                   vcam_backend: str | None = None):
    """`window`, `vcam`, a stream URL (udp://, srt://, tcp://, rtmp://) or a file name."""
    fps = float(info.rate) if info.rate else 30.0
    if output == "window":
        from .controls import ViewState

        return PreviewSink(view_state or ViewState(), on_change=on_view_change)
    if output == "vcam":
        return VirtualCameraSink(width, height, fps, backend=vcam_backend)
    if is_stream_url(output):
        return StreamSink(output, info, width=width, height=height)
    if "://" in output:
        raise UserInputError(f"unsupported output URL {output}; use udp://, srt://, tcp:// or "
                             "rtmp://, or window, vcam, or a file name")
    target = Path(output).expanduser()
    check_output(target, overwrite)
    return FileSink(target, info, width=width, height=height, preset="veryfast",
                    overwrite=overwrite)


def live_pipeline(source, process: Process, sink, device: torch.device, *, smoother=None,
                  mirror: bool = False, max_frames: int | None = None,
                  max_seconds: float | None = None,
                  on_frame: Callable[[PipelineStats], None] | None = None) -> Pipeline:
    """Latest-frame pipeline: stale frames are dropped (and counted) instead of queued."""
    if isinstance(source, FileSource):
        source.emit_yuv = getattr(sink, "takes_yuv", False)
    return Pipeline(source, process, sink, device=device, live=True, smoother=smoother,
                    mirror=mirror, max_frames=max_frames, max_seconds=max_seconds,
                    on_frame=on_frame)
