"""Shared pieces of the verbs: consoles, the error boundary, common options, progress bars.

Errors from the library are `RtstyleError`s; each becomes one line on stderr and an exit code
(1 runtime, 2 bad input, 130 Ctrl-C, 143 SIGTERM). `--json` prints one object on stdout, no
progress.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ..errors import RtstyleError, Terminated
from ..realtime.backends import backend_help, resolve_backend_name

err = Console(stderr=True)
out = Console()
log = logging.getLogger("rtstyle")


def _raise_terminated(signum, frame) -> None:
    raise Terminated


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (docker stop, systemd, `kill`) is handled as Ctrl-C: whatever is running unwinds,
    files are finalized, then the process exits with 143. Only the main thread gets signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """One clear line instead of a traceback for every expected failure."""
    try:
        with sigterm_as_interrupt():
            yield
    except RtstyleError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(exc.exit_code) from None
    except Terminated:
        err.print("[yellow]terminated[/]")
        raise typer.Exit(143) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None


def complete_style(incomplete: str) -> list[str]:
    from ..models.registry import style_names

    try:
        return [n for n in style_names() if n.casefold().startswith(incomplete.casefold())]
    except RtstyleError:
        return []


def check_style(value: str | None) -> str | None:
    """Reject an unknown name early, in Typer's own shape for bad choices."""
    from ..images import IMAGE_SUFFIXES
    from ..models.registry import discover, looks_like_path

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
MixOption = Annotated[
    str | None,
    typer.Option(
        help="Weights of the repeated --style, e.g. 0.3,0.7 (scaled to sum to 1): paint them "
             "as one mixed style (blended instance norms when they share a multi-style file, "
             "mixed statistics for paintings through AdaIN, blended outputs otherwise)."),
]
StrengthOption = Annotated[
    float | None,
    typer.Option(min=0.0, max=1.0,
                 help="Style strength: 0 = the input, 1 = full style (a blend of the two in "
                      "between). Default: 1, or what the style's file recommends (0.75 for "
                      "the bundled any-painting model)."),
]
StyleImageOption = Annotated[
    Path | None,
    typer.Option("--style-image", help="Painting for an arbitrary-style (AdaIN or SANet) model."),
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


def check_backend(value: str) -> str:
    """An unknown backend is bad input, named with the same list as the help and `auto`."""
    try:
        resolve_backend_name(value)
    except RtstyleError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


GeometryHelp = "Fit inside WxH (e.g. 1280x720, 640x-1); default: the input's size."
BackendOption = Annotated[
    str, typer.Option("--backend", help=f"Inference backend: {backend_help()}.",
                      callback=check_backend)
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

# Photoreal mode and spatial control (`rtstyle.realtime.finishing`); defaults as in
# rtstyle.models.photoreal (not imported: keeps --help fast).
PhotorealOption = Annotated[bool, typer.Option(
    "--photoreal",
    help="Photorealistic: each frame becomes a locally affine recolouring of the input that "
         "best fits the stylized frame (edges and detail stay the photo's). A photo or "
         "painting as --style is then matched by its colour statistics.")]
PhotorealRadiusOption = Annotated[int | None, typer.Option(
    "--photoreal-radius", min=1,
    help="Window radius of --photoreal in pixels of the processed frame (default 8): larger "
         "follows the style's colours more loosely.")]
PhotorealEpsOption = Annotated[float | None, typer.Option(
    "--photoreal-eps", min=0.0,
    help="Regularisation of --photoreal (default 0.01): smaller keeps more of the style's "
         "local contrast, larger only its local colour.")]
MaskOption = Annotated[Path | None, typer.Option(
    "--mask", help="Image: stylize where it is white, keep the input where it is black.")]
MaskFeatherOption = Annotated[float, typer.Option(
    "--mask-feather", min=0.0,
    help="Soften the mask's edge over this many pixels, inside the region (the input "
         "outside stays untouched).")]
SegmentOption = Annotated[str | None, typer.Option(
    "--segment",
    help="person: stylize only the people; background: everything but the people "
         "(MediaPipe's selfie segmentation; needs rtstyle[segment], see README).")]
# `--style-scale`: parsed by rtstyle.models.style_scale.parse_style_scale inside the error
# boundary (a bad value is one line and exit code 2; not imported here: keeps --help fast).
_STYLE_SCALE_HELP = (
    "Run the style network on the frame scaled by S (0 < S <= 4) and bring the result back "
    "with edge-aware (guided) upsampling: strokes 1/S times larger, edges sharp, network cost "
    "x S². auto: the network sees the style's training size; auto:N: N pixels on the short "
    "side. 1 = off.")
StyleScaleOption = Annotated[str, typer.Option(
    "--style-scale", metavar="S|auto", help=_STYLE_SCALE_HELP)]
# For moving pictures, leaving it out means the style's own recommendation (stills: 1).
VideoStyleScaleOption = Annotated[str | None, typer.Option(
    "--style-scale", metavar="S|auto", show_default=False,
    help=_STYLE_SCALE_HELP + " Default: for video, what the style recommends "
         "(video_style_scale in `rtstyle styles --json`; 1 for most); for stills, 1.")]


class ColorMode(str, Enum):
    """`--preserve-color`; the names of rtstyle.models.color.COLOR_MODES (not imported: keeps
    --help fast; tests/test_stills_quality.py checks they agree)."""

    luminance = "luminance"
    histogram = "histogram"


PreserveColorOption = Annotated[ColorMode | None, typer.Option(
    "--preserve-color",
    help="Keep the photo's colours. luminance: the photo's colours exactly, only the "
         "stylized brightness and texture; histogram: the output recoloured to the photo's "
         "colour mean and covariance (the style's colour variation stays). Default: off.")]
