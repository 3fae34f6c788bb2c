"""`--preserve-color`: the photo's colours kept, the style's light and texture taken, in stills,
video and the preview keys."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rtstyle.cli import app
from rtstyle.cli.common import ColorMode
from rtstyle.images import image_to_tensor, read_image, resize_max_side, write_image
from rtstyle.models.color import COLOR_MODES, keep_luminance, rgb_to_ycbcr
from rtstyle.realtime.controls import ViewState, apply_key
from rtstyle.realtime.runs import StyleSettings, VideoRun

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()
# Stated tolerances, in 8-bit levels: after 8-bit rounding, and on the few pixels where a bright
# stroke has no room in the RGB cube for the photo's saturation (there the hue stays and the
# saturation gives way), the chroma of a `luminance` output stays within 1.5 levels of the
# photo's on average; the style's own output is many levels away.
CHROMA_TOL = 1.5 / 255
LUMA_CHANGE = 8 / 255


def ycc(rgb_u8: np.ndarray) -> torch.Tensor:
    return rgb_to_ycbcr(image_to_tensor(rgb_u8))[0]


@pytest.fixture
def photo(shared_data, tmp_path):
    src = sorted((shared_data / "content" / "eval").glob("*.jpg"))[3]
    path = tmp_path / "photo.png"
    write_image(path, resize_max_side(read_image(src), 96))
    return path


def _image(photo, out, *args):
    result = runner.invoke(app, ["image", str(photo), "-o", str(out), "--style", "monet",
                                 "--device", "cpu", *args])
    assert result.exit_code == 0, result.output
    return ycc(read_image(out))


def test_still_keeps_the_photo_chroma_and_takes_the_stylized_luminance(photo, tmp_path):
    p = ycc(read_image(photo))
    styled = _image(photo, tmp_path / "plain.png")
    kept = _image(photo, tmp_path / "lum.png", "--preserve-color", "luminance")
    assert (styled[1:] - p[1:]).abs().mean() > 5 * CHROMA_TOL      # the style recolours
    assert (kept[1:] - p[1:]).abs().mean() <= CHROMA_TOL
    assert (kept[0] - p[0]).abs().mean() > LUMA_CHANGE
    assert (kept[0] - styled[0]).abs().mean() <= 1 / 255            # the stylized luminance

    hist = _image(photo, tmp_path / "hist.png", "--preserve-color", "histogram")
    # mean and covariance of the colours become the photo's: mean chroma within 1 level
    assert (hist[1:].mean((1, 2)) - p[1:].mean((1, 2))).abs().max() <= 1 / 255
    assert (hist[0] - p[0]).abs().mean() > LUMA_CHANGE


def test_still_gatys_keeps_the_photo_chroma(photo, shared_data, tmp_path):
    out = tmp_path / "g.png"
    result = runner.invoke(app, ["image", str(photo), "--method", "gatys", "--style",
                                 str(shared_data / "styles" / "munch_the_scream.jpg"),
                                 "--steps", "3", "--preserve-color", "luminance", "-o", str(out),
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    p, kept = ycc(read_image(photo)), ycc(read_image(out))
    assert (kept[1:] - p[1:]).abs().mean() <= CHROMA_TOL
    assert (kept[0] - p[0]).abs().mean() > LUMA_CHANGE / 4


def _photo_clip(path, photo, frames=4):
    """A real photo panning by a pixel a frame, as x264 4:2:0 (real colours, unlike testsrc)."""
    rgb = read_image(photo)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[i:i + 48, i:i + 64]),
                                               format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def test_video_keeps_the_input_chroma(photo, tmp_path):
    clip = _photo_clip(tmp_path / "in.mp4", photo)
    with VideoRun(clip, tmp_path / "unused.mp4",
                  StyleSettings(styles=("monet",), device="cpu", backend="eager",
                                preserve_color="luminance")) as run:
        with av.open(str(clip)) as container:
            frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
        x = image_to_tensor(frame)
        with torch.inference_mode():
            y = run.process(x)
    assert (rgb_to_ycbcr(y)[0, 1:] - rgb_to_ycbcr(x)[0, 1:]).abs().mean() <= 0.2 / 255
    assert (rgb_to_ycbcr(y)[0, 0] - rgb_to_ycbcr(x)[0, 0]).abs().mean() > LUMA_CHANGE

    # The whole path, through x264 4:2:0 both ways: chroma within the codec's own error.
    out = tmp_path / "out.mp4"
    result = runner.invoke(app, ["video", str(clip), str(out), "--style", "monet",
                                 "--preserve-color", "luminance", "--no-smooth", "--device",
                                 "cpu", "--backend", "eager", "--json"])
    assert result.exit_code == 0, result.output
    with av.open(str(clip)) as a, av.open(str(out)) as b:
        for fa, fb in zip(a.decode(video=0), b.decode(video=0), strict=True):
            ca = ycc(fa.to_ndarray(format="rgb24"))
            cb = ycc(fb.to_ndarray(format="rgb24"))
            assert (ca[1:] - cb[1:]).abs().mean() <= 3 / 255


def test_luminance_keeps_brightness_and_hue_exactly_even_out_of_gamut():
    """Random colours under random brightness: many pairs leave the RGB cube."""
    gen = torch.Generator().manual_seed(0)
    photo, stylized = torch.rand(2, 3, 32, 24, generator=gen), torch.rand(2, 3, 32, 24, generator=gen)
    out, p, s = (rgb_to_ycbcr(t) for t in (keep_luminance(photo, stylized), photo, stylized))
    assert (out[:, 0] - s[:, 0]).abs().max() < 1e-5
    scale = (out[:, 1:] * p[:, 1:]).sum(1) / (p[:, 1:] ** 2).sum(1)
    assert scale.min() > 0 and scale.max() < 1 + 1e-4 and (scale < 0.99).any()
    cross = out[:, 1] * p[:, 2] - out[:, 2] * p[:, 1]     # 0: the same hue direction
    assert cross.abs().max() < 1e-5


def test_c_key_cycles_colour_preservation():
    state = ViewState()
    seen = []
    for _ in range(3):
        state = apply_key(state, ord("c"))
        seen.append(state.preserve_color)
    assert seen == ["luminance", "histogram", None]


def test_cli_names_are_the_library_modes():
    assert tuple(m.value for m in ColorMode) == COLOR_MODES
    result = runner.invoke(app, ["image", "x.jpg", "--style", "monet", "--preserve-color",
                                 "sepia"])
    assert result.exit_code == 2
