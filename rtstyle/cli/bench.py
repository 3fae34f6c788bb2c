"""`rtstyle bench`: time the backends."""

from __future__ import annotations

import contextlib
import json
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..errors import UserInputError
from ..realtime.backends import backend_help
from .common import (
    DEFAULT_BLEND,
    BlendOption,
    DeviceOption,
    JsonOption,
    PrecisionOption,
    StyleImageOption,
    check_style,
    complete_style,
    err,
    out,
    user_errors,
)

# The first command of the README; timed when no --style or --arch is given.
DEFAULT_STYLE = "monet"


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


@contextlib.contextmanager
def _bench_progress(quiet: bool):
    """A spinner with elapsed time under the latest step ("640x360: compile/bf16 …"), so a
    minute-long compile is visibly working; each step is also printed once."""
    if quiet:
        yield lambda message: None
        return
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                        console=err, transient=True)
    task = progress.add_task("starting", total=None)

    def say(message: str) -> None:
        err.print(message, highlight=False)
        progress.update(task, description=message)

    with progress:
        yield say


def bench(
    *,
    style: Annotated[str | None, typer.Option(
        "--style", help=f"Installed style name or .safetensors file (default: {DEFAULT_STYLE}, "
                        "the default bundled style).", autocompletion=complete_style,
        callback=check_style)] = None,
    arch: Annotated[str | None, typer.Option(
        "--arch", help="Time this architecture with random weights instead of a style: "
                       "johnson, johnson-mid, johnson-lite, cyclegan, sanet.")] = None,
    style_image: StyleImageOption = None,
    device: DeviceOption = "auto",
    size: Annotated[list[str] | None, typer.Option(
        "--size", help="Frame size WxH; repeat for several.")] = None,
    backend: Annotated[str, typer.Option(
        "--backend", help=f"all, or one of: {backend_help()}.")] = "all",
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

    from ..devices import resolve_device
    from ..geometry import parse_size
    from ..models.loading import load_stylizer, random_stylizer
    from ..realtime.backends import speed_order
    from ..realtime.benchmark import run_benchmark

    with user_errors():
        if style is not None and arch is not None:
            raise UserInputError("give --style or --arch, not both")
        dev = resolve_device(device)
        if threads:
            torch.set_num_threads(threads)
        sizes = [parse_size(s) for s in (size or ["640x360"])]
        if arch is None:
            stylizer = load_stylizer(style or DEFAULT_STYLE, device=dev, style_image=style_image)
            model = {"style": stylizer.name, "weights": "trained"}
        else:
            stylizer = random_stylizer(arch)
            model = {"arch": arch, "weights": "random (seed 0): speed only, images meaningless"}
        names = speed_order(dev.type) if backend == "all" else [backend]
        with _bench_progress(as_json) as say:
            report = run_benchmark(stylizer, dev, sizes=sizes, backends=names,
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


