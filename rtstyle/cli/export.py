"""`rtstyle export`: write a style's network for use outside rtstyle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .common import (
    JsonOption,
    StyleImageOption,
    StyleOption,
    err,
    out,
    user_errors,
)

export_app = typer.Typer(help="Export a style's network for use outside rtstyle.")



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
    from ..realtime.export import export_style_onnx

    with user_errors():
        result = export_style_onnx(style, output, style_image=style_image, overwrite=overwrite)
    if as_json:
        out.print_json(json.dumps(result))
    else:
        err.print(f"wrote {output} (max abs difference vs PyTorch in onnxruntime: "
                  f"{result['max_abs_diff']:.2e})", highlight=False)


