"""`rtstyle eval`: measure stylized output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .common import (
    JsonOption,
    out,
    progress_bar,
    user_errors,
)

eval_app = typer.Typer(help="Measure stylized output.", no_args_is_help=True)


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
    from ..metrics.temporal import evaluate_temporal, iter_frames

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


