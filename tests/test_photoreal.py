"""Photoreal mode in real time: the fast colour guided filter, the reference-photo style, and
`--photoreal` through `rtstyle video` and `rtstyle image` (real clips, codecs, tiny weights)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner
from video_helpers import probe, write_clip

from rtstyle.cli import app
from rtstyle.images import (
    image_to_tensor,
    read_image,
    resize_max_side,
    tensor_to_image,
    write_image,
)
from rtstyle.models.guided import box_filter
from rtstyle.models.photoreal import (
    ColorStatisticsTransfer,
    PhotorealSettings,
    guided_coefficients,
    lab_moments,
    lab_to_rgb,
    locally_affine,
    rgb_to_lab,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PHOTO = "content/eval/sunhays80_lighthouse_sun_akeqnxvbhbktajfl.jpg"
OTHER_PHOTO = "content/eval/sunhays80_volcano_sun_bcduirgbwfrrefxx.jpg"
TOOL = Path(__file__).resolve().parents[2] / "shared" / "tools" / "affine_residual.py"


def photo(shared_data: Path, side: int = 160) -> torch.Tensor:
    return image_to_tensor(resize_max_side(read_image(shared_data / PHOTO), side))


def affine_residual(guide: torch.Tensor, output: torch.Tensor, radius: int = 3,
                    eps: float = 1e-4) -> float:
    """The shared tool's measure, with our guided filter: RMS of the output minus its best
    local affine fit from the guide (no coarse step: every window at full size)."""
    a, b = guided_coefficients(guide, output, radius, eps)
    n, _, h, w = guide.shape
    fit = (a.view(n, 3, 3, h, w) * guide.unsqueeze(1)).sum(2) + b
    return float((output - fit).pow(2).mean().sqrt())


def test_box_filter_is_the_mean_over_the_window_inside_the_image():
    x = torch.arange(5 * 7, dtype=torch.float32).view(1, 1, 5, 7)
    got = box_filter(x, 1)
    assert got[0, 0, 2, 3] == pytest.approx(float(x[0, 0, 1:4, 2:5].mean()))
    assert got[0, 0, 0, 0] == pytest.approx(float(x[0, 0, :2, :2].mean()))


def test_an_affinely_recoloured_photo_is_reproduced_and_scores_zero(shared_data):
    """A photo recoloured by a smooth, spatially varying affine map is already photoreal: the
    step returns it (nearly) unchanged, and its residual is ~0."""
    x = photo(shared_data)
    _, _, h, w = x.shape
    ramp = torch.linspace(0, 1, w).view(1, 1, 1, w)
    m = torch.tensor([[0.6, 0.3, 0.0], [0.1, 0.5, 0.2], [0.2, 0.0, 0.7]])
    recoloured = torch.einsum("ij,njhw->nihw", m, x) * (0.8 + 0.2 * ramp) + 0.1 * ramp
    target = recoloured.clamp(0, 1)
    out = locally_affine(x, target, PhotorealSettings(radius=4, eps=1e-4))
    assert (out - target).abs().mean() < 0.01
    assert affine_residual(x, target) < 0.003
    assert affine_residual(x, out) < 0.003


def test_a_painterly_frame_becomes_locally_affine_and_keeps_its_colours(shared_data):
    """A bundled style (real weights) paints strokes; the step keeps its colours only."""
    from rtstyle.models.loading import load_stylizer

    x = photo(shared_data, 200)
    with torch.inference_mode():
        painted = load_stylizer("ukiyoe")(x)
        out = locally_affine(x, painted)
    assert affine_residual(x, painted) > 0.02
    assert affine_residual(x, out) < 0.01
    # The colours follow the painted frame: mean colour within a few levels.
    assert (out.mean((2, 3)) - painted.mean((2, 3))).abs().max() < 0.03


@pytest.mark.skipif(not TOOL.is_file(), reason=f"shared tool not found at {TOOL}")
def test_the_shared_tool_agrees(shared_data, tmp_path):
    """`affine_residual.py INPUT OUTPUT` (OpenCV, reflect borders) on files we wrote."""
    from rtstyle.models.loading import load_stylizer

    x = photo(shared_data, 240)
    with torch.inference_mode():
        out = locally_affine(x, load_stylizer("ukiyoe")(x))
    write_image(tmp_path / "in.png", tensor_to_image(x))
    write_image(tmp_path / "out.png", tensor_to_image(out))
    result = subprocess.run([sys.executable, str(TOOL), str(tmp_path / "in.png"),
                             str(tmp_path / "out.png")], capture_output=True, text=True,
                            check=True)
    assert json.loads(result.stdout)["residual_rms"] <= 0.01


def test_lab_round_trip_and_statistics_transfer(shared_data):
    x = photo(shared_data)
    assert torch.allclose(lab_to_rgb(rgb_to_lab(x)), x, atol=2e-4)
    reference = image_to_tensor(resize_max_side(read_image(shared_data / OTHER_PHOTO), 120))
    y = ColorStatisticsTransfer(reference)(x)
    mean_ref, std_ref = lab_moments(reference)
    mean_out, std_out = lab_moments(y)
    # Clamping to the RGB cube moves the moments a little.
    assert torch.allclose(mean_out, mean_ref, atol=2.0)
    assert torch.allclose(std_out, std_ref, rtol=0.15)


def test_bad_photoreal_settings_are_user_errors():
    from rtstyle.errors import UserInputError

    with pytest.raises(UserInputError):
        PhotorealSettings(radius=0)
    with pytest.raises(UserInputError):
        PhotorealSettings(eps=0.0)


def test_video_photoreal_keeps_every_frame_the_timing_and_the_audio(tiny_style_file,
                                                                    tmp_path):
    src = write_clip(tmp_path / "in.mp4", frames=10, width=96, height=64, audio_rate=44100)
    out = tmp_path / "out.mp4"
    result = CliRunner().invoke(app, ["video", str(src), str(out), "--style",
                                      str(tiny_style_file), "--backend", "eager", "--device",
                                      "cpu", "--photoreal", "--photoreal-radius", "4",
                                      "--photoreal-eps", "0.001", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["finishing"] == "photoreal r=4 eps=0.001"
    a, b = probe(src), probe(out)
    assert b.frames == a.frames == report["frames_written"]
    assert [p * b.time_base for p in b.pts] == [p * a.time_base for p in a.pts]
    assert b.audio_channels == a.audio_channels
    assert b.audio_seconds == pytest.approx(a.audio_seconds, abs=0.05)


def test_a_reference_photo_as_the_style_recolours_video(shared_data, tmp_path):
    """`--style ref.jpg --photoreal`: no network; the frames take the reference's colours."""
    import av

    src = write_clip(tmp_path / "in.mp4", frames=6, width=96, height=64)
    reference = tmp_path / "ref.png"
    write_image(reference, np.full((32, 48, 3), (200, 90, 40), np.uint8)
                + np.random.default_rng(0).integers(0, 30, (32, 48, 3), dtype=np.uint8))
    out = tmp_path / "out.mp4"
    result = CliRunner().invoke(app, ["video", str(src), str(out), "--style", str(reference),
                                      "--photoreal", "--device", "cpu", "--no-smooth"])
    assert result.exit_code == 0, result.output
    with av.open(str(out)) as c:
        frame = next(iter(c.decode(video=0))).to_ndarray(format="rgb24").astype(float)
    r, g, b = frame.reshape(-1, 3).mean(0)
    assert r > g > b  # the orange reference, not the input's blue-green gradient


def test_image_photoreal_fast_path(shared_data, tmp_path):
    src = tmp_path / "p.png"
    write_image(src, tensor_to_image(photo(shared_data, 120)))
    plain, real = tmp_path / "plain.png", tmp_path / "real.png"
    for target, extra in ((plain, []), (real, ["--photoreal"])):
        result = CliRunner().invoke(app, ["image", str(src), "-o", str(target), "--style",
                                          "ukiyoe", "--device", "cpu", *extra])
        assert result.exit_code == 0, result.output
    x = image_to_tensor(read_image(src))
    assert affine_residual(x, image_to_tensor(read_image(plain))) > 0.02
    assert affine_residual(x, image_to_tensor(read_image(real))) < 0.01


def test_webcam_photoreal_with_a_reference_photo_to_a_file(shared_data, tmp_path):
    """Live: `rtstyle webcam --style ref.jpg --photoreal` (lavfi as the camera, a file out)."""
    out = tmp_path / "live.mp4"
    result = CliRunner().invoke(app, ["webcam", "--camera", "lavfi:testsrc=size=96x72:rate=25",
                                      "--output", str(out), "--style",
                                      str(shared_data / OTHER_PHOTO), "--photoreal",
                                      "--max-frames", "5", "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["frames_written"] == 5 and report["finishing"].startswith("photoreal")
    assert probe(out).frames == 5
