"""AdaIN (arbitrary style): odd sizes, strength, mixing by statistics, the trainer, the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import photos_and_paintings
from PIL import Image
from typer.testing import CliRunner

from rtstyle.cli import app
from rtstyle.errors import UserInputError, WeightsError
from rtstyle.models.adain import AdaINModel, adain, feature_stats
from rtstyle.models.loading import default_arbitrary_style, load_style_mix, load_stylizer
from rtstyle.models.mixing import MixedStylizer
from rtstyle.models.registry import resolve_style
from rtstyle.models.stylizer import blend_strength
from rtstyle.models.training.adain import AdaINConfig, train_adain
from rtstyle.models.vgg import load_vgg19
from rtstyle.models.weights import read_tensors, write_style_file

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _painting(path: Path, seed: int, size=(40, 56)) -> Path:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, 3)
    noise = rng.integers(-60, 60, (*size, 3))
    Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def adain_style(rtstyle_home, no_bundled) -> Path:
    """An AdaIN file with a random (seeded) decoder in the user styles, as training writes it:
    decoder only, the encoder left to the registry's default VGG-19."""
    torch.manual_seed(0)
    model = AdaINModel(encoder=load_vgg19())
    state = {k: v for k, v in model.state_dict().items() if k.startswith("decoder.")}
    spec = {"name": "adain", "tag": "v1", "arch": "adain", "arch_params": {},
            "input_range": "0_1", "license": "test", "style": {"painting": "any"}}
    return write_style_file(rtstyle_home / "styles" / "adain.v1.safetensors", state, spec)


@pytest.fixture
def paintings(tmp_path) -> list[Path]:
    return [_painting(tmp_path / f"painting{i}.png", i) for i in range(2)]


def test_any_painting_at_odd_sizes_keeps_the_size(adain_style, paintings):
    spec = default_arbitrary_style()
    assert spec.arch == "adain" and spec.needs_style_image
    stylizer = load_stylizer(str(paintings[0]))  # a painting as --style: the AdaIN model
    for h, w in ((37, 53), (5, 7), (64, 48)):
        x = torch.rand(1, 3, h, w)
        with torch.no_grad():
            y = stylizer(x)
        assert y.shape == x.shape and torch.isfinite(y).all()
        assert 0.0 <= float(y.min()) and float(y.max()) <= 1.0


def test_alpha_zero_is_the_reconstruction_and_strength_zero_is_the_photo(adain_style,
                                                                          paintings):
    stylizer = load_stylizer(str(paintings[0]))
    net = stylizer.net
    x = torch.rand(1, 3, 37, 53)
    with torch.no_grad():
        # the model's own α (library callers): 0 decodes the photo's features untouched
        assert torch.allclose(net(x, alpha=0.0), net.reconstruct(x), atol=1e-5)
        half = net.target(net.encode(x), alpha=0.5)
        full, none = net.target(net.encode(x), alpha=1.0), net.encode(x)
        assert torch.allclose(half, 0.5 * full + 0.5 * none, atol=1e-4)
        # --strength is rtstyle's one meaning: a pixel blend after the net (α stays 1)
        y = stylizer(x)
        assert torch.equal(blend_strength(x, y, 0.0), x)
        assert torch.equal(blend_strength(x, y, 1.0), y)


def test_strength_zero_from_the_cli_returns_the_photo(adain_style, paintings, tmp_path):
    photo = tmp_path / "photo.png"
    rgb = np.random.default_rng(3).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(photo)
    result = CliRunner().invoke(app, ["image", str(photo), "--style", str(paintings[0]),
                                      "--strength", "0", "-o", str(tmp_path / "out.png")])
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), rgb)


def test_mix_weights_interpolate_the_target_statistics(adain_style, paintings):
    net = load_stylizer(str(paintings[0])).net
    a, b = (torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(i))
            for i in (1, 2))
    content = net.encode(torch.rand(1, 3, 48, 64))
    with torch.no_grad():
        (ma, sa), (mb, sb) = net.style_stats(a), net.style_stats(b)
        net.set_style([a, b], [0.3, 0.7])
        assert torch.allclose(net.style_mean, 0.3 * ma + 0.7 * mb, atol=1e-5)
        assert torch.allclose(net.style_std, 0.3 * sa + 0.7 * sb, atol=1e-5)
        # ... which is the paper's feature interpolation Σ wᵢ·AdaIN(c, sᵢ)
        mixed = net.target(content)
        expected = 0.3 * adain(content, ma, sa) + 0.7 * adain(content, mb, sb)
        assert torch.allclose(mixed, expected, rtol=1e-4, atol=1e-3)
        # weights are scaled to sum to 1, and a zero weight drops that painting
        net.set_style([a, b], [3.0, 7.0])
        assert torch.allclose(net.style_mean, 0.3 * ma + 0.7 * mb, atol=1e-5)
        net.set_style([a, b], [1.0, 0.0])
        assert torch.equal(net.style_mean, ma) and torch.equal(net.style_std, sa)
        with pytest.raises(ValueError):
            net.set_style([a, b], [0.0, 0.0])


def test_two_paintings_mix_in_one_network(adain_style, paintings):
    mixed = load_style_mix([str(p) for p in paintings], [0.25, 0.75])
    assert not isinstance(mixed, MixedStylizer)  # one AdaIN pass, not two blended outputs
    single = load_stylizer(str(paintings[1]))
    weights_one = load_style_mix([str(p) for p in paintings], [0.0, 1.0])
    x = torch.rand(1, 3, 37, 53)
    with torch.no_grad():
        assert mixed(x).shape == x.shape
        assert torch.allclose(weights_one(x), single(x), atol=1e-5)
    result = CliRunner().invoke(app, [
        "image", str(paintings[0]), "--style", str(paintings[0]), "--style", str(paintings[1]),
        "--mix", "0.3,0.7", "-o", str(paintings[0].parent / "mixed.png"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["style"] == "painting0*0.3+painting1*0.7"


def test_feature_stats_survive_a_one_pixel_map():
    mean, std = feature_stats(torch.rand(2, 4, 1, 1))
    assert torch.isfinite(std).all() and mean.shape == (2, 4, 1, 1)


def test_a_sanet_file_is_refused_as_adain():
    from rtstyle.models.adain import adain_params

    with pytest.raises(WeightsError):
        adain_params({"decoder.1.weight": torch.zeros(1), "transform.merge_conv.weight": 0})


def test_train_adain_two_steps_loads_and_styles_an_unseen_painting(shared_data, tmp_path,
                                                                    rtstyle_home, no_bundled):
    photos, prints = photos_and_paintings(shared_data, tmp_path / "data", photos=3)
    held_out = sorted(p.name for p in prints.iterdir())[0]
    result = CliRunner().invoke(app, [
        "train", "adain", "--content", str(photos), "--styles", str(prints),
        "--holdout", held_out, "--size", "32", "--steps", "2", "--batch", "1",
        "--device", "cpu", "--precision", "fp32", "--sample-every", "0",
        "--checkpoint-every", "0", "--work-dir", str(tmp_path / "work"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["steps"] == 2
    assert set(summary["losses"]) == {"content", "style", "total"}
    assert all(math.isfinite(v) for v in summary["losses"].values())
    path = Path(summary["style"])
    assert all(k.startswith("decoder.") for k in read_tensors(path))
    spec = resolve_style("adain")
    assert spec.arch == "adain" and spec.needs_style_image
    assert spec.meta["training"]["data"]["held_out"] == [held_out]
    assert held_out not in spec.meta["training"]["data"]["styles"]
    assert (tmp_path / "work" / "samples" / "final.png").is_file()
    stylizer = load_stylizer(str(prints / held_out), style_size=64)  # never seen in training
    x = torch.rand(1, 3, 37, 53)
    with torch.no_grad():
        y = stylizer(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_a_misspelt_holdout_is_an_error(shared_data, tmp_path):
    photos, prints = photos_and_paintings(shared_data, tmp_path / "data", photos=1)
    cfg = AdaINConfig(content=photos, styles=prints, holdout=["no_such_painting.jpg"],
                      size=32, steps=1, batch=1, device="cpu", tensorboard=False,
                      work_dir=tmp_path / "work", out=tmp_path / "out")
    with pytest.raises(UserInputError, match="no_such_painting"):
        train_adain(cfg)


def test_an_official_decoder_imports_and_matches_the_reference(tmp_path, rtstyle_home,
                                                               no_bundled):
    """naoto0804/pytorch-AdaIN's decoder.pth (a bare Sequential) imports with --arch adain and
    computes the paper's decoder(AdaIN(vgg(c), vgg(s)))."""
    import upstream_reference as ref

    torch.manual_seed(0)
    torch.save(ref.sanet_decoder.state_dict(), tmp_path / "decoder.pth")  # AdaIN's decoder
    result = CliRunner().invoke(app, ["styles", "import", str(tmp_path / "decoder.pth"),
                                      "--arch", "adain", "--name", "adain-official"])
    assert result.exit_code == 0, result.output
    net = load_stylizer("adain-official", style_image=np.zeros((8, 8, 3), np.uint8)).net
    content, style = torch.rand(1, 3, 48, 64), torch.rand(1, 3, 40, 56)
    vgg = load_vgg19()
    with torch.no_grad():
        c = vgg(content, ("relu4_1",))["relu4_1"]
        s = vgg(style, ("relu4_1",))["relu4_1"]
        (cm, cs), (sm, ss) = ref.calc_mean_std(c), ref.calc_mean_std(s)
        expected = ref.sanet_decoder((c - cm) / cs * ss + sm)
        torch.testing.assert_close(net(content, style), expected, rtol=1e-4, atol=1e-4)


def test_a_painting_as_style_in_video_goes_through_adain(adain_style, paintings, tmp_path):
    out = tmp_path / "v.mp4"
    result = CliRunner().invoke(app, [
        "video", "lavfi:testsrc=size=38x26:rate=5:duration=0.4", str(out),
        "--style", str(paintings[0]), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["frames_written"] == report["frames_read"] == 2
    assert report["size"] == [38, 26] and out.is_file()


def test_a_resumed_adain_run_ends_with_the_weights_of_an_uninterrupted_one(shared_data,
                                                                             tmp_path):
    # the GPU recipe calibrates, then resumes: the two must be one run
    photos, prints = photos_and_paintings(shared_data, tmp_path / "data", photos=2)

    def cfg(work: str, steps: int, resume: bool = False) -> AdaINConfig:
        return AdaINConfig(content=photos, styles=prints, name=f"a-{work}", size=32,
                           steps=steps, batch=1, device="cpu", precision="fp32", resume=resume,
                           sample_every=0, checkpoint_every=0, tensorboard=False, prefetch=2,
                           work_dir=tmp_path / work, out=tmp_path / "out")

    straight = train_adain(cfg("straight", 3))
    train_adain(cfg("resumed", 2))
    seen = []
    resumed = train_adain(cfg("resumed", 3, resume=True), lambda step, total, losses:
                          seen.append(step))
    assert resumed.steps == 3 and seen == [3]  # only the last step ran again
    a, b = read_tensors(straight.style_path), read_tensors(resumed.style_path)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_adain_exports_to_onnx_with_dynamic_sizes(adain_style, paintings, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    result = CliRunner().invoke(app, ["export", "onnx", str(tmp_path / "a.onnx"), "--style",
                                      "adain", "--style-image", str(paintings[0])])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a.onnx").is_file()
