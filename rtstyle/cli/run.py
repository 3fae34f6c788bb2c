"""`rtstyle video` and `rtstyle webcam`: parse options, drive a run object, render its report.

The wiring (source, style, engine, smoother, sink, pipeline) lives in
`rtstyle.realtime.runs`; the web server and batch runner use the same objects.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, TextColumn
from rich.table import Table

from ..errors import UserInputError
from .common import (
    DEFAULT_BLEND,
    DEFAULT_SMOOTH,
    BackendOption,
    BlendOption,
    DeviceOption,
    FpsColumn,
    GeometryHelp,
    JsonOption,
    MaskFeatherOption,
    MaskOption,
    MixOption,
    NoSmoothOption,
    PhotorealEpsOption,
    PhotorealOption,
    PhotorealRadiusOption,
    PrecisionOption,
    PreserveColorOption,
    SegmentOption,
    SmoothOption,
    StrengthOption,
    StyleImageOption,
    VideoStyleScaleOption,
    check_style,
    complete_style,
    err,
    out,
    progress_bar,
    user_errors,
)


def _status_printer(as_json: bool):
    """Engine warm-up/fallback messages on stderr; with --json they only go to the log."""
    return None if as_json else (lambda message: err.print(message, highlight=False))


def _check_styles(values: list[str]) -> list[str]:
    return [check_style(v) for v in values]


def _smoothing_label(report, requested: str) -> str:
    """"0.7 (lowpass blend)", "0.7 (auto: lowpass blend)" or "off"."""
    if not report.smooth:
        return "off"
    auto = "auto: " if requested == "auto" else ""
    return f"{report.smooth:g} ({auto}{report.smooth_blend} blend)"


def _summary(title: str, report, smooth_blend: str) -> Table:
    """The end-of-run table; live-only rows (drops, latency) only for live runs."""
    info = report.stats.as_dict()
    live = report.kind == "live"
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    rows = [("camera" if live else "input", f"{report.input} ({report.input_description})"),
            ("output", report.output_description),
            ("style", f"{report.style} on {report.device}"),
            ("backend", report.backend or "eager"),
            ("smoothing", _smoothing_label(report, smooth_blend)),
            ("frames in / out", f"{info['frames_read']} / {info['frames_written']}")]
    if live:
        rows.append(("dropped (stale)", str(info["frames_dropped"])))
    rows.append(("speed", f"{info['fps']:.1f} fps over {info['seconds']:.1f} s"))
    if live and info["latency_ms_p50"] is not None:
        rows.append(("latency p50 / p99",
                     f"{info['latency_ms_p50']:.0f} / {info['latency_ms_p99']:.0f} ms"))
    if report.style_scale:
        rows.append(("style scale", report.style_scale))
    if report.finishing:
        rows.append(("finishing", report.finishing))
    rows.append(("warm-up", f"{report.warmup_s:.1f} s"))
    first = "-" if report.first_frame_s is None else f"{report.first_frame_s:.1f} s"
    rows.append(("wall time", f"{report.wall_s:.1f} s (first frame at {first})"))
    for key, value in rows:
        table.add_row(key, value)
    return table


def _warm_up(run, as_json: bool) -> None:
    """Build the engine under a spinner; the engine's own lines say what is being built."""
    if as_json:
        run.warm_up()
        return
    with err.status("warming up the style engine…", spinner="dots"):
        label = run.warm_up()
    if label is not None:
        err.print(f"backend: {label}", highlight=False)


def _style_settings(options: dict):
    """The `StyleSettings` of `video` and `webcam` from their parsed options (`locals()`): the
    fields they share by name, plus the few that need converting, in one place."""
    import dataclasses

    from ..models.loading import default_strength
    from ..models.mixing import parse_mix
    from ..models.style_scale import parse_style_scale
    from ..realtime.runs import StyleSettings

    weights = parse_mix(options["mix"])
    color = options["preserve_color"]
    converted = {
        "styles": tuple(options["style"]),
        "mix": None if weights is None else tuple(weights),
        "smooth": 0.0 if options["no_smooth"] else options["smooth"],
        "preserve_color": color.value if color is not None else None,
        "style_scale": None if options["style_scale"] is None
        else parse_style_scale(options["style_scale"]),
        "strength": default_strength(options["style"], options["style_image"],
                                     options["strength"]),
    }
    shared = {f.name: options[f.name] for f in dataclasses.fields(StyleSettings)
              if f.name in options and f.name not in converted}
    return StyleSettings(**shared, **converted)


def video(
    source: Annotated[str, typer.Argument(
        help="Input video, image sequence (frames/%04d.png), URL or lavfi:GRAPH.")],
    target: Annotated[Path, typer.Argument(help="Output video (.mp4, .mkv, .mov, .webm).")],
    *,
    style: Annotated[list[str], typer.Option(
        "--style", "-s", help="Style name (see `rtstyle styles`), an rtstyle .safetensors "
                              "file, or a painting; repeat it with --mix to mix styles.",
        autocompletion=complete_style, callback=_check_styles)],
    mix: MixOption = None,
    style_image: StyleImageOption = None,
    strength: StrengthOption = None,
    size: Annotated[str | None, typer.Option(help=GeometryHelp)] = None,
    scale: Annotated[float | None, typer.Option(help="Scale factor, e.g. 0.5.")] = None,
    max_side: Annotated[int | None, typer.Option(help="Longest side at most this.")] = None,
    codec: Annotated[str | None, typer.Option(
        help="Video encoder (default libx264; e.g. libx265, libvpx-vp9, mpeg4).")] = None,
    crf: Annotated[int | None, typer.Option(help="Quality for x264/x265 (lower = better).")] = None,
    preset: Annotated[str | None,
                      typer.Option(help="x264/x265 speed preset (default veryfast).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the output.")] = False,
    device: DeviceOption = "auto",
    backend: BackendOption = "auto",
    precision: PrecisionOption = "auto",
    max_frames: Annotated[int | None, typer.Option(
        min=1, help="Stop after this many frames (for a quick look).")] = None,
    smooth: SmoothOption = DEFAULT_SMOOTH,
    no_smooth: NoSmoothOption = False,
    smooth_blend: BlendOption = DEFAULT_BLEND,
    preserve_color: PreserveColorOption = None,
    photoreal: PhotorealOption = False,
    photoreal_radius: PhotorealRadiusOption = None,
    photoreal_eps: PhotorealEpsOption = None,
    mask: MaskOption = None,
    mask_feather: MaskFeatherOption = 0.0,
    segment: SegmentOption = None,
    style_scale: VideoStyleScaleOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stylize a video file, keeping every frame, the timing and the audio."""
    from ..geometry import parse_size
    from ..realtime.runs import Geometry, VideoRun

    with user_errors():
        if len(style) > 1 and mix is None:
            raise UserInputError("a video is painted in one style: give one --style, or "
                                 "several with --mix (e.g. --mix 0.5,0.5)")
        settings = _style_settings(locals())
        run = VideoRun(source, target, settings,
                       geometry=Geometry(parse_size(size), scale, max_side), codec=codec,
                       crf=crf, preset=preset, overwrite=overwrite, max_frames=max_frames,
                       on_status=_status_printer(as_json))
        with run:
            _warm_up(run, as_json)
            progress = progress_bar(quiet=as_json)
            task = progress.add_task("stylizing", total=run.total_frames)
            try:
                with progress:
                    report = run.run(
                        on_frame=lambda s: progress.update(task, completed=s.written))
            except KeyboardInterrupt:
                partial = run.report()
                if not as_json:
                    err.print(_summary("rtstyle video (interrupted)", partial, smooth_blend))
                if partial.stats.written:
                    err.print(f"output finalized: {run.target}", highlight=False)
                raise
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
        return
    err.print(_summary("rtstyle video", report, smooth_blend))
    if report.warning:
        err.print(f"[yellow]warning:[/] {source}: {report.warning}; every readable frame was "
                  "written", highlight=False)


def webcam(
    *,
    style: Annotated[list[str], typer.Option(
        "--style", "-s", help="Style name or file; repeat it to switch styles with n/p keys "
                              "(or to mix them, with --mix).",
        autocompletion=complete_style, callback=_check_styles)],
    mix: MixOption = None,
    camera: Annotated[str, typer.Option(
        help="Camera index (0; see `rtstyle cameras`), /dev/videoN, a video file, a URL or "
             "lavfi:GRAPH.")] = "0",
    output: Annotated[str, typer.Option(
        "--output", "-o", help="window, vcam (virtual camera), udp://HOST:PORT (also srt://, "
                               "tcp://, rtmp://) or a file name.")] = "window",
    style_image: StyleImageOption = None,
    strength: StrengthOption = None,
    size: Annotated[str | None, typer.Option(help="Capture/process size WxH (640x360).")] = None,
    scale: Annotated[float | None, typer.Option(help="Scale factor, e.g. 0.5.")] = None,
    max_side: Annotated[int | None, typer.Option(help="Longest side at most this.")] = None,
    fps: Annotated[float | None, typer.Option(help="Camera frame rate to ask for.")] = None,
    mirror: Annotated[bool, typer.Option("--mirror", help="Flip left-right.")] = False,
    reconnect: Annotated[bool, typer.Option(
        "--reconnect", help="Wait for a camera or stream that drops out, instead of ending.")
    ] = False,
    vcam_backend: Annotated[str | None, typer.Option(
        help="pyvirtualcam backend for --output vcam (obs, unitycapture, v4l2loopback); "
             "default: the first that works.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a file output.")] = False,
    device: DeviceOption = "auto",
    backend: BackendOption = "auto",
    precision: PrecisionOption = "auto",
    max_frames: Annotated[int | None, typer.Option(min=1, help="Stop after N frames.")] = None,
    duration: Annotated[float | None, typer.Option(min=0.0, help="Stop after N seconds.")] = None,
    smooth: SmoothOption = DEFAULT_SMOOTH,
    no_smooth: NoSmoothOption = False,
    smooth_blend: BlendOption = DEFAULT_BLEND,
    preserve_color: PreserveColorOption = None,
    photoreal: PhotorealOption = False,
    photoreal_radius: PhotorealRadiusOption = None,
    photoreal_eps: PhotorealEpsOption = None,
    mask: MaskOption = None,
    mask_feather: MaskFeatherOption = 0.0,
    segment: SegmentOption = None,
    style_scale: VideoStyleScaleOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stylize a camera live, to a window, a virtual camera, a network stream or a file."""
    from ..geometry import parse_size
    from ..realtime.controls import KEY_HELP
    from ..realtime.runs import Geometry, LiveRun

    with user_errors():
        settings = _style_settings(locals())
        run = LiveRun(camera, output, settings,
                      geometry=Geometry(parse_size(size), scale, max_side), fps=fps,
                      mirror=mirror, reconnect=reconnect, vcam_backend=vcam_backend,
                      overwrite=overwrite, max_frames=max_frames, duration=duration,
                      on_status=_status_printer(as_json))
        with run:
            _warm_up(run, as_json)
            if output == "window" and not as_json:
                err.print(f"keys: {KEY_HELP}", highlight=False)
            progress = Progress(TextColumn("[bold]live"), TextColumn("{task.completed} frames"),
                                FpsColumn(), TextColumn("{task.fields[status]}"), console=err,
                                disable=as_json)
            task = progress.add_task("live", total=None, status="")

            def show(stats) -> None:
                progress.update(task, completed=stats.written)
                if stats.written % 15 == 0:
                    p50, p99 = stats.latency_ms(50, last=150), stats.latency_ms(99, last=150)
                    progress.update(task, status=f"latency p50 {p50:.0f} ms p99 {p99:.0f} ms  "
                                                 f"dropped {stats.dropped}")

            try:
                with progress:
                    report = run.run(on_frame=show)
            except KeyboardInterrupt:
                if not as_json:
                    err.print(_summary("rtstyle webcam (stopped)", run.report(), smooth_blend))
                raise
    if as_json:
        out.print_json(json.dumps({"camera": camera, **report.to_dict()}))
        return
    err.print(_summary("rtstyle webcam", report, smooth_blend))
    if report.warning:
        err.print(f"[yellow]warning:[/] {report.warning}", highlight=False)
