"""`rtstyle styles`: list the installed styles, import a checkpoint as a style."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .common import (
    JsonOption,
    err,
    out,
    user_errors,
)

styles_app = typer.Typer(help="List installed styles, or import a checkpoint as a style.")


def _setting(key: str, value) -> str:
    """`steps=400`, `init_from=monet-lite.v1` (a weights path shown as the style it names)."""
    key = key.removeprefix("training.")
    if isinstance(value, str) and value.endswith(".safetensors"):
        value = Path(value).name.removesuffix(".safetensors")
    elif isinstance(value, float):
        value = f"{value:g}"
    elif isinstance(value, (list, dict)):
        value = json.dumps(value, separators=(",", ":"))
    return f"{key}={value}"


def _arch(spec) -> str:
    """`johnson-mid (2/7)`: a style of a multi-style file, which its other styles share."""
    if spec.style_index is None:
        return spec.arch
    return f"{spec.arch} ({spec.style_index + 1}/{len(spec.file_styles)})"


def _painting(spec) -> str:
    return spec.summary()["painting"] or ("any (--style-image)" if spec.needs_style_image else "")


@styles_app.callback(invoke_without_command=True)
def styles(
    ctx: typer.Context,
    *,
    all_tags: Annotated[bool, typer.Option(
        "--all", help="Every tag of every style, with the settings that differ between tags.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List the installed styles, one row each (the tag a bare name gets); --all for every tag.

    Names are case-insensitive: `--style Monet` and `--style monet-lite.V2` work.
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..models.registry import discover, tag_differences, user_styles_dir

    with user_errors():
        registry = discover()
    specs = registry.specs() if all_tags else registry.default_specs()
    differs = tag_differences(registry.specs())
    if as_json:
        rows = []
        for s in specs:
            row = {**s.summary(), "aliases": registry.aliases_for(s),
                   "tags": [t.tag for t in registry.tags_of(s.name)]}
            if all_tags:
                row |= {"default": registry.default_spec(s) is s, "differs": differs[s.full_name]}
            rows.append(row)
        out.print_json(json.dumps({"styles": rows, "user_dir": str(user_styles_dir()),
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
    if all_tags:
        table = Table(title="rtstyle styles, every tag (* = the one a bare name gets)")
        for col in ("name", "tag", "arch", "origin", "differs from its other tags"):
            table.add_column(col)
        for s in specs:
            mark = " *" if registry.default_spec(s) is s else ""
            settings = " ".join(_setting(k, v) for k, v in differs[s.full_name].items()
                                if v is not None)
            table.add_row(s.name, f"{s.tag}{mark}", _arch(s), s.origin, settings)
    else:
        table = Table(title="rtstyle styles (other tags: rtstyle styles --all)")
        for col in ("name", "also", "tag", "other tags", "arch", "origin", "painting"):
            table.add_column(col)
        for s in specs:
            others = [t.tag for t in registry.tags_of(s.name) if t is not s]
            table.add_row(s.name, ", ".join(registry.aliases_for(s)), s.tag, ", ".join(others),
                          _arch(s), s.origin, _painting(s))
    out.print(table)


@styles_app.command("import")
def styles_import(
    checkpoint: Annotated[Path, typer.Argument(help="Foreign checkpoint (.pth/.pt/.safetensors).")],
    *,
    name: Annotated[str, typer.Option("--name", help="Name to register the style under.")],
    arch: Annotated[str, typer.Option("--arch", help="johnson, cyclegan, sanet, adain.")] = "johnson",
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
    from ..models.loading import import_style

    with user_errors():
        spec = import_style(checkpoint, name=name, arch=arch, tag=tag, transformer=transformer,
                            vgg=vgg, overwrite=overwrite)
    if as_json:
        out.print_json(json.dumps(spec.summary()))
    else:
        out.print(f"imported [bold]{spec.full_name}[/] ({spec.arch}) -> {spec.weights}")


