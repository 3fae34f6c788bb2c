"""`rtstyle batch`: many videos and images into one folder, here or on a Ray cluster.

Parses the options (those of `video` and `image`, plus where and how widely to run), plans,
hands the plan to `rtstyle.batch`, and renders one progress display and a summary.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from .common import (
    DEFAULT_BLEND,
    DEFAULT_SMOOTH,
    BackendOption,
    BlendOption,
    DeviceOption,
    FpsColumn,
    GeometryHelp,
    JsonOption,
    NoSmoothOption,
    PhotorealEpsOption,
    PhotorealOption,
    PhotorealRadiusOption,
    PrecisionOption,
    PreserveColorOption,
    SmoothOption,
    StrengthOption,
    StyleImageOption,
    StyleOption,
    VideoStyleScaleOption,
    err,
    out,
    user_errors,
)


class FramesFpsColumn(FpsColumn):
    """Speed on the frames bar only: files per second would read as frames per second."""

    def render(self, task) -> Text:
        return super().render(task) if task.description == "frames" else Text("")


SPLIT_HELP = ("Cut videos longer than this many seconds at keyframes into parts that run side "
              "by side, joined without re-encoding (0 = never).")


def _local_gpus(device: str) -> tuple[int, ...]:
    import torch

    if device == "cpu" or device == "mps" or not torch.cuda.is_available():
        return ()
    if device.startswith("cuda:"):
        return (int(device.split(":", 1)[1]),)
    return tuple(range(torch.cuda.device_count()))


def _check_here(style_arg: str, style_image: Path | None, device: str, on_ray: bool):
    """What can fail on this machine fails before the output folder or any worker exists:
    Ray missing, an unknown style, a device this machine lacks (a cluster's are its own).
    Returns the style, with its bytes for a cluster."""
    from ..batch.bundle import bundle_style

    if on_ray:
        from ..batch.ray_workers import import_ray

        import_ray()
    else:
        from ..devices import resolve_device

        resolve_device(device)
    return bundle_style(style_arg, style_image, ship=on_ray)


def _open_workers(recipe, style, *, on_ray: bool, ray_address: str | None,
                  workers: int | None, cpus_per_task: int | None, retries: int):
    from dataclasses import replace

    if on_ray:
        from ..batch.ray_workers import RayWorkers

        return RayWorkers(recipe, style, address=ray_address, workers=workers,
                          cpus_per_task=cpus_per_task or 1, retries=retries)
    from ..batch.local import LocalWorkers, default_workers

    cores = os.cpu_count() or 1
    gpus = _local_gpus(recipe.settings.device)
    count = workers or default_workers(cores, len(gpus))
    threads = cpus_per_task or max(1, cores // count)
    if gpus:
        recipe = replace(recipe, settings=replace(recipe.settings, device="cuda"))
    return LocalWorkers(recipe, style, workers=count, threads=threads,
                        gpus=gpus[:count] if len(gpus) > count else gpus)


def _summary(report, title: str) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    done, skipped, failed = (report.with_status(s) for s in ("done", "skipped", "failed"))
    retried = [i for i in report.items if i.attempts > 1 and i.status == "done"]
    rows = [("workers", report.workers),
            ("done", f"{len(done)}" + (f" ({len(retried)} after a retry)" if retried else "")),
            ("skipped", f"{len(skipped)} (finished earlier)"),
            ("failed", str(len(failed))),
            ("frames", f"{report.frames} in {report.wall_s:.1f} s"
                       + (f" ({report.frames / report.wall_s:.1f} fps)" if report.wall_s else ""))]
    for key, value in rows:
        table.add_row(key, value)
    for item in failed:
        table.add_row("[red]failed[/]", f"{item.input}: {item.reason}")
    return table


def _run(plan, pool, retries: int, as_json: bool):
    """Run the plan under one progress display: files done, frames/s across workers, ETA."""
    from ..batch.runner import BatchRunner

    progress = Progress(TextColumn("[bold]{task.description:<6}"), BarColumn(),
                        MofNCompleteColumn(), FramesFpsColumn(), TimeRemainingColumn(),
                        TextColumn("{task.fields[note]}"), console=err, disable=as_json)
    files = progress.add_task("files", total=None, note="")
    frames = progress.add_task("frames", total=None, note="")

    def show(p) -> None:
        progress.update(files, completed=p.files_done + p.files_failed, total=p.files_total,
                        note=f"[red]{p.files_failed} failed[/]" if p.files_failed else "")
        progress.update(frames, completed=p.frames_done, total=p.frames_total,
                        note=f"{p.running} running")

    def say(message: str) -> None:
        if not as_json:
            progress.console.print(f"[yellow]{message}[/]", highlight=False)

    if not as_json:
        unreadable = len(plan.items) - len(plan.todo) - len(plan.skipped)
        err.print(f"{len(plan.todo)} to do, {len(plan.skipped)} finished earlier"
                  + (f", {unreadable} unreadable" if unreadable else "")
                  + f"; {pool.description}", highlight=False)
    runner = BatchRunner(plan, pool, retries=retries, on_progress=show, on_message=say)
    try:
        with progress:
            return runner.run()
    except KeyboardInterrupt:
        if not as_json:
            err.print(_summary(runner.report(interrupted=True), "rtstyle batch (interrupted)"))
        raise


def batch(
    inputs: Annotated[list[str], typer.Argument(
        help="Videos, images, folders of them, or quoted glob patterns ('clips/**/*.mp4').")],
    *,
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Output folder (created if missing); each output is named "
                               "after its input.")],
    style: StyleOption,
    style_image: StyleImageOption = None,
    strength: StrengthOption = None,
    size: Annotated[str | None, typer.Option(help=GeometryHelp)] = None,
    scale: Annotated[float | None, typer.Option(help="Scale factor, e.g. 0.5.")] = None,
    max_side: Annotated[int | None, typer.Option(help="Longest side at most this.")] = None,
    codec: Annotated[str | None, typer.Option(
        help="Video encoder (default libx264; e.g. libx265, libvpx-vp9, mpeg4).")] = None,
    crf: Annotated[int | None, typer.Option(help="Quality for x264/x265 (lower = better).")] = None,
    preset: Annotated[str | None, typer.Option(help="x264/x265 speed preset.")] = None,
    device: DeviceOption = "auto",
    backend: BackendOption = "auto",
    precision: PrecisionOption = "auto",
    max_frames: Annotated[int | None, typer.Option(
        min=1, help="At most this many frames of each video (for a quick look).")] = None,
    smooth: SmoothOption = DEFAULT_SMOOTH,
    no_smooth: NoSmoothOption = False,
    smooth_blend: BlendOption = DEFAULT_BLEND,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Redo outputs that exist (by default a rerun skips them: an "
                            "output appears under its name only when complete).")] = False,
    workers: Annotated[int | None, typer.Option(
        min=1, help="Files at once. Default here: one per GPU, or one per core (at most 8); "
                    "with --ray, the local cluster's size (an existing cluster sets its own).")
    ] = None,
    cpus_per_task: Annotated[int | None, typer.Option(
        min=1, help="Torch threads per worker (here: cores / workers); with --ray, the CPUs "
                    "each task asks for (default 1).")] = None,
    retries: Annotated[int, typer.Option(
        min=0, help="Tries again a failed file (or part) this many times.")] = 1,
    split_seconds: Annotated[float, typer.Option(min=0.0, help=SPLIT_HELP)] = 60.0,
    ray: Annotated[bool, typer.Option(
        "--ray", help="Run on Ray (rtstyle's `ray` extra): a local cluster started for this "
                      "batch, unless --ray-address names one.")] = False,
    ray_address: Annotated[str | None, typer.Option(
        help="An existing Ray cluster (implies --ray): auto (the one this machine joined with "
             "`ray start`), HOST:6379, or ray://HOST:10001 (Ray Client).")] = None,
    style_scale: VideoStyleScaleOption = None,
    preserve_color: PreserveColorOption = None,
    photoreal: PhotorealOption = False,
    photoreal_radius: PhotorealRadiusOption = None,
    photoreal_eps: PhotorealEpsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stylize many videos and images into a folder, here or on a Ray cluster."""
    from ..batch.plan import plan_batch, preroll_frames
    from ..batch.runner import BatchRunner
    from ..batch.work import Recipe
    from ..geometry import parse_size
    from ..models.loading import default_strength
    from ..models.style_scale import parse_style_scale
    from ..realtime.runs import Geometry, StyleSettings

    with user_errors():
        settings = StyleSettings(
            styles=(style,), style_image=style_image, device=device,
            strength=default_strength([style], style_image, strength),
            backend=backend, precision=precision, smooth=0.0 if no_smooth else smooth,
            smooth_blend=smooth_blend,
            style_scale=None if style_scale is None else parse_style_scale(style_scale),
            preserve_color=preserve_color.value if preserve_color is not None else None,
            photoreal=photoreal, photoreal_radius=photoreal_radius, photoreal_eps=photoreal_eps)
        recipe = Recipe(settings, Geometry(parse_size(size), scale, max_side), codec=codec,
                        crf=crf, preset=preset, max_frames=max_frames)
        on_ray = ray or ray_address is not None
        bundle = _check_here(style, style_image, device, on_ray)
        plan = plan_batch(inputs, output, overwrite=overwrite, split_seconds=split_seconds,
                          preroll=preroll_frames(settings.smooth), max_frames=max_frames)
        if plan.todo:
            pool = _open_workers(recipe, bundle, on_ray=on_ray, ray_address=ray_address,
                                 workers=workers, cpus_per_task=cpus_per_task,
                                 retries=retries)
            # Ray prints some of its news on stdout, which --json keeps for its one object.
            with pool, contextlib.redirect_stdout(sys.stderr):
                report = _run(plan, pool, retries, as_json)
        else:  # a rerun after a finished one: nothing to start
            report = BatchRunner(plan, None).report()
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
    else:
        err.print(_summary(report, "rtstyle batch"))
    if report.with_status("failed"):
        raise typer.Exit(1)
