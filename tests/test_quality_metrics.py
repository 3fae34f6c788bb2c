"""`rtstyle eval quality`: the numbers of ../shared/tools/vggmetrics.py, plus VGG-FID/KID."""

from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from rtstyle.cli import app
from rtstyle.images import read_image, resize_max_side, write_image
from rtstyle.metrics.quality import evaluate_quality, frechet_distance, kernel_distance

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()
TOOL = "vggmetrics.py"


@pytest.fixture
def photos(shared_data, tmp_path):
    """Two real photos at odd small sizes, in a folder."""
    folder = tmp_path / "photos"
    for i, src in enumerate(sorted((shared_data / "content" / "eval").glob("*.jpg"))[:2]):
        write_image(folder / f"{src.stem}.png", resize_max_side(read_image(src), 97 + 8 * i))
    return folder


def test_identical_folders_score_zero_losses_and_ssim_1(photos, tmp_path):
    """Photos scored against themselves, with one of them (long side 512) as the painting."""
    big = tmp_path / "big"
    src = sorted(photos.iterdir())[0]
    write_image(big / "a.png", np.asarray(Image.fromarray(read_image(src)).resize((512, 384))))
    report = evaluate_quality(big, big, big / "a.png", crops=2)
    scores = report.pairs[0]
    assert scores.style_loss == pytest.approx(0, abs=1e-6)
    assert scores.style_rel == pytest.approx(0, abs=1e-9)
    assert scores.content_loss == 0 and scores.ssim == pytest.approx(1.0)
    assert math.isinf(scores.psnr) and scores.to_dict()["psnr"] is None

    result = runner.invoke(app, ["eval", "quality", "--content", str(photos), "--stylized",
                                 str(photos), "--style", str(big / "a.png"), "--crops", "2",
                                 "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["n"] == 2 and data["content_loss"]["mean"] == 0
    assert data["ssim"]["mean"] == pytest.approx(1.0) and data["psnr"]["mean"] is None


def _tool(shared_data, monkeypatch):
    path = shared_data.parent / "tools" / TOOL
    if not path.is_file():
        pytest.skip(f"{path} not found")
    monkeypatch.setenv("VGGMETRICS_DEVICE", "cpu")
    spec = importlib.util.spec_from_file_location("vggmetrics_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_matches_vggmetrics_pairs(photos, shared_data, tmp_path, monkeypatch):
    """Outputs named as `rtstyle image` names them, one at another size (resized for the
    content terms, as the tool does)."""
    wave = shared_data / "styles" / "hokusai_great_wave.jpg"
    outputs = tmp_path / "out"
    for i, photo in enumerate(sorted(photos.iterdir())):
        result = runner.invoke(app, ["image", str(photo), "--style", "ukiyoe", "-o",
                                     str(outputs / f"{photo.stem}_ukiyoe-lite.png"),
                                     "--device", "cpu", *(["--scale", "0.8"] if i else [])])
        assert result.exit_code == 0, result.output
    sheet = tmp_path / "sheet.png"
    result = runner.invoke(app, ["eval", "quality", "--content", str(photos), "--stylized",
                                 str(outputs), "--style", str(wave), "--crops", "3",
                                 "--device", "cpu", "--json", "--per-image",
                                 "--sheet", str(sheet)])
    assert result.exit_code == 0, result.output
    ours = json.loads(result.stdout)
    assert ours["n"] == 2 and ours["vgg_fid"] > 0 and ours["vgg_kid"] is not None
    assert read_image(sheet).shape[0] > 2 * 100

    tool = _tool(shared_data, monkeypatch)
    has_skimage = importlib.util.find_spec("skimage") is not None
    for row in ours["per_image"]:
        x, c = tool.load_rgb(row["stylized"]), tool.load_rgb(row["content"])
        xr = tool.resize(x, (c.shape[1], c.shape[0]))
        assert row["resized"] == (xr is not x)
        assert row["style_loss"] == pytest.approx(tool.style_loss(x, wave), rel=1e-4)
        assert row["content_loss"] == pytest.approx(tool.content_loss(x, c), rel=1e-4)
        if has_skimage:  # the tool's SSIM is scikit-image's
            theirs = tool.all_metrics(row["stylized"], row["content"], wave)
            assert row["ssim"] == pytest.approx(theirs["ssim"], abs=1e-5)
            assert row["style_rel"] == pytest.approx(theirs["style_rel"], rel=1e-4)


def test_frechet_and_kernel_distances_vanish_for_one_distribution():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(400, 8, generator=gen)
    b = torch.randn(400, 8, generator=gen)
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-8)
    assert abs(kernel_distance(a, b)) < 0.05 < kernel_distance(a, b + 1)
    assert frechet_distance(a, b + 1) == pytest.approx(8, rel=0.2)
