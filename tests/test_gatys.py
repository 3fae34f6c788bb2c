"""`rtstyle image --method gatys` and style mixing, with the real VGG-19 at tiny sizes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rtstyle.cli import app
from rtstyle.images import image_to_tensor, read_image, resize_max_side, write_image
from rtstyle.models.gatys import GatysConfig, gatys_stylize, level_sizes
from rtstyle.models.vgg import load_vgg19

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()


@pytest.fixture(scope="module")
def wave(shared_data):
    return shared_data / "styles" / "hokusai_great_wave.jpg"


@pytest.fixture
def photo(shared_data, tmp_path):
    """A real photo at an odd tiny size (67×50)."""
    src = sorted((shared_data / "content" / "eval").glob("*.jpg"))[0]
    path = tmp_path / "photo.png"
    write_image(path, resize_max_side(read_image(src), 67))
    return path


def _gatys(args: list[str]) -> dict:
    result = runner.invoke(app, ["image", *map(str, args), "--method", "gatys", "--device",
                                 "cpu", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_gatys_lowers_its_loss_at_every_step_and_keeps_the_size(photo, wave, tmp_path):
    out = tmp_path / "out.png"
    report = _gatys([photo, "--style", wave, "--steps", "6", "-o", out])
    assert report["outputs"] == [str(out)]
    assert read_image(out).shape == read_image(photo).shape == (50, 67, 3)

    x = image_to_tensor(read_image(photo))
    result = gatys_stylize(x, [image_to_tensor(read_image(wave))], config=GatysConfig(steps=6))
    losses = result.losses[-1]
    assert len(losses) == 7 and all(b <= a for a, b in zip(losses, losses[1:], strict=False)), losses
    assert losses[-1] < 0.5 * losses[0]
    assert result.image.shape == x.shape


def test_init_fast_starts_lower_than_the_photo(photo, wave, tmp_path):
    """The bundled ukiyoe net was trained on the Great Wave: its output is a better start."""
    runs = {init: _gatys([photo, "--style", wave, "--steps", "1", "--init", init,
                          "-o", tmp_path / f"init_{init}.png"])["results"][0]
            for init in ("photo", "fast")}
    assert runs["fast"]["loss_initial"] < 0.7 * runs["photo"]["loss_initial"]


def test_init_fast_skips_the_coarse_level(shared_data, wave, tmp_path):
    """From a net's output the optimisation runs at full size only (FAST_INIT_DEFAULTS), where
    a photo start goes coarse to fine."""
    photo = tmp_path / "photo.png"
    write_image(photo, resize_max_side(read_image(sorted(
        (shared_data / "content" / "eval").glob("*.jpg"))[0]), 420))
    runs = {init: _gatys([photo, "--style", wave, "--steps", "1", "--init", init,
                          "-o", tmp_path / f"init_{init}.png"])["results"][0]
            for init in ("photo", "fast")}
    assert len(runs["photo"]["sizes"]) == 2
    assert runs["fast"]["sizes"] == [runs["photo"]["sizes"][-1]]


def test_mixing_with_weight_0_or_1_is_the_single_style(photo, wave, shared_data):
    scream = shared_data / "styles" / "munch_the_scream.jpg"
    x = image_to_tensor(read_image(photo))
    paintings = {p: image_to_tensor(resize_max_side(read_image(p), 96)) for p in (wave, scream)}
    vgg = load_vgg19().use_caffe_borders()
    config = GatysConfig(steps=2)

    def run(names, mix=None):
        return gatys_stylize(x, [paintings[n] for n in names], mix=mix, config=config,
                             vgg=vgg).image

    assert torch.equal(run([wave, scream], [1, 0]), run([wave]))
    assert torch.equal(run([wave, scream], [0, 1]), run([scream]))
    assert not torch.equal(run([wave, scream], [0.5, 0.5]), run([wave]))


def test_feed_forward_mix_with_weight_0_or_1_is_the_single_style(photo, tmp_path):
    def stylize(name, *args):
        out = tmp_path / f"{name}.png"
        result = runner.invoke(app, ["image", str(photo), "-o", str(out), "--device", "cpu",
                                     *args])
        assert result.exit_code == 0, result.output
        return read_image(out)

    # two files, so the mix blends outputs (one multi-style file's styles blend their norms)
    two = ("--style", "monet-lite", "--style", "ukiyoe-lite")
    ukiyoe = stylize("ukiyoe", "--style", "ukiyoe-lite")
    monet = stylize("monet", "--style", "monet-lite")
    assert np.array_equal(stylize("m01", *two, "--mix", "0,1"), ukiyoe)
    assert np.array_equal(stylize("m10", *two, "--mix", "1,0"), monet)
    half = stylize("half", *two).astype(float)
    assert np.abs(half - (ukiyoe.astype(float) + monet) / 2).max() <= 1.0


def test_bad_mix_and_gatys_without_a_painting_are_user_errors(photo, wave):
    result = runner.invoke(app, ["image", str(photo), "--style", str(wave), "--method",
                                 "gatys", "--style", str(wave), "--mix", "1,2,3"])
    assert result.exit_code == 2 and "--mix has 3 weights" in result.output
    result = runner.invoke(app, ["image", str(photo), "--style", "monet", "--method", "gatys"])
    assert result.exit_code == 2 and "paintings" in result.output


def test_coarse_to_fine_levels():
    assert level_sizes(1024, 768) == [(256, 192), (512, 384), (1024, 768)]
    assert level_sizes(512, 384) == [(256, 192), (512, 384)]
    assert level_sizes(67, 50) == [(67, 50)]


def _layouts(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The same picture as a contiguous, a channels-last, a transposed-back and a sliced tensor."""
    wide = torch.zeros(1, 3, x.shape[-2], 2 * x.shape[-1])
    wide[..., ::2] = x
    return {"contiguous": x,
            "channels_last": x.contiguous(memory_format=torch.channels_last),
            "permuted": x.transpose(-1, -2).contiguous().transpose(-1, -2),
            "sliced": wide[..., ::2]}


def test_lbfgs_takes_a_picture_of_any_memory_layout(photo, wave):
    """Regression: L-BFGS flattens gradients with `grad.view(-1)`, which fails on a picture that
    is not contiguous (a channels-last net output, a transposed or sliced tensor) at any level
    of the pyramid; `pixel_variable` hands it a contiguous copy and `lbfgs` refuses others."""
    from rtstyle.models.deep_photo import DeepPhotoConfig, deep_photo_stylize
    from rtstyle.models.lbfgs import lbfgs, pixel_variable

    x = image_to_tensor(read_image(photo))
    painting = image_to_tensor(resize_max_side(read_image(wave), 48))
    vgg = load_vgg19().use_caffe_borders()
    gatys_config = GatysConfig(steps=2, levels=2, precision="fp32")
    dpst_config = DeepPhotoConfig(steps=2, levels=2, max_side=64)
    reference = {}
    for name, picture in _layouts(x).items():
        assert name == "contiguous" or not picture.is_contiguous()
        for init in ("photo", picture.flip(-1)):  # a start picture in the same layout
            out = gatys_stylize(picture, [painting.contiguous(memory_format=torch.channels_last)],
                                config=gatys_config, init=init, vgg=vgg).image
            key = "gatys " + ("photo" if isinstance(init, str) else "image")
            reference.setdefault(key, out)
            assert out.shape == x.shape and torch.allclose(out, reference[key], atol=1e-3), name
        out = deep_photo_stylize(picture, painting.transpose(-1, -2), config=dpst_config,
                                 vgg=vgg).image
        reference.setdefault("deep photo", out)
        assert out.shape == x.shape and torch.allclose(out, reference["deep photo"], atol=1e-3)

    variable = pixel_variable(x.contiguous(memory_format=torch.channels_last))
    assert variable.is_contiguous() and variable.is_leaf and variable.requires_grad
    with pytest.raises(ValueError, match="contiguous"):
        lbfgs(x.transpose(-1, -2).requires_grad_(True), history_size=5)


def test_photoreal_finishes_a_mix_of_nets(photo, wave, tmp_path):
    """--photoreal after mixed nets: the locally affine fit runs on the blended output, so a
    mix of weight 1 and 0 is the single style with --photoreal."""
    def stylize(name, *args):
        out = tmp_path / f"{name}.png"
        result = runner.invoke(app, ["image", str(photo), "-o", str(out), "--device", "cpu",
                                     "--photoreal", *args])
        assert result.exit_code == 0, result.output
        return read_image(out)

    monet = stylize("monet", "--style", "monet")
    assert np.array_equal(stylize("m10", "--style", "monet", "--style", "ukiyoe",
                                  "--mix", "1,0"), monet)
    half = stylize("half", "--style", "monet", "--style", "ukiyoe")
    assert half.shape == monet.shape and not np.array_equal(half, monet)

    result = runner.invoke(app, ["image", str(photo), "--style", str(wave), "--style",
                                 str(wave), "--photoreal", "-o", str(tmp_path / "dpst.png")])
    assert result.exit_code == 2 and "takes one reference" in result.output
