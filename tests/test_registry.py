"""Name -> spec resolution: tags, aliases, user files, duplicates, bad files."""

import json

import pytest
from conftest import make_tiny_style

from rtstyle.errors import UnknownStyleError, WeightsError
from rtstyle.models import registry
from rtstyle.models.loading import load_stylizer
from rtstyle.models.registry import StyleRegistry, discover, resolve_style, spec_from_file
from rtstyle.models.weights import read_spec, sha256_file


def test_user_styles_found_and_default_tag(rtstyle_home, no_bundled):
    styles = rtstyle_home / "styles"
    make_tiny_style(styles / "ink.v1.safetensors", name="ink", tag="v1", seed=1)
    make_tiny_style(styles / "ink.v2.safetensors", name="ink", tag="v2", seed=2)
    assert discover().names() == ["ink"]
    assert resolve_style("ink.v2").tag == "v2"
    assert resolve_style("ink.v1").tag == "v1"
    assert resolve_style("ink").origin == "user"


def test_unknown_style_lists_valid_names(rtstyle_home, no_bundled):
    make_tiny_style(rtstyle_home / "styles" / "a.v1.safetensors", name="alpha")
    make_tiny_style(rtstyle_home / "styles" / "b.v1.safetensors", name="beta")
    with pytest.raises(UnknownStyleError) as info:
        resolve_style("gamma")
    assert "unknown style 'gamma'; choose from: alpha, beta" == str(info.value)


def test_duplicate_name_raises(tmp_path):
    reg = StyleRegistry()
    spec = spec_from_file(make_tiny_style(tmp_path / "x.safetensors", name="x"))
    reg.register(spec)
    with pytest.raises(WeightsError, match="defined twice"):
        reg.register(spec)


def test_alias_yields_to_real_name(tmp_path):
    reg = StyleRegistry()
    lite = spec_from_file(make_tiny_style(tmp_path / "l.safetensors", name="monet-lite"))
    reg.register(lite)
    reg.add_alias("monet", "monet-lite.v1")
    assert reg.get("monet") is lite
    assert "monet" in reg.names()
    assert reg.aliases_for(lite) == ["monet"]
    real = spec_from_file(make_tiny_style(tmp_path / "m.safetensors", name="monet"))
    reg.register(real)
    assert reg.get("monet") is real
    assert reg.aliases_for(lite) == []


def test_bundled_manifest_with_checksum(tmp_path, monkeypatch, rtstyle_home):
    assets = tmp_path / "assets"
    path = make_tiny_style(assets / "sea.v1.safetensors", name="sea")
    manifest = {"format": 1, "styles": [
        {"file": path.name, "name": "sea", "tag": "v1", "sha256": sha256_file(path),
         "default": True, "aliases": ["ocean"]}]}
    (assets / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(registry, "ASSETS_DIR", assets)
    monkeypatch.setattr(registry, "MANIFEST", assets / "manifest.json")
    assert resolve_style("ocean").origin == "bundled"
    load_stylizer("sea")
    path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(WeightsError, match="checksum"):
        load_stylizer("sea")


def test_broken_user_file_does_not_hide_others(rtstyle_home, no_bundled):
    make_tiny_style(rtstyle_home / "styles" / "good.v1.safetensors", name="good")
    (rtstyle_home / "styles" / "broken.v1.safetensors").write_bytes(b"garbage")
    found = discover()
    assert found.names() == ["good"]
    assert len(found.problems) == 1 and "broken.v1.safetensors" in found.problems[0]


def test_file_without_metadata_is_rejected(tmp_path):
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(1)}, str(path))
    with pytest.raises(WeightsError, match="not an rtstyle style file"):
        read_spec(path)


def test_spec_records_metadata(tiny_style_file):
    spec = resolve_style(str(tiny_style_file))
    assert spec.origin == "file"
    assert spec.arch == "johnson" and spec.arch_params == {"channels": 8, "n_res": 1}
    assert spec.summary()["painting"] == "none (test weights)"


def test_bundled_styles_load_and_stylize(rtstyle_home, shared_data):
    """Every manifest entry: checksum matches, network builds, output differs from the input."""
    import torch

    specs = [s for s in discover().specs() if s.origin == "bundled"]
    if not specs:
        pytest.skip("no bundled styles in this build")
    x = torch.rand(1, 3, 41, 67)
    painting = shared_data / "styles" / "vangogh_olive_trees.jpg"
    for spec in specs:
        stylizer = load_stylizer(spec, style_image=painting if spec.needs_style_image else None,
                                 style_size=128)
        with torch.no_grad():
            y = stylizer(x)
        assert y.shape == x.shape and torch.isfinite(y).all(), spec.full_name
        assert (y - x).abs().mean() > 0.02, spec.full_name
        assert spec.meta.get("style", {}).get("painting"), spec.full_name


def test_bundled_defaults_are_trained_for_stability(rtstyle_home):
    """`--style monet` gets the multi-style mid net trained with the temporal term (so auto
    smoothing is lowpass) and its stroke scale for video; the lite tier stays by its names."""
    from rtstyle.models.registry import resolve_style
    from rtstyle.models.training.bundled import PAINTINGS

    if not any(s.origin == "bundled" for s in discover().specs()):
        pytest.skip("no bundled styles in this build")
    files = set()
    for index, painting in enumerate(PAINTINGS):
        spec = resolve_style(painting.style)
        assert (spec.name, spec.arch, spec.style_index) == (painting.style, "johnson-mid", index)
        assert load_stylizer(spec).steady_generator, spec.full_name
        assert spec.meta["training"]["temporal_weight"] > 0
        assert str(spec.video_style_scale).startswith("auto")
        files.add(spec.weights)
        lite = resolve_style(painting.lite_name)
        assert (lite.tag, lite.arch) == ("v3", "johnson-lite")
        assert load_stylizer(lite).steady_generator, lite.full_name
    assert len(files) == 1  # one network for all seven
