"""`rtstyle image`: stylize still images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .common import (
    DeviceOption,
    JsonOption,
    StyleImageOption,
    StyleOption,
    err,
    out,
    progress_bar,
    user_errors,
)


def image(
    inputs: Annotated[list[Path], typer.Argument(help="Image files and/or folders of images. `IN.jpg OUT.jpg` (OUT.jpg not there yet) writes OUT.jpg, like -o OUT.jpg.")],
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
    from ..devices import resolve_device
    from ..geometry import parse_size
    from ..models.loading import load_stylizer
    from ..stills import plan_jobs, stylize_files

    with user_errors():
        dev = resolve_device(device)
        geometry = {"size": parse_size(size), "scale": scale, "max_side": max_side}
        stylizer = load_stylizer(style, device=dev, style_image=style_image)
        from ..images import IMAGE_SUFFIXES

        painting = Path(style).suffix.lower() in IMAGE_SUFFIXES
        label = Path(style).stem if painting else stylizer.name.rsplit(".", 1)[0]
        jobs = plan_jobs(list(inputs), output, label, overwrite=overwrite)
        written = []
        with progress_bar(quiet=as_json or len(jobs) < 2) as progress:
            task = progress.add_task("stylizing", total=len(jobs))
            for job in stylize_files(stylizer, jobs, dev, strength=strength, **geometry):
                written.append(str(job.target))
                progress.advance(task)
    if as_json:
        out.print_json(json.dumps({"style": stylizer.name, "device": str(dev), "outputs": written}))
    else:
        for path in written:
            err.print(f"wrote {path}", highlight=False)


