"""`rtstyle export onnx`: a style as a standalone ONNX graph, verified before it is handed over.

The graph takes and returns RGB 0..1 N×3×H×W with batch, height and width all dynamic; padding
to the generator's stride happens inside it. After export the file is run in onnxruntime at two
odd sizes and compared with PyTorch, so a silently wrong export never reaches the user.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import torch

from ..errors import BackendUnavailableError, OutputExistsError, RtstyleError
from .backends.onnx import INPUT_NAME, OPSET, OUTPUT_NAME, export_onnx, make_session

log = logging.getLogger(__name__)

CHECK_SHAPES = ((1, 3, 41, 67), (2, 3, 72, 128))
MAX_ABS_DIFF = 2e-3  # in 0..1 units, about half an 8-bit level


class ExportCheckError(RtstyleError):
    """The exported graph disagrees with PyTorch."""


def verify_onnx(module: torch.nn.Module, path: Path, shapes=CHECK_SHAPES) -> float:
    """Largest |onnxruntime − PyTorch| over `shapes` (seeded random frames)."""
    session = make_session(path, torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for shape in shapes:
        x = torch.rand(shape, generator=generator)
        with torch.inference_mode():
            expected = module(x).float()
        got = torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0])
        worst = max(worst, float((got - expected).abs().max()))
    return worst


def export_style_onnx(style: str, output: Path, *, style_image: Path | None = None,
                      overwrite: bool = False) -> dict:
    from ..models.loading import load_stylizer

    output = Path(output)
    if output.exists() and not overwrite:
        raise OutputExistsError(f"{output} exists; pass --overwrite to replace it")
    if importlib.util.find_spec("onnxruntime") is None:
        raise BackendUnavailableError("checking the export needs onnxruntime "
                                      "(pip install 'rtstyle[onnx]')")
    stylizer = load_stylizer(style, device="cpu", style_image=style_image).eval()
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        export_onnx(stylizer, tmp, torch.rand(1, 3, 64, 96), dynamic=True)
        diff = verify_onnx(stylizer, tmp)
        if diff > MAX_ABS_DIFF:
            raise ExportCheckError(f"exported graph differs from PyTorch by {diff:.2e} "
                                   f"(> {MAX_ABS_DIFF}); not written")
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("exported %s to %s (max abs diff %.2e)", stylizer.name, output, diff)
    return {"style": stylizer.name, "output": str(output), "opset": OPSET,
            "inputs": {INPUT_NAME: "N×3×H×W float32 RGB 0..1, N/H/W dynamic"},
            "outputs": {OUTPUT_NAME: "N×3×H×W float32 RGB 0..1"},
            "checked_shapes": [list(s) for s in CHECK_SHAPES], "max_abs_diff": diff}
