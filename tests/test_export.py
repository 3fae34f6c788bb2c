"""`rtstyle export onnx`: a real (tiny) style, dynamic sizes, checked in onnxruntime."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import torch
from typer.testing import CliRunner

from rtstyle.cli import app
from rtstyle.models.loading import load_stylizer

runner = CliRunner()


def test_export_onnx_runs_any_size_like_torch(tiny_style_file, tmp_path):
    out = tmp_path / "tiny.onnx"
    result = runner.invoke(app, ["export", "onnx", "--style", str(tiny_style_file), str(out),
                                 "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["max_abs_diff"] < 2e-3 and out.is_file()
    assert not list(tmp_path.glob(".*tmp"))

    stylizer = load_stylizer(str(tiny_style_file))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    for shape in [(1, 3, 41, 67), (3, 3, 36, 50)]:  # sizes the export never saw
        x = torch.rand(shape, generator=torch.Generator().manual_seed(1))
        got = session.run(None, {name: x.numpy()})[0]
        with torch.no_grad():
            expected = stylizer(x).numpy()
        assert got.shape == shape
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)

    again = runner.invoke(app, ["export", "onnx", "--style", str(tiny_style_file), str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_export_unknown_style_is_a_user_error(tmp_path, rtstyle_home):
    result = runner.invoke(app, ["export", "onnx", "--style", "nope", str(tmp_path / "x.onnx")])
    assert result.exit_code == 2
    assert not (tmp_path / "x.onnx").exists()
