"""The run objects every app uses: `VideoRun` for files, `LiveRun` for cameras and streams.

A run owns everything between the user's options and the frames: the device, the style (one
engine per style, loaded on first use), the smoother, the source and sink it opens, the
pipeline, and the report. The CLI, the web server and a batch runner all drive the same three
steps, so there is one data path:

    with VideoRun(source, target, settings) as run:   # opens the input, checks the output
        run.warm_up()                                  # builds the engine (may take a while)
        report = run.run(on_frame=...)                 # writes, finalizes, reports

The order is chosen so that bad input fails before anything slow or anything written: inputs
are opened and outputs checked on entry (a missing camera, no display for a window, no
virtual camera driver), the model is built next, and the output file is created last, under a
temporary name until it is complete. Whoever opens an object closes it: the run closes what it
opened on exit, on every path, Ctrl-C and SIGTERM included.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import torch

from ..devices import resolve_device
from ..errors import UserInputError
from ..geometry import target_size
from ..images import IMAGE_SUFFIXES
from ..models.color import check_color_mode
from ..models.style_scale import ScaledStylizer, parse_style_scale, with_style_scale
from .controls import EngineStyle, StyleCycler, ViewState
from .finishing import make_finish
from .frames import VideoInfo
from .pipeline import Pipeline, PipelineStats
from .sinks import (
    FileSink,
    FrameSink,
    PreviewSink,
    StreamSink,
    VirtualCameraSink,
    check_output,
    is_stream_url,
)
from .smoothing import DEFAULT_STRENGTH, make_smoother
from .sources import FileSource, FrameSource, open_source

log = logging.getLogger(__name__)

StatusCallback = Callable[[str], None]
FrameCallback = Callable[[PipelineStats], None]


@dataclass(frozen=True)
class Geometry:
    """Frame size to process and write: the input's, unless asked otherwise."""

    size: tuple[int, int] | None = None
    scale: float | None = None
    max_side: int | None = None

    def frame_size(self, info: VideoInfo) -> tuple[int, int]:
        """Even sides: 4:2:0 video (what every player expects) stores colour per 2×2 block,
        so 853×480 becomes 852×480."""
        return target_size(info.width, info.height, size=self.size, scale=self.scale,
                           max_side=self.max_side, even=True)


@dataclass(frozen=True)
class Span:
    """A part of a file, in seconds: frames in [start, end) are written (None: the file's own
    start or end). Frames from `warm_from` up to `start` are stylized first and not written, so
    the temporal smoother enters the part as a run over the whole file would; a batch runs long
    files as parts side by side and joins them (`rtstyle.batch`), audio added once, there."""

    start: Fraction | None = None
    end: Fraction | None = None
    warm_from: Fraction | None = None


@dataclass(frozen=True)
class StyleSettings:
    """What to paint with and how; the same for every kind of run.

    `styles` holds one name or file for a file run; a live run may cycle through several.
    `strength` has one meaning everywhere (`rtstyle.models.stylizer.blend_strength`).
    `smooth` 0 turns temporal smoothing off. `preserve_color` ("luminance" or "histogram";
    `rtstyle.models.color`) keeps the input's colours, applied with strength in `StyleCycler`.
    `photoreal` makes each frame a locally affine recolouring of its input (radius in pixels,
    eps; `rtstyle.models.photoreal`); with it, a photo or painting as a style is matched by
    its colour statistics. `mask` (an image, white = stylize, feathered inward over
    `mask_feather` px) or `segment` ("person" or "background") limits where the style goes
    (`rtstyle.realtime.finishing`). `style_scale` (a factor in (0, 4] or "auto") runs the
    generator on the frame scaled by it and brings the result back by guided upsampling, so
    strokes keep their trained size (`rtstyle.models.style_scale`); 1 is off, None (the
    default) is each style's recommendation for moving pictures (1 unless its file says
    otherwise: `rtstyle.models.loading.video_style_scale`). `mix` (one
    weight per style) paints all `styles` as one mixed style (`load_style_mix`: blended
    instance norms when they share a multi-style net, mixed statistics for paintings through
    AdaIN, blended outputs otherwise) instead of cycling through them.
    """

    styles: tuple[str, ...]
    style_image: Path | None = None
    strength: float = 1.0
    device: str = "auto"
    backend: str = "auto"
    precision: str = "auto"
    smooth: float = DEFAULT_STRENGTH
    smooth_blend: str = "auto"
    photoreal: bool = False
    photoreal_radius: int | None = None
    photoreal_eps: float | None = None
    mask: Path | None = None
    mask_feather: float = 0.0
    segment: str | None = None
    preserve_color: str | None = None
    style_scale: float | str | None = None
    mix: tuple[float, ...] | None = None

    @property
    def style_names(self) -> list[str]:
        """What the run cycles through: each style, or the one mix of them all."""
        if self.mix is None:
            return list(self.styles)
        return ["+".join(f"{name}*{w:g}" for name, w in zip(self.styles, self.mix, strict=True))]


@dataclass
class RunReport:
    """What a run did, for a summary table, `--json`, a web job or a batch log."""

    kind: str                      # "video" | "live"
    input: str
    input_description: str
    output: str
    output_description: str
    size: tuple[int, int]
    style: str
    device: str
    backend: str | None
    smooth: float
    smooth_blend: str | None
    warmup_s: float
    wall_s: float
    first_frame_s: float | None
    stats: PipelineStats
    warning: str | None = None
    finishing: str | None = None
    style_scale: str | None = None

    def to_dict(self) -> dict:
        return {"input": self.input, "output": self.output, "size": list(self.size),
                "style": self.style, "device": self.device, "backend": self.backend,
                "smooth": self.smooth, "smooth_blend": self.smooth_blend,
                "warmup_s": round(self.warmup_s, 3), "wall_s": round(self.wall_s, 3),
                **self.stats.as_dict(),
                "first_frame_s": None if self.first_frame_s is None
                else round(self.first_frame_s, 3),
                "warning": self.warning, "finishing": self.finishing,
                "style_scale": self.style_scale}


def _multistyle_spec(name: str):
    """The spec of `name` when it is one style of a multi-style file, else None (paintings,
    single-style nets, and names that do not resolve: `load_stylizer` reports those)."""
    from ..models.loading import split_style_argument

    try:
        spec, painting = split_style_argument(name)
    except UserInputError:
        return None
    return spec if painting is None and spec.style_index is not None else None


class StyledRun:
    """What file and live runs share: device, style engines, warm-up, smoother, report."""

    kind = "run"

    def __init__(self, settings: StyleSettings, *, on_status: StatusCallback | None = None):
        if not settings.styles:
            raise UserInputError("no style given")
        if settings.mix is not None:
            from ..models.mixing import mix_weights

            settings = replace(settings, mix=tuple(mix_weights(settings.mix,
                                                               len(settings.styles))))
        self.settings = settings
        self.on_status = on_status
        check_color_mode(settings.preserve_color)
        if settings.style_scale is not None:
            parse_style_scale(settings.style_scale)
        self.device = resolve_device(settings.device)
        self.started_at = time.monotonic()
        self.process: StyleCycler | None = None
        self.smoother = None
        self.pipeline: Pipeline | None = None
        self.source: FrameSource | None = None
        self.size: tuple[int, int] = (0, 0)
        self.backend_label: str | None = None
        self.warmup_s = 0.0
        self.finish = None

    def _load_styles(self, expected_frames: int | None) -> None:
        """Load the first style now (a bad name or file fails here, before any warm-up); the
        others load when first selected. `expected_frames` lets `auto` weigh a build."""
        from ..models.loading import load_stylizer, video_style_scale
        from .engine import InferenceEngine

        s = self.settings
        # The finishing steps first: a missing mask or segmentation model fails before a style.
        self.finish = make_finish(photoreal=s.photoreal, radius=s.photoreal_radius,
                                  eps=s.photoreal_eps, mask=s.mask, mask_feather=s.mask_feather,
                                  segment=s.segment, device=self.device)

        shared: list[tuple] = []  # (spec, engine) of multi-style files loaded so far

        def load(name: str):
            if s.photoreal and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                from ..models.photoreal import load_reference_style

                return load_reference_style(name, device=self.device)
            scale = video_style_scale([name], s.style_image, s.style_scale)
            spec = _multistyle_spec(name)
            if spec is not None:
                # Styles of one multi-style file share its engine: switching sets the style
                # vector (a graph input), it never reloads or recompiles.
                engine = next((e for other, e in shared if spec.shares_network_with(other)),
                              None)
                if engine is None:
                    engine = InferenceEngine(load_stylizer(spec, device=self.device),
                                             self.device, backend=s.backend,
                                             precision=s.precision, on_status=self.on_status,
                                             expected_frames=expected_frames)
                    shared.append((spec, engine))
                return with_style_scale(EngineStyle(engine, spec.style_index,
                                                    name=spec.full_name), scale)
            stylizer = load_stylizer(name, device=self.device, style_image=s.style_image)
            engine = InferenceEngine(stylizer, self.device, backend=s.backend,
                                     precision=s.precision, on_status=self.on_status,
                                     expected_frames=expected_frames)
            # The engine sees (and builds for) the scaled frame; strength, colour and
            # smoothing stay at full size.
            return with_style_scale(engine, scale, stylizer.train_size)

        def load_mix(_name: str):
            from ..models.loading import load_style_mix

            stylizer = load_style_mix(list(s.styles), list(s.mix), device=self.device,
                                      style_image=s.style_image)
            engine = InferenceEngine(stylizer, self.device, backend=s.backend,
                                     precision=s.precision, on_status=self.on_status,
                                     expected_frames=expected_frames)
            scale = video_style_scale(s.styles, s.style_image, s.style_scale)
            return with_style_scale(engine, scale, getattr(stylizer, "train_size", None))

        self.process = StyleCycler(s.style_names, load if s.mix is None else load_mix,
                                   strength=s.strength,
                                   preserve_color=s.preserve_color)
        self.smoother = make_smoother(
            s.smooth, blend=s.smooth_blend,
            steady=lambda: bool(self.process is not None and self.process.steady_generator))

    def warm_up(self) -> str | None:
        """Build the engine for the frame size now, so a compile happens while the user is told,
        not silently inside the first frame. Returns "backend/precision (skipped: why)".

        The build is checked against FP32 eager on a fixed noise frame (real content comes later).
        """
        engine = self.process.engine
        start = time.monotonic()
        if hasattr(engine, "warmup"):
            width, height = self.size
            noise = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
            with torch.inference_mode():
                engine.warmup(noise.to(self.device))
            skipped = "; ".join(f"{k} skipped: {v}" for k, v in engine.skipped.items())
            self.backend_label = engine.active.label + (f" ({skipped})" if skipped else "")
            log.info("backend: %s", self.backend_label)
        self.warmup_s = time.monotonic() - start
        return self.backend_label

    def _style_scale_label(self) -> str | None:
        """"0.5 (generator at 640×360)" for the current style; None when off."""
        engine = self.process.engine if self.process is not None else None
        if not isinstance(engine, ScaledStylizer) or not all(self.size):
            return None
        width, height = self.size
        return engine.describe(height, width)

    def _describe_io(self) -> tuple[str, str, str, str]:
        raise NotImplementedError

    def report(self) -> RunReport:
        """The report so far; also after an interruption (the counters of what was written)."""
        stats = self.pipeline.stats if self.pipeline is not None else PipelineStats()
        first = None if stats.first_written_at is None else stats.first_written_at - self.started_at
        source_in, in_desc, out, out_desc = self._describe_io()
        return RunReport(
            kind=self.kind, input=source_in, input_description=in_desc, output=out,
            output_description=out_desc, size=self.size,
            style=", ".join(self.settings.style_names)
            if self.process is None or self.kind == "live"
            else self.process.name,
            device=str(self.device), backend=self.backend_label,
            smooth=self.smoother.strength if self.smoother is not None else 0.0,
            smooth_blend=self.smoother.active_blend if self.smoother is not None else None,
            warmup_s=self.warmup_s, wall_s=time.monotonic() - self.started_at,
            first_frame_s=first, stats=stats,
            finishing=self.finish.describe() if self.finish is not None else None,
            style_scale=self._style_scale_label(),
            warning=self.source.problems() if self.source is not None else None)


class VideoRun(StyledRun):
    """A file (or image sequence, URL, lavfi graph) into a video file: every frame, its timing
    and the audio. Ctrl-C or SIGTERM still leaves a finalized, playable file.

    With a `span`, only that part of a file, without audio (see `Span`).
    """

    kind = "video"

    def __init__(self, source: str | Path, target: str | Path, settings: StyleSettings, *,
                 geometry: Geometry = Geometry(), codec: str | None = None,
                 crf: int | None = None, preset: str | None = None, overwrite: bool = False,
                 max_frames: int | None = None, on_status: StatusCallback | None = None,
                 span: Span | None = None):
        super().__init__(settings, on_status=on_status)
        self.source_spec = str(source)
        self.span = span
        self.target = Path(target).expanduser()
        self.geometry = geometry
        self.codec, self.crf, self.preset = codec, crf, preset
        self.overwrite = overwrite
        self.max_frames = max_frames

    @property
    def total_frames(self) -> int | None:
        """Frames this run will write, when the container says (for progress and `auto`)."""
        declared = self.source.info.frames if self.source is not None and not self.span else 0
        if self.max_frames is not None:
            return min(self.max_frames, declared) if declared else self.max_frames
        return declared or None

    def __enter__(self) -> VideoRun:
        self.source = FileSource(self.source_spec)
        try:
            if Path(self.source_spec).expanduser().resolve() == self.target.resolve():
                raise UserInputError("the output would overwrite the input; choose another name")
            check_output(self.target, self.overwrite)
            self.size = self.geometry.frame_size(self.source.info)
            self.source.set_output_size(*self.size)
            if self.span is not None:
                warm_from = self.span.warm_from
                self.source.set_span(self.span.start if warm_from is None else warm_from,
                                     self.span.end)
            self._load_styles(expected_frames=self.total_frames)
        except BaseException:
            self.source.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.source.close()

    def run(self, on_frame: FrameCallback | None = None) -> RunReport:
        source = self.source
        with FileSink(self.target, source.info, width=self.size[0], height=self.size[1],
                      codec=self.codec, crf=self.crf, preset=self.preset,
                      audio_from=None if self.span else source.path,
                      overwrite=self.overwrite, exact_timestamps=self.span is not None) as sink:
            self.pipeline = Pipeline(source, self.process, sink, device=self.device,
                                     smoother=self.smoother, max_frames=self.max_frames,
                                     on_frame=on_frame,
                                     write_from=self.span.start if self.span else None,
                                     finish=self.finish)
            self.pipeline.run()
        report = self.report()
        if report.warning:
            log.info("%s: %s", self.source_spec, report.warning)
        return report

    def _describe_io(self) -> tuple[str, str, str, str]:
        return (self.source_spec, self.source.info.description if self.source else "",
                str(self.target), f"{self.target} ({self.size[0]}x{self.size[1]})")


class LiveRun(StyledRun):
    """A camera, stream, file or lavfi graph, paced in real time, to a window, a virtual camera,
    a network stream or a file. Stale frames are dropped (and counted), never queued.

    `camera` and `output` are specs the run opens (and closes), or objects an app opened
    itself (a web server's browser frames): those the app closes, as it opened them.
    """

    kind = "live"

    def __init__(self, camera: str | FrameSource, output: str | FrameSink,
                 settings: StyleSettings, *,
                 geometry: Geometry = Geometry(), fps: float | None = None,
                 mirror: bool = False, reconnect: bool = False,
                 vcam_backend: str | None = None, overwrite: bool = False,
                 max_frames: int | None = None, duration: float | None = None,
                 on_status: StatusCallback | None = None):
        super().__init__(settings, on_status=on_status)
        self.camera = camera
        self.output = output
        self.geometry = geometry
        self.fps = fps
        self.mirror = mirror
        self.reconnect = reconnect
        self.vcam_backend = vcam_backend
        self.overwrite = overwrite
        self.max_frames = max_frames
        self.duration = duration
        self.sink: FrameSink | None = None

    def __enter__(self) -> LiveRun:
        if isinstance(self.camera, str):
            self.source = open_source(self.camera, live=True, reconnect=self.reconnect,
                                      capture_size=self.geometry.size, capture_fps=self.fps)
        else:
            self.source = self.camera
        try:
            self.size = self.geometry.frame_size(self.source.info)
            self.source.set_output_size(*self.size)
            self.sink = self._open_sink() if isinstance(self.output, str) else self.output
            try:
                self._load_styles(expected_frames=None)
            except BaseException:
                self._close_own_sink()
                raise
        except BaseException:
            self._close_own_source()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._close_own_sink()
        finally:
            self._close_own_source()

    def _close_own_sink(self) -> None:
        if isinstance(self.output, str) and self.sink is not None:
            self.sink.close()

    def _close_own_source(self) -> None:
        if isinstance(self.camera, str):
            self.source.close()

    def _on_view_change(self, state: ViewState) -> None:
        """Keys in the preview window switch style or strength between frames."""
        if self.process is not None:
            self.process.apply(state)

    def _open_sink(self) -> FrameSink:
        """`window`, `vcam`, a stream URL (udp://, srt://, tcp://, rtmp://) or a file name;
        checked here, before the warm-up, so a missing display or driver fails at once."""
        info, (width, height), output = self.source.info, self.size, self.output
        if output == "window":
            state = ViewState(style_count=len(self.settings.style_names),
                              strength=self.settings.strength,
                              preserve_color=self.settings.preserve_color)
            return PreviewSink(state, on_change=self._on_view_change)
        if output == "vcam":
            fps = float(info.rate) if info.rate else 30.0
            return VirtualCameraSink(width, height, fps, backend=self.vcam_backend)
        if is_stream_url(output):
            return StreamSink(output, info, width=width, height=height)
        if "://" in output:
            raise UserInputError(f"unsupported output URL {output}; use udp://, srt://, tcp:// "
                                 "or rtmp://, or window, vcam, or a file name")
        target = Path(output).expanduser()
        check_output(target, self.overwrite)
        return FileSink(target, info, width=width, height=height, preset="veryfast",
                        overwrite=self.overwrite)

    def run(self, on_frame: FrameCallback | None = None) -> RunReport:
        self.pipeline = Pipeline(self.source, self.process, self.sink, device=self.device,
                                 live=True, smoother=self.smoother, mirror=self.mirror,
                                 max_frames=self.max_frames, max_seconds=self.duration,
                                 on_frame=on_frame, finish=self.finish)
        self.pipeline.run()
        return self.report()

    def _describe_io(self) -> tuple[str, str, str, str]:
        sink = self.sink.describe() if self.sink is not None else str(self.output)
        camera = self.camera if isinstance(self.camera, str) else self.camera.spec
        return (camera, self.source.info.description if self.source else "",
                sink, f"{sink} ({self.size[0]}x{self.size[1]})")

