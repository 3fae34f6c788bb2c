"""The `rtstyle` command: thin Typer verbs over library functions.

Errors from the library are `RtstyleError`s; each becomes one line on stderr and an exit code
(1 runtime, 2 bad input, 130 interrupted). `--json` prints one object on stdout, no progress.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from .errors import RtstyleError

app = typer.Typer(
    name="rtstyle",
    help="Real-time painting styles for webcam and video files, with OBS output.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
styles_app = typer.Typer(help="List installed styles, or import a checkpoint as a style.")
app.add_typer(styles_app, name="styles")

err = Console(stderr=True)
out = Console()
log = logging.getLogger("rtstyle")


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """One clear line instead of a traceback for every expected failure."""
    try:
        yield
    except RtstyleError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None


def complete_style(incomplete: str) -> list[str]:
    from .models.registry import style_names

    try:
        return [n for n in style_names() if n.startswith(incomplete)]
    except RtstyleError:
        return []


def check_style(value: str | None) -> str | None:
    """Reject an unknown name early, in Typer's own shape for bad choices."""
    from .images import IMAGE_SUFFIXES
    from .models.registry import discover, looks_like_path

    if value is None or looks_like_path(value) or Path(value).suffix.lower() in IMAGE_SUFFIXES:
        return value
    try:
        discover().get(value)
    except RtstyleError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


StyleOption = Annotated[
    str,
    typer.Option(
        "--style", "-s",
        help="Style name (see `rtstyle styles`), an rtstyle .safetensors file, "
             "or a painting image (arbitrary style, needs a SANet model).",
        autocompletion=complete_style,
        callback=check_style,
    ),
]
StyleImageOption = Annotated[
    Path | None,
    typer.Option("--style-image", help="Painting for an arbitrary-style (SANet) model."),
]
DeviceOption = Annotated[
    str, typer.Option("--device", "-d", help="auto, cpu, cuda, cuda:N or mps.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object; no progress.")]


class FpsColumn(ProgressColumn):
    """Items per second from rich's own speed estimate."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:5.1f} fps" if speed else "  ... fps", style="cyan")


def progress_bar(quiet: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        FpsColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=quiet,
        transient=False,
    )


# --------------------------------------------------------------------------- styles
@styles_app.callback(invoke_without_command=True)
def styles(ctx: typer.Context, *, as_json: JsonOption = False) -> None:
    """List the installed styles (bundled and user)."""
    if ctx.invoked_subcommand is not None:
        return
    from .models.registry import discover, user_styles_dir

    with user_errors():
        registry = discover()
    specs = registry.specs()
    if as_json:
        out.print_json(json.dumps({"styles": [{**s.summary(), "aliases": registry.aliases_for(s)}
                                              for s in specs],
                                   "user_dir": str(user_styles_dir()),
                                   "problems": registry.problems}))
        return
    for problem in registry.problems:
        err.print(f"[yellow]warning:[/] skipped {problem}", highlight=False)
    if not specs:
        out.print(
            "No styles are installed (none are bundled with this build).\n"
            f"  import one:  rtstyle styles import model.pth --name NAME --arch johnson\n"
            f"  train one:   rtstyle train johnson --style-image painting.jpg --data photos/ --name NAME\n"
            f"User styles live in {user_styles_dir()}",
            highlight=False,
        )
        return
    table = Table(title="rtstyle styles")
    for col in ("name", "also", "tag", "arch", "origin", "painting"):
        table.add_column(col)
    for s in specs:
        painting = s.summary()["painting"] or ("any (--style-image)" if s.needs_style_image else "")
        table.add_row(s.name, ", ".join(registry.aliases_for(s)), s.tag, s.arch, s.origin,
                      painting)
    out.print(table)


@styles_app.command("import")
def styles_import(
    checkpoint: Annotated[Path, typer.Argument(help="Foreign checkpoint (.pth/.pt/.safetensors).")],
    *,
    name: Annotated[str, typer.Option("--name", help="Name to register the style under.")],
    arch: Annotated[str, typer.Option("--arch", help="johnson, cyclegan or sanet.")] = "johnson",
    tag: Annotated[str, typer.Option("--tag", help="Version tag.")] = "v1",
    transformer: Annotated[
        Path | None, typer.Option("--transformer", help="SANet transformer.pth (with decoder.pth).")
    ] = None,
    vgg: Annotated[
        Path | None, typer.Option("--vgg", help="VGG-19 the SANet decoder was trained with.")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing style.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Convert a checkpoint (loaded with weights_only=True) into a user style."""
    from .models.loading import import_style

    with user_errors():
        spec = import_style(checkpoint, name=name, arch=arch, tag=tag, transformer=transformer,
                            vgg=vgg, overwrite=overwrite)
    if as_json:
        out.print_json(json.dumps(spec.summary()))
    else:
        out.print(f"imported [bold]{spec.full_name}[/] ({spec.arch}) -> {spec.weights}")


# --------------------------------------------------------------------------- image
@app.command()
def image(
    inputs: Annotated[list[Path], typer.Argument(help="Image files and/or folders of images.")],
    *,
    style: StyleOption,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Output file (one input) or folder. "
                                            "Default: beside each input as NAME_STYLE.ext."),
    ] = None,
    style_image: StyleImageOption = None,
    strength: Annotated[float, typer.Option(min=0.0, max=1.0, help="Style strength 0..1.")] = 1.0,
    device: DeviceOption = "auto",
    size: Annotated[str | None, typer.Option(help="Fit inside WxH (e.g. 1280x720, 640x-1).")] = None,
    scale: Annotated[float | None, typer.Option(help="Scale factor, e.g. 0.5.")] = None,
    max_side: Annotated[int | None, typer.Option(help="Longest side at most this.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Stylize one or more images, or every image in a folder."""
    from .devices import resolve_device
    from .geometry import parse_size
    from .models.loading import load_stylizer
    from .stills import plan_jobs, stylize_files

    with user_errors():
        dev = resolve_device(device)
        geometry = {"size": parse_size(size), "scale": scale, "max_side": max_side}
        stylizer = load_stylizer(style, device=dev, style_image=style_image, strength=strength)
        from .images import IMAGE_SUFFIXES

        painting = Path(style).suffix.lower() in IMAGE_SUFFIXES
        label = Path(style).stem if painting else stylizer.name.rsplit(".", 1)[0]
        jobs = plan_jobs(list(inputs), output, label, overwrite=overwrite)
        written = []
        with progress_bar(quiet=as_json or len(jobs) < 2) as progress:
            task = progress.add_task("stylizing", total=len(jobs))
            for job in stylize_files(stylizer, jobs, dev, **geometry):
                written.append(str(job.target))
                progress.advance(task)
    if as_json:
        out.print_json(json.dumps({"style": stylizer.name, "device": str(dev), "outputs": written}))
    else:
        for path in written:
            err.print(f"wrote {path}", highlight=False)


# --------------------------------------------------------------------------- video, webcam
GeometryHelp = "Fit inside WxH (e.g. 1280x720, 640x-1); default: the input's size."
BackendOption = Annotated[
    str, typer.Option("--backend", help="Inference backend: auto, eager, compile, tensorrt, onnx.")
]
PrecisionOption = Annotated[
    str, typer.Option("--precision", help="auto (fp16 on GPU, fp32 on CPU), fp32, fp16 or bf16.")
]
# Same value as rtstyle.realtime.smoothing.DEFAULT_STRENGTH (not imported: keeps --help fast).
DEFAULT_SMOOTH = 0.7
SmoothOption = Annotated[float, typer.Option(
    "--smooth", min=0.0, max=1.0,
    help="Temporal smoothing 0..1: blend in the previous output, carried along the motion, "
         "to stop flicker (0 = off).")]
NoSmoothOption = Annotated[bool, typer.Option(
    "--no-smooth", help="Per-frame output, no temporal smoothing (same as --smooth 0).")]
DEFAULT_BLEND = "auto"
BlendOption = Annotated[str, typer.Option(
    "--smooth-blend",
    help="auto: lowpass for styles trained for stability (the bundled ones), else frame. "
         "frame: blend whole frames (steadiest; softens brush texture). lowpass: only colour "
         "and light follow the motion, texture stays each frame's own (cheaper).")]


def _smoother(smooth: float, no_smooth: bool, blend: str = DEFAULT_BLEND, process=None):
    """The run's smoother; "auto" follows the process's current style (`steady_generator`)."""
    from .realtime.smoothing import make_smoother

    return make_smoother(0.0 if no_smooth else smooth, blend=blend,
                         steady=lambda: bool(getattr(process, "steady_generator", False)))


def _smoothing_label(smoother, requested: str) -> str:
    """"0.7 (lowpass blend)", "0.7 (auto: lowpass blend)" or "off"."""
    if not smoother.strength:
        return "off"
    active = smoother.active_blend
    return f"{smoother.strength:g} ({'auto: ' if requested == 'auto' else ''}{active} blend)"


def _status_printer(as_json: bool):
    """Engine warm-up/fallback messages on stderr; with --json they only go to the log."""
    return None if as_json else (lambda message: err.print(message, highlight=False))


def _warm_up(process, width: int, height: int, dev, as_json: bool) -> str | None:
    """Build the engine before the first frame; its own messages say what is being built.

    Returns the backend label ("compile/bf16 (…skipped: why)") for the summary and `--json`.
    """
    from .realtime.runs import warm_up

    label = warm_up(process.engine, width, height, dev)
    if label is not None:
        (log.info if as_json else lambda m: err.print(m, highlight=False))(f"backend: {label}")
    return label


def _check_styles(values: list[str]) -> list[str]:
    return [check_style(v) for v in values]


def _run_table(title: str, stats, rows: list[tuple[str, str]]) -> Table:
    """The end-of-run summary: frames in/out/dropped, fps, latency, plus the caller's rows."""
    info = stats.as_dict()
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, value)
    table.add_row("frames in / out", f"{info['frames_read']} / {info['frames_written']}")
    table.add_row("dropped (stale, live)", str(info["frames_dropped"]))
    table.add_row("speed", f"{info['fps']:.1f} fps over {info['seconds']:.1f} s")
    if info["latency_ms_p50"] is not None:
        table.add_row("latency p50 / p99",
                      f"{info['latency_ms_p50']:.0f} / {info['latency_ms_p99']:.0f} ms")
    return table


@app.command()
def video(
    source: Annotated[str, typer.Argument(
        help="Input video, image sequence (frames/%04d.png), URL or lavfi:GRAPH.")],
    target: Annotated[Path, typer.Argument(help="Output video (.mp4, .mkv, .mov, .webm).")],
    *,
    style: StyleOption,
    style_image: StyleImageOption = None,
    strength: Annotated[float, typer.Option(min=0.0, max=1.0, help="Style strength 0..1.")] = 1.0,
    size: Annotated[str | None, typer.Option(help=GeometryHelp)] = None,
    scale: Annotated[float | None, typer.Option(help="Scale factor, e.g. 0.5.")] = None,
    max_side: Annotated[int | None, typer.Option(help="Longest side at most this.")] = None,
    codec: Annotated[str | None, typer.Option(
        help="Video encoder (default libx264; e.g. libx265, libvpx-vp9, mpeg4).")] = None,
    crf: Annotated[int | None, typer.Option(help="Quality for x264/x265 (lower = better).")] = None,
    preset: Annotated[str | None, typer.Option(help="x264/x265 speed preset.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the output.")] = False,
    device: DeviceOption = "auto",
    backend: BackendOption = "auto",
    precision: PrecisionOption = "auto",
    max_frames: Annotated[int | None, typer.Option(
        min=1, help="Stop after this many frames (for a quick look).")] = None,
    smooth: SmoothOption = DEFAULT_SMOOTH,
    no_smooth: NoSmoothOption = False,
    smooth_blend: BlendOption = DEFAULT_BLEND,
    as_json: JsonOption = False,
) -> None:
    """Stylize a video file, keeping every frame, the timing and the audio."""
    from .devices import resolve_device
    from .geometry import parse_size
    from .realtime.controls import StyleCycler
    from .realtime.runs import load_engine, open_video_job

    with user_errors():
        dev = resolve_device(device)
        job = open_video_job(source, target, size=parse_size(size), scale=scale,
                             max_side=max_side, overwrite=overwrite)
        try:
            process = StyleCycler(
                [style], lambda name: load_engine(name, dev, backend=backend,
                                                  precision=precision, style_image=style_image,
                                                  on_status=_status_printer(as_json)),
                strength=strength)
            backend_label = _warm_up(process, job.width, job.height, dev, as_json)
        except BaseException:
            job.source.close()
            raise
        total = job.total_frames if max_frames is None else min(max_frames, job.total_frames or
                                                                  max_frames)
        rows = [("input", f"{source} ({job.source.info.description})"),
                ("output", f"{job.target} ({job.width}x{job.height})"),
                ("style", f"{process.name} on {dev}"),
                ("backend", backend_label or "eager")]
        smoother = _smoother(smooth, no_smooth, smooth_blend, process)
        rows.append(("smoothing", _smoothing_label(smoother, smooth_blend)))
        progress = progress_bar(quiet=as_json)
        task = progress.add_task("stylizing", total=total)
        try:
            with progress:
                stats = job.run(process, dev, codec=codec, crf=crf, preset=preset,
                                max_frames=max_frames, smoother=smoother,
                                on_frame=lambda s: progress.update(task, completed=s.written))
        except KeyboardInterrupt:
            err.print(_run_table("rtstyle video (interrupted)", job.stats, rows))
            err.print(f"output finalized: {job.target}", highlight=False)
            raise
    problems = job.source.problems()
    if as_json:
        out.print_json(json.dumps({"input": source, "output": str(job.target),
                                   "size": [job.width, job.height], "style": process.name,
                                   "device": str(dev), "backend": backend_label,
                                   "smooth": smoother.strength, "smooth_blend": smoother.active_blend,
                                   **stats.as_dict(), "warning": problems}))
        return
    err.print(_run_table("rtstyle video", stats, rows))
    if problems:
        err.print(f"[yellow]warning:[/] {source}: {problems}; every readable frame was written",
                  highlight=False)


@app.command()
def webcam(
    *,
    style: Annotated[list[str], typer.Option(
        "--style", "-s", help="Style name or file; repeat it to switch styles with n/p keys.",
        autocompletion=complete_style, callback=_check_styles)],
    camera: Annotated[str, typer.Option(
        help="Camera index (0), /dev/videoN, a video file, a URL or lavfi:GRAPH.")] = "0",
    output: Annotated[str, typer.Option(
        "--output", "-o", help="window, vcam (virtual camera), udp://HOST:PORT (also srt://, "
                               "tcp://, rtmp://) or a file name.")] = "window",
    style_image: StyleImageOption = None,
    strength: Annotated[float, typer.Option(min=0.0, max=1.0, help="Style strength 0..1.")] = 1.0,
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
    as_json: JsonOption = False,
) -> None:
    """Stylize a camera live, to a window, a virtual camera, a network stream or a file."""
    from rich.progress import TaskProgressColumn

    from .devices import resolve_device
    from .geometry import parse_size
    from .realtime.controls import KEY_HELP, StyleCycler, ViewState
    from .realtime.runs import live_pipeline, load_engine, open_live_sink, open_live_source

    with user_errors():
        dev = resolve_device(device)
        source, (width, height) = open_live_source(
            camera, size=parse_size(size), scale=scale, max_side=max_side, fps=fps,
            reconnect=reconnect)
        process = StyleCycler(
            style, lambda name: load_engine(name, dev, backend=backend, precision=precision,
                                            style_image=style_image,
                                            on_status=_status_printer(as_json)),
            strength=strength)
        _warm_up(process, width, height, dev, as_json)
        state = ViewState(style_count=len(style), strength=strength)
        sink = open_live_sink(output, source.info, width, height, overwrite=overwrite,
                              view_state=state, on_view_change=process.apply,
                              vcam_backend=vcam_backend)
        rows = [("camera", source.info.description),
                ("output", f"{sink.describe()} ({width}x{height})"),
                ("style", f"{', '.join(style)} on {dev}")]
        smoother = _smoother(smooth, no_smooth, smooth_blend, process)
        rows.append(("smoothing", _smoothing_label(smoother, smooth_blend)))
        if output == "window" and not as_json:
            err.print(f"keys: {KEY_HELP}", highlight=False)
        progress = Progress(TextColumn("[bold]live"), TaskProgressColumn(show_speed=True),
                            TextColumn("{task.fields[status]}"), console=err, disable=as_json)
        task = progress.add_task("live", total=None, status="")

        def show(stats) -> None:
            progress.update(task, completed=stats.written)
            if stats.written % 15 == 0:
                p50, p99 = stats.latency_ms(50, last=150), stats.latency_ms(99, last=150)
                progress.update(task, status=f"latency p50 {p50:.0f} ms p99 {p99:.0f} ms  "
                                             f"dropped {stats.dropped}")

        pipeline = live_pipeline(source, process, sink, dev, mirror=mirror, smoother=smoother,
                                 max_frames=max_frames, max_seconds=duration, on_frame=show)
        try:
            with progress:
                live_stats = pipeline.run()
        except KeyboardInterrupt:
            if not as_json:
                err.print(_run_table("rtstyle webcam (stopped)", pipeline.stats, rows))
            raise
    problems = source.problems()
    if as_json:
        out.print_json(json.dumps({"camera": camera, "output": output, "size": [width, height],
                                   "smooth": smoother.strength, "smooth_blend": smoother.active_blend, **live_stats.as_dict(),
                                   "warning": problems}))
        return
    err.print(_run_table("rtstyle webcam", live_stats, rows))
    if problems:
        err.print(f"[yellow]warning:[/] {problems}", highlight=False)


# --------------------------------------------------------------------------- bench, export
export_app = typer.Typer(help="Export a style's network for use outside rtstyle.")
app.add_typer(export_app, name="export")


def _bench_table(report) -> Table:
    table = Table(title=f"rtstyle bench · {report.model.get('style') or report.model.get('arch')}"
                        f" · {report.device} · {report.threads} threads", title_justify="left")
    table.add_column("size")
    table.add_column("backend")
    for column in ("prec", "median ms", "p99 ms", "fps", "× naive", "warm-up s"):
        table.add_column(column, justify="right")
    for r in report.rows:
        cells = [r.median_ms, r.p99_ms, r.fps, r.speedup_vs_naive, r.warmup_s]
        table.add_row(r.size, r.backend if r.status == "ok" else f"{r.backend} ({r.status})",
                      r.precision, *("-" if c is None else f"{c:g}" for c in cells))
    return table


@app.command()
def bench(
    *,
    style: Annotated[str | None, typer.Option(
        "--style", help="Installed style name or .safetensors file (default: --arch, random "
                        "weights).", autocompletion=complete_style, callback=check_style)] = None,
    arch: Annotated[str, typer.Option(
        "--arch", help="Architecture timed with random weights when no --style: johnson, "
                       "johnson-lite, cyclegan, sanet.")] = "johnson",
    style_image: StyleImageOption = None,
    device: DeviceOption = "auto",
    size: Annotated[list[str] | None, typer.Option(
        "--size", help="Frame size WxH; repeat for several.")] = None,
    backend: Annotated[str, typer.Option(
        "--backend", help="all, auto, or one of: eager, compile, onnxruntime, tensorrt.")] = "all",
    precision: PrecisionOption = "auto",
    frames: Annotated[int, typer.Option("--frames", min=1, help="Timed frames per run.")] = 30,
    threads: Annotated[int | None, typer.Option(
        "--threads", min=1, help="CPU threads (default: PyTorch's choice).")] = None,
    smooth: Annotated[float | None, typer.Option(
        "--smooth", min=0.0, max=1.0,
        help="Also time temporal smoothing at this strength (a '+smooth' row per size).")
    ] = None,
    smooth_blend: BlendOption = DEFAULT_BLEND,
    as_json: JsonOption = False,
) -> None:
    """Time every backend against the naive FP32 loop (uint8 in and out, same frames)."""
    import torch

    from .devices import resolve_device
    from .geometry import parse_size
    from .models.architectures import build_generator, get_arch
    from .models.loading import load_stylizer
    from .models.stylizer import Stylizer
    from .realtime.backends import BACKENDS, preference
    from .realtime.benchmark import run_benchmark

    with user_errors():
        dev = resolve_device(device)
        if threads:
            torch.set_num_threads(threads)
        sizes = [parse_size(s) for s in (size or ["640x360"])]
        if style is not None:
            stylizer = load_stylizer(style, device=dev, style_image=style_image)
            model = {"style": stylizer.name, "weights": "trained"}
        else:
            info = get_arch(arch)
            torch.manual_seed(0)
            net = build_generator(arch)
            if info.needs_style_image:
                net.set_style(torch.rand(1, 3, 256, 256))
            stylizer = Stylizer(net, info.input_range, feature_strength=info.needs_style_image)
            model = {"arch": arch, "weights": "random (seed 0): speed only, images meaningless"}
        names = [n for n in preference(dev) if n in BACKENDS] if backend == "all" else [backend]
        say = (lambda m: None) if as_json else (lambda m: err.print(m, highlight=False))
        report = run_benchmark(stylizer.eval(), dev, sizes=sizes, backends=names,
                               precision=precision, frames=frames, model_info=model,
                               smooth=smooth, smooth_blend=smooth_blend, on_status=say)
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
        return
    err.print(_bench_table(report))
    for r in report.rows:
        if r.reason:
            err.print(f"{r.size} {r.backend}: {r.status}: {r.reason}", highlight=False)
    err.print(f"{model['weights']}; versions: "
              + ", ".join(f"{k} {v}" for k, v in report.versions.items()), highlight=False)


@export_app.command("onnx")
def export_onnx_verb(
    output: Annotated[Path, typer.Argument(help="Where to write the .onnx file.")],
    *,
    style: StyleOption,
    style_image: StyleImageOption = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUTPUT.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Write the style as ONNX (RGB 0..1 N×3×H×W in and out; any batch, height and width)."""
    from .realtime.export import export_style_onnx

    with user_errors():
        result = export_style_onnx(style, output, style_image=style_image, overwrite=overwrite)
    if as_json:
        out.print_json(json.dumps(result))
    else:
        err.print(f"wrote {output} (max abs difference vs PyTorch in onnxruntime: "
                  f"{result['max_abs_diff']:.2e})", highlight=False)


# --------------------------------------------------------------------------- eval
eval_app = typer.Typer(help="Measure stylized output.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")


@eval_app.command("temporal")
def eval_temporal(
    *,
    input_path: Annotated[Path, typer.Option(
        "--input", "-i", help="Source video file or folder of frames (flow is computed here).")],
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Stylized video file or folder of frames to score.")],
    baseline: Annotated[Path | None, typer.Option(
        "--baseline", help="A per-frame (--no-smooth) stylization of the same input, "
                           "scored with the same flow.")] = None,
    flow: Annotated[Path | None, typer.Option(
        "--flow", help="Folder of ground-truth NAME.flo (+ NAME_occlusions.png, "
                       "NAME_invalid.png); default: DIS flow on the input.")] = None,
    preset: Annotated[str, typer.Option(
        "--preset", help="DIS preset: ultrafast, fast, medium.")] = "medium",
    max_frames: Annotated[int | None, typer.Option(
        "--max-frames", min=2, help="Score only the first N frames.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Warping error (Lai et al. 2018): flicker after motion compensation; lower is steadier."""
    from .metrics.temporal import evaluate_temporal, iter_frames

    with user_errors():
        with progress_bar(quiet=as_json) as progress:
            task = progress.add_task("scoring", total=max_frames)

            def counted(frames):
                for item in frames:
                    yield item
                    progress.advance(task)

            report = evaluate_temporal(
                counted(iter_frames(input_path, max_frames)), iter_frames(output, max_frames),
                baseline=None if baseline is None else iter_frames(baseline, max_frames),
                flow_dir=flow, preset=preset)
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
        return
    table = Table(title="warping error", title_justify="left",
                  caption=f"{report.pairs} pairs, {report.flow} flow, "
                          f"{100 * report.valid_fraction:.0f}% of pixels tracked")
    table.add_column("frames")
    table.add_column("warping error", justify="right")
    table.add_row("input (floor)", f"{report.input:.6f}")
    if report.baseline is not None:
        table.add_row("baseline", f"{report.baseline:.6f}")
    table.add_row("output", f"{report.output:.6f}")
    if report.ratio_to_baseline is not None:
        table.add_row("output / baseline", f"{report.ratio_to_baseline:.2f}×")
    out.print(table)


# --------------------------------------------------------------------------- train
train_app = typer.Typer(help="Train your own style (Johnson/lite, CycleGAN, SANet).",
                        no_args_is_help=True)
app.add_typer(train_app, name="train")


@contextlib.contextmanager
def _training_progress(name: str, quiet: bool):
    """A bar with each loss term, it/s and ETA; yields the trainer's step callback."""
    progress = Progress(
        TextColumn(f"[bold]{name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[losses]}"),
        TextColumn("[cyan]{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=err,
        disable=quiet,
    )
    task = progress.add_task(name, total=None, losses="", rate="")

    def on_step(step: int, total: int, losses: dict[str, float]) -> None:
        speed = progress.tasks[task].speed
        progress.update(task, completed=step, total=total,
                        losses=" ".join(f"{k}={v:.4g}" for k, v in losses.items()),
                        rate=f"{speed:.2f} it/s" if speed else "")

    with progress:
        yield on_step


def _training_summary(result, as_json: bool) -> None:
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: rank 0 exported and reports
        return
    summary = {"style": str(result.style_path) if result.style_path else None,
               "steps": result.steps, "losses": result.losses,
               "duration_s": round(result.duration_s, 1), "device": result.device,
               "world_size": result.world_size, "work_dir": str(result.work_dir)}
    if as_json:
        out.print_json(json.dumps(summary))
    else:
        err.print(f"wrote {summary['style']} after {result.steps} steps "
                  f"({summary['duration_s']} s on {result.device})", highlight=False)


@train_app.command("johnson")
def train_johnson_verb(
    *,
    style_image: Annotated[Path, typer.Option(help="The painting to learn.")],
    data: Annotated[Path, typer.Option(help="Folder of training photos.")],
    name: Annotated[str, typer.Option(help="Style name to register.")],
    arch: Annotated[str, typer.Option(help="standard (GPU real time) or lite (CPU real time).")] = "lite",
    size: Annotated[int, typer.Option(help="Training crop side in pixels.")] = 256,
    style_size: Annotated[int | None, typer.Option(help="Painting long side (default 2×size); sets stroke size.")] = None,
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 2000,
    batch: Annotated[int, typer.Option(help="Photos per step (per GPU).")] = 4,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    content_weight: Annotated[float, typer.Option(help="Weight of the content term.")] = 1.0,
    style_weight: Annotated[float, typer.Option(help="Weight of the Gram style term.")] = 0.25,
    tv_weight: Annotated[float, typer.Option(help="Weight of total variation.")] = 0.0,
    temporal_weight: Annotated[float, typer.Option(help="Weight of the synthetic-motion stability term.")] = 0.0,
    init_from: Annotated[str | None, typer.Option(help="Fine-tune this style (name or file, same --arch) instead of starting fresh.")] = None,
    channels: Annotated[int | None, typer.Option(help="Width of the net (default per arch).")] = None,
    n_res: Annotated[int | None, typer.Option(help="Residual blocks (default per arch).")] = None,
    device: DeviceOption = "auto",
    precision: Annotated[str, typer.Option(help="auto, fp32, bf16 or fp16 (autocast).")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for init and data order.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from the work dir's checkpoint.")] = False,
    sample_every: Annotated[int, typer.Option(help="Write a sample grid every N steps (0: never).")] = 200,
    checkpoint_every: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = 200,
    work_dir: Annotated[Path | None, typer.Option(help="Checkpoints, samples, logs.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Folder for the style file (default: user styles).")] = None,
    tag: Annotated[str, typer.Option(help="Version tag of the style.")] = "v1",
    painting: Annotated[str | None, typer.Option(help="Painting title (metadata).")] = None,
    artist: Annotated[str | None, typer.Option(help="Artist (metadata).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Train a feed-forward net for one painting (perceptual losses on VGG-19)."""
    from .models.training.johnson import JohnsonConfig, train_johnson

    cfg = JohnsonConfig(
        style_image=style_image, data=data, name=name, arch=arch, size=size,
        style_size=style_size, steps=steps, batch=batch, lr=lr, content_weight=content_weight,
        style_weight=style_weight, tv_weight=tv_weight, temporal_weight=temporal_weight,
        init_from=init_from,
        channels=channels, n_res=n_res, device=device, precision=precision, seed=seed,
        resume=resume, sample_every=sample_every, checkpoint_every=checkpoint_every,
        work_dir=work_dir, out=out, tag=tag, painting=painting or style_image.stem,
        artist=artist,
    )
    with user_errors(), _training_progress(f"train {name}", as_json) as on_step:
        result = train_johnson(cfg, on_step)
    _training_summary(result, as_json)


@train_app.command("cyclegan")
def train_cyclegan_verb(
    *,
    domain_a: Annotated[Path, typer.Option(help="Folder of source images (photos).")],
    domain_b: Annotated[Path, typer.Option(help="Folder of target images (paintings).")],
    name: Annotated[str, typer.Option(help="Style name for the A→B generator.")],
    ngf: Annotated[int, typer.Option(help="Generator width.")] = 64,
    n_blocks: Annotated[int, typer.Option(help="Generator residual blocks.")] = 9,
    size: Annotated[int, typer.Option(help="Training crop side in pixels.")] = 256,
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 20000,
    batch: Annotated[int, typer.Option(help="Images per step.")] = 1,
    lr: Annotated[float, typer.Option(help="Adam learning rate (decays linearly in the 2nd half).")] = 2e-4,
    cycle_weight: Annotated[float, typer.Option(help="Weight of cycle consistency.")] = 10.0,
    identity_weight: Annotated[float, typer.Option(help="Identity term, relative to the cycle weight.")] = 0.5,
    ssim_weight: Annotated[float, typer.Option(help="Weight of 1-SSIM on the reconstructions.")] = 0.0,
    device: DeviceOption = "auto",
    precision: Annotated[str, typer.Option(help="auto, fp32, bf16 or fp16 (autocast).")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for init and data order.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from the work dir's checkpoint.")] = False,
    sample_every: Annotated[int, typer.Option(help="Write a sample grid every N steps (0: never).")] = 500,
    work_dir: Annotated[Path | None, typer.Option(help="Checkpoints, samples, logs.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Folder for the style file (default: user styles).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Train an unpaired photo→painting CycleGAN and register its A→B generator."""
    from .models.training.cyclegan import CycleGANConfig, train_cyclegan

    cfg = CycleGANConfig(
        domain_a=domain_a, domain_b=domain_b, name=name, ngf=ngf, n_blocks=n_blocks, size=size,
        steps=steps, batch=batch, lr=lr, cycle_weight=cycle_weight,
        identity_weight=identity_weight, ssim_weight=ssim_weight, device=device,
        precision=precision, seed=seed, resume=resume, sample_every=sample_every,
        checkpoint_every=sample_every, work_dir=work_dir, out=out,
    )
    with user_errors(), _training_progress(f"train {name}", as_json) as on_step:
        result = train_cyclegan(cfg, on_step)
    _training_summary(result, as_json)


@train_app.command("sanet")
def train_sanet_verb(
    *,
    content: Annotated[Path, typer.Option(help="Folder of content photos.")],
    styles: Annotated[Path, typer.Option(help="Folder of paintings.")],
    name: Annotated[str, typer.Option(help="Model name.")] = "sanet",
    holdout: Annotated[list[str] | None, typer.Option(help="Painting file kept out of training (repeat).")] = None,
    init_from: Annotated[str | None, typer.Option(help="Fine-tune this SANet model (name or file) instead of starting fresh.")] = None,
    size: Annotated[int, typer.Option(help="Training crop side in pixels.")] = 256,
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 20000,
    batch: Annotated[int, typer.Option(help="Pairs per step (per GPU).")] = 4,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-4,
    device: DeviceOption = "auto",
    precision: Annotated[str, typer.Option(help="auto, fp32, bf16 or fp16 (autocast).")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for init and data order.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from the work dir's checkpoint.")] = False,
    sample_every: Annotated[int, typer.Option(help="Write a sample grid every N steps (0: never).")] = 500,
    work_dir: Annotated[Path | None, typer.Option(help="Checkpoints, samples, logs.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Folder for the model file (default: user styles).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Train a SANet arbitrary-style model (content, style and identity losses)."""
    from .models.training.sanet import SANetConfig, train_sanet

    cfg = SANetConfig(
        content=content, styles=styles, name=name, holdout=list(holdout or []), size=size,
        init_from=init_from,
        steps=steps, batch=batch, lr=lr, device=device, precision=precision, seed=seed,
        resume=resume, sample_every=sample_every, checkpoint_every=sample_every,
        work_dir=work_dir, out=out,
    )
    with user_errors(), _training_progress(f"train {name}", as_json) as on_step:
        result = train_sanet(cfg, on_step)
    _training_summary(result, as_json)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
