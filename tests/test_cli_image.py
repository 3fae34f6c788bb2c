"""`rtstyle styles` / `styles import` / `image` end to end through Typer's runner."""

import json

import numpy as np
import torch
import upstream_reference as ref
from PIL import Image
from typer.testing import CliRunner

from rtstyle.cli import app

runner = CliRunner()


def _photo(path, w=67, h=41, seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _import_johnson(tmp_path, name="mosaic"):
    torch.manual_seed(0)
    torch.save(ref.TransformerNet().state_dict(), tmp_path / f"{name}.pth")
    return runner.invoke(app, ["styles", "import", str(tmp_path / f"{name}.pth"), "--name", name,
                               "--arch", "johnson", "--json"])


def test_empty_listing_explains_how_to_get_styles(rtstyle_home, no_bundled):
    result = runner.invoke(app, ["styles"])
    assert result.exit_code == 0, result.output
    assert "No styles are installed" in result.output
    assert "rtstyle styles import" in result.output and "rtstyle train" in result.output


def test_import_list_and_stylize(tmp_path, rtstyle_home):
    result = _import_johnson(tmp_path)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["full_name"] == "mosaic.v1"

    listing = runner.invoke(app, ["styles", "--json"])
    assert listing.exit_code == 0, listing.output
    names = [s["full_name"] for s in json.loads(listing.stdout)["styles"]]
    assert "mosaic.v1" in names

    src = _photo(tmp_path / "photo.png", 67, 41)
    out = tmp_path / "out.png"
    result = runner.invoke(app, ["image", str(src), "--style", "mosaic", "-o", str(out),
                                 "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outputs"] == [str(out)]
    with Image.open(out) as img:
        assert img.size == (67, 41)
        assert np.asarray(img).std() > 0


def test_folder_of_images_and_size(tmp_path, rtstyle_home, tiny_style_file):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        _photo(folder / f"p{i}.jpg", 80, 60, seed=i)
    outdir = tmp_path / "styled"
    result = runner.invoke(app, ["image", str(folder), "--style", str(tiny_style_file),
                                 "-o", str(outdir), "--size", "40x-1"])
    assert result.exit_code == 0, result.output
    outs = sorted(outdir.iterdir())
    assert [p.name for p in outs] == ["p0_tiny.jpg", "p1_tiny.jpg", "p2_tiny.jpg"]
    with Image.open(outs[0]) as img:
        assert img.size == (40, 30)


def test_unknown_style_exit_2_lists_names(tmp_path, rtstyle_home, tiny_style_file):
    _import_johnson(tmp_path, "mosaic")
    src = _photo(tmp_path / "p.png")
    result = runner.invoke(app, ["image", str(src), "--style", "monett"])
    assert result.exit_code == 2
    said = " ".join(result.output.replace("│", " ").split())
    assert "unknown style 'monett';" in said and "choose from:" in said
    assert "mosaic" in result.output
    assert "Traceback" not in result.output


def test_corrupt_weights_exit_2_no_output(tmp_path, rtstyle_home, tiny_style_file):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(tiny_style_file.read_bytes()[:300])
    src = _photo(tmp_path / "p.png")
    out = tmp_path / "o.png"
    result = runner.invoke(app, ["image", str(src), "--style", str(bad), "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert "bad.safetensors" in result.output
    assert not out.exists() and not list(tmp_path.glob(".o*"))


def test_unreadable_image_exit_2_no_output(tmp_path, rtstyle_home, tiny_style_file):
    src = tmp_path / "broken.jpg"
    src.write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "o.jpg"
    result = runner.invoke(app, ["image", str(src), "--style", str(tiny_style_file), "-o", str(out)])
    assert result.exit_code == 2
    assert "broken.jpg: not a readable image" in result.output
    assert not out.exists()


def test_existing_output_needs_overwrite(tmp_path, rtstyle_home, tiny_style_file):
    src = _photo(tmp_path / "p.png")
    out = tmp_path / "o.png"
    out.write_bytes(b"keep me")
    args = ["image", str(src), "--style", str(tiny_style_file), "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert out.read_bytes() == b"keep me"
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0
    assert out.read_bytes() != b"keep me"


def test_wrong_arch_import_exit_2(tmp_path, rtstyle_home):
    torch.save(ref.ResnetGenerator(ngf=4, n_blocks=1).state_dict(), tmp_path / "g.pth")
    result = runner.invoke(app, ["styles", "import", str(tmp_path / "g.pth"), "--name", "g"])
    assert result.exit_code == 2
    assert "not a Johnson transformer net" in result.output


def test_missing_cuda_is_a_clear_error(tmp_path, rtstyle_home, tiny_style_file):
    if torch.cuda.is_available():
        return
    src = _photo(tmp_path / "p.png")
    result = runner.invoke(app, ["image", str(src), "--style", str(tiny_style_file),
                                 "--device", "cuda"])
    assert result.exit_code == 2 and "no CUDA GPU" in result.output


def test_painting_as_style_uses_installed_sanet(tmp_path, rtstyle_home, no_bundled):
    src = _photo(tmp_path / "p.png", 67, 41)
    painting = _photo(tmp_path / "painting.png", 50, 40, seed=5)
    no_model = runner.invoke(app, ["image", str(src), "--style", str(painting)])
    assert no_model.exit_code == 2 and "rtstyle train sanet" in no_model.output

    torch.manual_seed(0)
    torch.save(ref.sanet_decoder.state_dict(), tmp_path / "decoder.pth")
    torch.save(ref.Transform(512).state_dict(), tmp_path / "transformer.pth")
    imported = runner.invoke(app, ["styles", "import", str(tmp_path / "decoder.pth"), "--arch",
                                   "sanet", "--name", "sanet", "--transformer",
                                   str(tmp_path / "transformer.pth")])
    assert imported.exit_code == 0, imported.output

    needs_image = runner.invoke(app, ["image", str(src), "--style", "sanet"])
    assert needs_image.exit_code == 2 and "--style-image" in needs_image.output

    out = tmp_path / "o.png"
    result = runner.invoke(app, ["image", str(src), "--style", str(painting), "-o", str(out)])
    assert result.exit_code == 0, result.output
    with Image.open(out) as img:
        assert img.size == (67, 41)
