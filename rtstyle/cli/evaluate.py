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




@eval_app.command("quality")
def eval_quality(
    *,
    content: Annotated[Path, typer.Option(help="Folder of the photos.")],
    stylized: Annotated[Path, typer.Option(
        help="Folder of the outputs: PHOTO.ext or PHOTO_anything.ext (what `rtstyle image` "
             "writes) for each photo.")],
    style: Annotated[Path, typer.Option("--style", help="The painting to compare with.")],
    sheet: Annotated[Path | None, typer.Option(
        help="Also write a contact sheet, photo | output per row: out.png, out.jpg or "
             "out.html.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Score only the first N pairs.")] = None,
    crops: Annotated[int, typer.Option(
        min=2, help="Random 256 px crops of the painting (at 512 px) for VGG-FID/KID.")] = 64,
    device: Annotated[str, typer.Option("--device", "-d", help="auto, cpu, cuda, cuda:N or mps.")
                      ] = "auto",
    per_image: Annotated[bool, typer.Option(
        "--per-image", help="With --json: every pair's numbers too.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Gram style loss to a painting, content loss, SSIM and PSNR to the photo, and
    VGG-FID/VGG-KID against crops of the painting (definitions of vggmetrics.py)."""
    from ..devices import resolve_device
    from ..metrics.quality import evaluate_quality, write_contact_sheet

    with user_errors():
        dev = resolve_device(device)
        with progress_bar(quiet=as_json) as progress:
            task = progress.add_task("scoring", total=limit)
            report = evaluate_quality(content, stylized, style, device=dev, limit=limit,
                                      crops=crops, on_pair=lambda _: progress.advance(task))
        if sheet is not None:
            write_contact_sheet(report, sheet)
    data = report.to_dict(per_image=per_image)
    if sheet is not None:
        data["sheet"] = str(sheet)
    if as_json:
        out.print_json(json.dumps(data))
        return

    def fmt(value, spec: str) -> str:
        return "–" if value is None else format(value, spec)

    table = Table(title=f"quality against {style.name}", title_justify="left",
                  caption=f"{data['n']} pairs; unmatched: {len(report.unmatched_content)} photos, "
                          f"{len(report.unmatched_stylized)} outputs")
    table.add_column("measure")
    table.add_column("mean", justify="right")
    table.add_column("median", justify="right")
    rows = (("style loss (Gram)", "style_loss", ".6g"), ("style loss, photo itself",
            "photo_style_loss", ".6g"), ("style_rel", "style_rel", ".4f"),
            ("content loss (relu4_1)", "content_loss", ".6g"), ("SSIM (luma)", "ssim", ".4f"),
            ("PSNR dB", "psnr", ".2f"))
    for label, key, spec in rows:
        table.add_row(label, fmt(data[key]["mean"], spec), fmt(data[key]["median"], spec))
    table.add_row("VGG-FID", fmt(report.vgg_fid, ".6g"), "")
    table.add_row("VGG-KID", fmt(report.vgg_kid, ".6g"), "")
    out.print(table)
    if sheet is not None:
        out.print(f"contact sheet: {sheet}", highlight=False)
