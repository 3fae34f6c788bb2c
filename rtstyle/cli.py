"""The `rtstyle` command: thin Typer verbs over library functions.

Errors from the library are `RtstyleError`s; each becomes one line on stderr and an exit code
(1 runtime, 2 bad input, 130 interrupted). `--json` prints one object on stdout, no progress.
"""

from __future__ import annotations

import contextlib
import json
import logging
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
    from .models.registry import list_styles, user_styles_dir

    with user_errors():
        specs = list_styles()
    if as_json:
        out.print_json(json.dumps({"styles": [s.summary() for s in specs],
                                   "user_dir": str(user_styles_dir())}))
        return
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
    for col in ("name", "tag", "arch", "origin", "painting"):
        table.add_column(col)
    for s in specs:
        painting = s.summary()["painting"] or ("any (--style-image)" if s.needs_style_image else "")
        table.add_row(s.name, s.tag, s.arch, s.origin, painting)
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


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
