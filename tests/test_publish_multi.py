"""Publishing a multi-style file of the bundled paintings: it takes the plain names, the lite
tier keeps its own names, superseded files leave the package, each style gets a full-size
gallery picture that the web app finds."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from rtstyle.images import read_image
from rtstyle.models import registry
from rtstyle.models.training.bundled import GALLERY_WIDTH, parse_scale_table, publish_multi
from rtstyle.models.weights import read_spec
from tests.conftest import make_tiny_style
from tests.test_mid_multistyle import _write_multi


@pytest.fixture
def assets(tmp_path, monkeypatch):
    """A package assets folder as it was before the multi-style release: the real bundled
    monet-lite v3 (the lite tier) answering to `monet`, and a superseded v1 beside it."""
    folder = tmp_path / "assets"
    folder.mkdir()
    real = {e["file"]: e for e in json.loads(registry.MANIFEST.read_text())["styles"]}
    v3 = {**real["monet-lite.v3.safetensors"], "default": True, "aliases": ["monet"]}
    for file in (v3["file"], v3["gallery"]):
        shutil.copy(registry.ASSETS_DIR / file, folder / file)
    make_tiny_style(folder / "monet-lite.v1.safetensors", name="monet-lite", tag="v1")
    shutil.copy(folder / v3["gallery"], folder / "monet-lite.v1.jpg")
    v1 = {"file": "monet-lite.v1.safetensors", "name": "monet-lite", "tag": "v1",
          "default": False, "aliases": [], "gallery": "monet-lite.v1.jpg"}
    (folder / "manifest.json").write_text(json.dumps({"format": 1, "styles": [v1, v3]}))
    monkeypatch.setattr(registry, "ASSETS_DIR", folder)
    monkeypatch.setattr(registry, "MANIFEST", folder / "manifest.json")
    return folder


def test_the_published_file_owns_the_plain_names(assets, shared_data, tmp_path, rtstyle_home):
    from rtstyle.server.catalog import _gallery_files

    assert registry.resolve_style("monet").name == "monet-lite"  # the alias, before
    made = tmp_path / "paintings7.v1.safetensors"
    _write_multi(made, names=("monet", "ukiyoe"))
    photo = sorted((shared_data / "content" / "eval").glob("*.jpg"))[0]
    dst = publish_multi(made, shared_data / "styles", photo, assets, tag="v4",
                        video_style_scale="auto")

    monet, ukiyoe = registry.resolve_style("monet"), registry.resolve_style("ukiyoe")
    assert (monet.weights, monet.style_index, monet.tag) == (dst, 0, "v4")
    assert monet.video_style_scale == ukiyoe.video_style_scale == "auto"
    assert (ukiyoe.weights, ukiyoe.style_index) == (dst, 1)
    lite = registry.resolve_style("monet-lite")
    assert (lite.tag, lite.arch) == ("v3", "johnson-lite")
    # v1 is superseded: gone from the package and from the manifest
    assert not list(assets.glob("monet-lite.v1.*"))
    manifest = json.loads((assets / "manifest.json").read_text())["styles"]
    assert sorted(e["file"] for e in manifest) == ["monet-lite.v3.safetensors",
                                                  "pair.v4.safetensors"]
    with pytest.raises(Exception, match="v1"):
        registry.resolve_style("monet-lite.v1")
    # one full-size picture per style: photo | painting | output, each panel GALLERY_WIDTH wide
    pictures = _gallery_files()
    for name in ("monet", "ukiyoe"):
        rgb = read_image(pictures[f"{name}.v4"])
        assert rgb.shape[1] == 3 * GALLERY_WIDTH
        assert rgb.shape[0] >= GALLERY_WIDTH * 0.6
    # each picture shows its own painting in the middle panel, the same photo on the left
    a, b = (torch.from_numpy(read_image(pictures[f"{n}.v4"])).float() for n in ("monet", "ukiyoe"))
    middle = slice(GALLERY_WIDTH, 2 * GALLERY_WIDTH)
    assert (a[:, middle] - b[:, middle]).abs().mean() > 10
    assert (a[:, :GALLERY_WIDTH] - b[:, :GALLERY_WIDTH]).abs().mean() < 1  # JPEG noise only


def test_a_gpu_tier_published_later_takes_only_its_own_names(assets, shared_data, tmp_path,
                                                               rtstyle_home):
    """The GPU recipe's standard nets, bundled after the multi-style file: each plain name it
    brings moves to the standard net; the file's other names, and its own tag, stay."""
    from rtstyle.models.training.recipe import publish

    made = tmp_path / "pair.v1.safetensors"
    _write_multi(made, names=("monet", "ukiyoe"))
    photo = sorted((shared_data / "content" / "eval").glob("*.jpg"))[0]
    multi = publish_multi(made, shared_data / "styles", photo, assets, tag="v4")
    gpu_tier = tmp_path / "gpu_tier"
    gpu_tier.mkdir()
    make_tiny_style(gpu_tier / "monet.v1.safetensors", name="monet", tag="v1")
    assert publish(gpu_tier, assets) == ["monet.v1.safetensors"]

    assert registry.resolve_style("monet").weights == assets / "monet.v1.safetensors"
    assert registry.resolve_style("monet.v4").weights == multi  # still there, by its tag
    ukiyoe = registry.resolve_style("ukiyoe")
    assert (ukiyoe.weights, ukiyoe.tag) == (multi, "v4")
    entry = next(e for e in json.loads((assets / "manifest.json").read_text())["styles"]
                 if e["file"] == multi.name)
    assert entry["default"] == ["ukiyoe"]


def test_a_file_of_other_paintings_is_refused(assets, shared_data, tmp_path):
    made = tmp_path / "other.v1.safetensors"
    _write_multi(made, names=("alpha", "beta"))
    photo = sorted((shared_data / "content" / "eval").glob("*.jpg"))[0]
    with pytest.raises(ValueError, match="unknown"):
        publish_multi(made, shared_data / "styles", photo, assets, tag="v4")
    assert not (assets / "other.v4.safetensors").exists()


def test_a_style_can_get_its_own_video_style_scale(assets, shared_data, tmp_path,
                                                  rtstyle_home):
    """`--video-style-scale auto --video-style-scale ukiyoe=auto:24`: a table in the spec;
    each style's video runs use its own entry, the others "*"."""
    from typer.testing import CliRunner

    from rtstyle.cli import app

    assert parse_scale_table(["auto", "ukiyoe=auto:24"]) == {"*": "auto", "ukiyoe": "auto:24"}
    assert parse_scale_table(["0.5"]) == "0.5" and parse_scale_table([]) is None
    made = tmp_path / "paintings7.v1.safetensors"
    _write_multi(made, names=("monet", "ukiyoe"))
    photo = sorted((shared_data / "content" / "eval").glob("*.jpg"))[0]
    with pytest.raises(ValueError, match="scream"):
        publish_multi(made, shared_data / "styles", photo, assets, tag="v4",
                      video_style_scale={"*": "auto", "scream": 0.5})
    with pytest.raises(Exception, match="auto:N"):
        publish_multi(made, shared_data / "styles", photo, assets, tag="v4",
                      video_style_scale={"*": "auto", "ukiyoe": "auto:x"})
    dst = publish_multi(made, shared_data / "styles", photo, assets, tag="v4",
                        video_style_scale=parse_scale_table(["auto", "ukiyoe=AUTO:24"]))
    monet, ukiyoe = registry.resolve_style("monet"), registry.resolve_style("ukiyoe")
    assert (monet.video_style_scale, ukiyoe.video_style_scale) == ("auto", "auto:24")
    reports = {}
    for name in ("monet", "ukiyoe"):
        result = CliRunner().invoke(app, [
            "video", "lavfi:testsrc=size=96x64:rate=25:duration=1", str(tmp_path / f"{name}.mp4"),
            "--style", name, "--max-frames", "2", "--backend", "eager", "--device", "cpu",
            "--json"])
        assert result.exit_code == 0, result.output
        reports[name] = json.loads(result.stdout)["style_scale"]
    assert reports == {"monet": None,  # auto: the 64-line frame is under the training size
                       "ukiyoe": "auto:24: 0.375 (generator at 36×24)"}
    # one value for every style is written as that value
    again = publish_multi(made, shared_data / "styles", photo, assets, tag="v5",
                          video_style_scale={"*": "auto", "monet": "auto", "ukiyoe": "auto"})
    assert again != dst and read_spec(again)["video_style_scale"] == "auto"


def test_the_clip_frame_grid_shows_the_frame_and_each_style(shared_data, tmp_path):
    from rtstyle.models.training.bundled import clip_frame_grid

    made = tmp_path / "pair.v1.safetensors"
    _write_multi(made, names=("monet", "ukiyoe", "scream"))
    clip = shared_data / "video" / "bbb_cut_640x360_10s_audio.mp4"
    grid = clip_frame_grid(made, ["monet", "ukiyoe", "scream"], clip, frame_index=5)
    assert grid.shape == (2 * 360, 2 * 640, 3)  # the frame + 3 styles, two per row, full size
    frame, first = grid[:360, :640].astype(int), grid[:360, 640:].astype(int)
    assert abs(frame - first).mean() > 5  # the styled tile is not the frame
    # the tiles show what `rtstyle video` makes by default: the file's video_style_scale
    from rtstyle.models.weights import read_spec, read_tensors, write_style_file

    # (a random net paints a nearly flat black: spread and lift its output first)
    tensors = read_tensors(made)
    tensors["deconv3.conv2d.weight"] = tensors["deconv3.conv2d.weight"] * 300
    tensors["deconv3.conv2d.bias"] = tensors["deconv3.conv2d.bias"] + 128
    tiles = {}
    for scale in (1.0, 0.5):
        file = tmp_path / f"lifted{scale:g}.v1.safetensors"
        write_style_file(file, tensors, {**read_spec(made), "video_style_scale": scale},
                         dtype=None)
        tiles[scale] = clip_frame_grid(file, ["monet"], clip, frame_index=5)[:, 640:]
    assert tiles[1.0].std() > 5 and abs(tiles[1.0].astype(int) - tiles[0.5]).mean() > 1


def test_a_bundled_adain_model_serves_any_painting_right_after_install(assets, tmp_path,
                                                                       rtstyle_home):
    """No model in the user's folder: `--style painting.jpg` uses the bundled AdaIN file."""
    from typer.testing import CliRunner

    from rtstyle.cli import app
    from rtstyle.models.adain import AdaINModel
    from rtstyle.models.loading import default_arbitrary_style
    from rtstyle.models.training.bundled import publish_model
    from rtstyle.models.vgg import load_vgg19
    from rtstyle.models.weights import write_style_file
    from tests.test_adain import _painting

    torch.manual_seed(0)
    model = AdaINModel(encoder=load_vgg19())
    state = {k: v for k, v in model.state_dict().items() if k.startswith("decoder.")}
    made = write_style_file(tmp_path / "adain.v1.safetensors", state,
                            {"name": "adain", "tag": "v1", "arch": "adain", "arch_params": {},
                             "input_range": "0_1", "license": "test"})
    with pytest.raises(Exception, match="arbitrary-style"):
        default_arbitrary_style()
    publish_model(made, assets, default_strength=0.75)
    bundled = default_arbitrary_style()
    assert bundled.weights == assets / "adain.v1.safetensors" and bundled.default_strength == 0.75
    photo, painting = _painting(tmp_path / "photo.png", 7, (37, 53)), \
        _painting(tmp_path / "art.png", 8)
    outs = {}
    for label, extra in (("default", []), ("0.75", ["--strength", "0.75"]),
                         ("1", ["--strength", "1"])):
        outs[label] = tmp_path / f"out-{label}.png"
        result = CliRunner().invoke(app, ["image", str(photo), str(outs[label]), "--style",
                                          str(painting), *extra])
        assert result.exit_code == 0, result.output
    default, three_quarters, full = (read_image(outs[k]).astype(int) for k in ("default", "0.75", "1"))
    assert default.shape == (37, 53, 3)
    # no --strength: the model's recommended 0.75, which --strength 1 overrides
    assert (default == three_quarters).all() and abs(default - full).mean() > 1
