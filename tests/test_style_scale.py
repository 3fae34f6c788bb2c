"""`--style-scale`: the generator on a smaller frame, guided upsampling back to full size.

Tiny sizes and pointwise stand-in "generators" where the network does not matter; the CLI
tests use a tiny real style file, the eager backend and 5 frames.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from typer.testing import CliRunner
from video_helpers import probe

from rtstyle.cli import app
from rtstyle.errors import UserInputError
from rtstyle.models.guided import downsample, guided_upsample
from rtstyle.models.style_scale import (
    AUTO,
    MIN_AUTO_SCALE,
    ScaledStylizer,
    describe,
    parse_style_scale,
    resolve_scale,
    scaled_size,
    with_style_scale,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()


def recolour(x: torch.Tensor) -> torch.Tensor:
    """A pointwise stand-in for a style net: channels swapped, contrast lowered."""
    return 0.2 + 0.6 * x[:, [1, 2, 0]]


class Recorder:
    """A stand-in network that remembers the sizes it was given."""

    def __init__(self, fn=recolour):
        self.fn = fn
        self.sizes: list[tuple[int, int]] = []

    def __call__(self, x):
        self.sizes.append(tuple(x.shape[-2:]))
        return self.fn(x)


@pytest.mark.parametrize("scale", [0.5, 0.37])
@pytest.mark.parametrize("hw", [(37, 53), (21, 16), (1, 9)])
def test_the_output_keeps_the_input_size_and_the_net_sees_the_scaled_one(scale, hw):
    net = Recorder()
    x = torch.rand(2, 3, *hw)
    y = ScaledStylizer(net, scale)(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert net.sizes == [scaled_size(*hw, scale)]
    assert 0.0 <= float(y.min()) and float(y.max()) <= 1.0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_batches(dtype):
    x = torch.rand(3, 3, 24, 31, generator=torch.Generator().manual_seed(0))  # noise: worst
    y = ScaledStylizer(recolour, 0.5)(x.to(dtype))
    assert y.dtype == dtype and y.shape == x.shape
    reference = ScaledStylizer(recolour, 0.5)(x)
    assert (y.float() - reference).abs().max() < 0.03


def step_edge(width: int = 61, height: int = 24, at: int = 31) -> torch.Tensor:
    """Dark blue left of column `at`, light orange from it on: a sharp edge in every channel."""
    x = torch.empty(1, 3, height, width)
    x[:, :, :, :at] = torch.tensor([0.1, 0.2, 0.5]).view(1, 3, 1, 1)
    x[:, :, :, at:] = torch.tensor([0.9, 0.6, 0.2]).view(1, 3, 1, 1)
    return x


def edge_gradient(y: torch.Tensor) -> float:
    """The largest horizontal step between neighbouring pixels (all channels)."""
    return float((y[..., 1:] - y[..., :-1]).abs().amax())


@pytest.mark.parametrize("scale", [0.5, 0.37])
def test_guided_upsampling_keeps_a_step_edge_sharp_where_bilinear_blurs_it(scale):
    x = step_edge()
    guided = ScaledStylizer(recolour, scale)(x)
    small = downsample(x, scaled_size(*x.shape[-2:], scale))
    bilinear = F.interpolate(recolour(small), size=x.shape[-2:], mode="bilinear",
                             align_corners=False)
    sharp = recolour(x)                      # the net at full size: a one-pixel step
    assert edge_gradient(guided) >= 0.9 * edge_gradient(sharp)
    assert edge_gradient(guided) >= 2.5 * edge_gradient(bilinear)
    assert (guided - sharp).abs().max() < 0.05


def test_strokes_over_a_flat_area_are_upsampled_as_painted_not_averaged_away():
    """Where the input is flat the output is no function of it (a brush texture): guided
    upsampling must leave that texture as bilinear upsampling does."""
    x = torch.full((1, 3, 32, 48), 0.5)
    texture = torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(0))
    out = guided_upsample(x, downsample(x, (16, 24)), texture)
    bilinear = F.interpolate(texture, size=(32, 48), mode="bilinear", align_corners=False)
    assert torch.allclose(out, bilinear, atol=1e-5)


def test_colour_guide_agrees_on_a_luminance_edge():
    x = step_edge()
    small = downsample(x, (12, 30))
    gray = guided_upsample(x, small, recolour(small))
    colour = guided_upsample(x, small, recolour(small), color=True)
    assert (gray - colour).abs().max() < 0.05


def test_scale_one_is_no_step_at_all():
    net = Recorder()
    assert with_style_scale(net, 1.0) is net
    assert with_style_scale(net, "1") is net
    x = torch.rand(1, 3, 17, 23)
    assert torch.equal(ScaledStylizer(net, 1.0)(x), recolour(x))
    assert net.sizes == [(17, 23)]


def test_scales_above_one_run_the_net_larger_and_come_back_to_size():
    net = Recorder()
    y = ScaledStylizer(net, 2)(torch.rand(1, 3, 9, 14))
    assert net.sizes == [(18, 28)] and y.shape == (1, 3, 9, 14)


def test_auto_brings_the_short_side_to_the_training_size():
    assert resolve_scale(AUTO, 512, 683, train_size=256) == pytest.approx(0.5)
    assert resolve_scale(AUTO, 720, 1280, train_size=256) == pytest.approx(256 / 720)
    assert resolve_scale(AUTO, 720, 1280, train_size=128) == MIN_AUTO_SCALE
    assert resolve_scale(AUTO, 100, 200, train_size=256) == 1.0
    net = Recorder()
    ScaledStylizer(net, AUTO, train_size=64)(torch.rand(1, 3, 128, 200))
    assert net.sizes == [(64, 100)]


def test_auto_with_a_side_aims_the_short_side_at_that_many_pixels():
    assert parse_style_scale(" Auto:144 ") == "auto:144"
    assert resolve_scale("auto:144", 360, 640, train_size=192) == pytest.approx(0.4)
    assert resolve_scale("auto:288", 720, 1280, train_size=192) == pytest.approx(0.4)
    assert resolve_scale("auto:144", 720, 1280) == MIN_AUTO_SCALE  # 0.2: below the floor
    assert resolve_scale("auto:1000", 360, 640) == 1.0  # never above the frame
    assert describe("auto:144", 360, 640, 192) == "auto:144: 0.4 (generator at 256×144)"
    net = Recorder()
    ScaledStylizer(net, "auto:32", train_size=64)(torch.rand(1, 3, 128, 200))
    assert net.sizes == [(32, 50)]


@pytest.mark.parametrize("bad", ["0", "-0.5", "4.5", "nan", "inf", "big", 0, -1.0, [1], {}])
def test_bad_scales_are_user_errors(bad):
    with pytest.raises(UserInputError, match="--style-scale"):
        parse_style_scale(bad)


@pytest.mark.parametrize("bad", ["auto:", "auto:x", "auto:8", "auto:5000", "auto:1.5",
                                 "auto:-144"])
def test_bad_auto_sides_say_what_n_is(bad):
    with pytest.raises(UserInputError, match=r"auto:N needs N, the short side"):
        parse_style_scale(bad)


def test_parse_style_scale():
    assert parse_style_scale("0.5") == 0.5 and parse_style_scale(" AUTO ") == AUTO
    assert parse_style_scale(None) == 1.0 and parse_style_scale(4) == 4.0


def test_the_engine_builds_for_the_scaled_size(tiny_style_file):
    """Every backend benefits: the engine (its buckets, cache and guard) only sees the small
    frame, warm-up included."""
    from rtstyle.models.loading import load_stylizer
    from rtstyle.realtime.engine import InferenceEngine

    stylizer = load_stylizer(str(tiny_style_file))
    engine = InferenceEngine(stylizer, "cpu", backend="eager")
    scaled = ScaledStylizer(engine, 0.5)
    x = torch.rand(1, 3, 64, 96)
    scaled.warmup(x)
    assert list(engine.warmup_seconds) == [(1, 3, 32, 48)]
    assert scaled(x).shape == x.shape
    assert scaled.active.label == "eager/fp32"          # the engine's own attributes
    assert list(engine.warmup_seconds) == [(1, 3, 32, 48)]


def _photo(path, w=75, h=53):
    rng = np.random.default_rng(0)
    image = np.zeros((h, w, 3), np.uint8)
    image[:, w // 2:] = (230, 160, 40)
    image += rng.integers(0, 20, (h, w, 3), dtype=np.uint8)
    Image.fromarray(image).save(path)
    return path


def test_cli_image_style_scale(tmp_path, rtstyle_home, tiny_style_file):
    src = _photo(tmp_path / "p.png")
    outs = {}
    for name, extra in (("plain", []), ("one", ["--style-scale", "1"]),
                        ("half", ["--style-scale", "0.5"])):
        outs[name] = tmp_path / f"{name}.png"
        result = runner.invoke(app, ["image", str(src), "-o", str(outs[name]), "--style",
                                     str(tiny_style_file), "--device", "cpu", *extra])
        assert result.exit_code == 0, result.output
    arrays = {k: np.asarray(Image.open(v)) for k, v in outs.items()}
    assert arrays["half"].shape == arrays["plain"].shape == (53, 75, 3)
    assert np.array_equal(arrays["one"], arrays["plain"])
    assert not np.array_equal(arrays["half"], arrays["plain"])


@pytest.mark.parametrize("bad", ["0", "-1", "5", "x"])
def test_cli_bad_style_scale_is_one_line_and_exit_2(tmp_path, rtstyle_home, tiny_style_file,
                                                     bad):
    src = _photo(tmp_path / "p.png")
    out = tmp_path / "o.png"
    result = runner.invoke(app, ["image", str(src), "-o", str(out), "--style",
                                 str(tiny_style_file), f"--style-scale={bad}"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --style-scale must be"), lines
    assert not out.exists()
    result = runner.invoke(app, ["video", "lavfi:testsrc=size=64x48:rate=25:duration=1",
                                 str(tmp_path / "v.mp4"), "--style", str(tiny_style_file),
                                 f"--style-scale={bad}"])
    assert result.exit_code == 2 and "--style-scale" in result.output


def test_cli_video_style_scale(tmp_path, tiny_style_file):
    out = tmp_path / "out.mp4"
    result = runner.invoke(app, ["video", "lavfi:testsrc=size=96x64:rate=25:duration=1",
                                 str(out), "--style", str(tiny_style_file), "--style-scale",
                                 "0.5", "--max-frames", "5", "--backend", "eager", "--device",
                                 "cpu", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["frames_written"] == 5
    assert report["style_scale"] == "0.5 (generator at 48×32)"
    info = probe(out)
    assert (info.width, info.height, info.frames) == (96, 64, 5)


def _recommending(src, dst, scale):
    from rtstyle.models.weights import read_spec, read_tensors, write_style_file

    write_style_file(dst, read_tensors(src), {**read_spec(src), "video_style_scale": scale},
                     dtype=None)
    return dst


def test_a_style_files_video_style_scale_is_the_video_default_not_the_stills(tmp_path,
                                                                             tiny_style_file):
    from rtstyle.models.registry import resolve_style

    made = _recommending(tiny_style_file, tmp_path / "coarse.v1.safetensors", 0.5)
    assert resolve_style(str(made)).summary()["video_style_scale"] == 0.5
    common = ["--max-frames", "3", "--backend", "eager", "--device", "cpu", "--json"]
    reports = {}
    for label, extra in (("recommended", []), ("off", ["--style-scale", "1"])):
        result = runner.invoke(app, ["video", "lavfi:testsrc=size=96x64:rate=25:duration=1",
                                     str(tmp_path / f"{label}.mp4"), "--style", str(made),
                                     *extra, *common])
        assert result.exit_code == 0, result.output
        reports[label] = json.loads(result.stdout)["style_scale"]
    assert reports == {"recommended": "0.5 (generator at 48×32)", "off": None}
    # a still is painted at full size whatever the file recommends for video
    photo = tmp_path / "p.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)).save(photo)
    outputs = []
    for style in (tiny_style_file, made):
        out = tmp_path / f"{style.stem}.png"
        result = runner.invoke(app, ["image", str(photo), "-o", str(out), "--style", str(style),
                                     "--device", "cpu"])
        assert result.exit_code == 0, result.output
        outputs.append(np.asarray(Image.open(out)))
    assert np.array_equal(*outputs)


def test_an_unreadable_video_style_scale_in_a_file_is_a_clear_error(tmp_path, tiny_style_file):
    made = _recommending(tiny_style_file, tmp_path / "odd.v1.safetensors", "huge")
    result = runner.invoke(app, ["video", "lavfi:testsrc=size=64x48:rate=25:duration=1",
                                 str(tmp_path / "v.mp4"), "--style", str(made), "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert "video_style_scale 'huge' is not a style scale" in result.output


def test_cli_webcam_style_scale_auto(tmp_path, tiny_style_file):
    """A live run: `auto` with a style that says nothing of its training size aims at 256."""
    out = tmp_path / "live.mp4"
    result = runner.invoke(app, ["webcam", "--camera", "lavfi:testsrc=size=640x360:rate=25",
                                 "--output", str(out), "--style", str(tiny_style_file),
                                 "--style-scale", "auto", "--max-frames", "3", "--backend",
                                 "eager", "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["frames_written"] >= 1          # live: a slow frame may be dropped
    assert report["style_scale"] == "auto: 0.711 (generator at 455×256)"
