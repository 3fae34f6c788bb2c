"""Upstream checkpoints (exact upstream keys and shapes) import and give upstream's numbers."""

import pickle
from pathlib import Path

import pytest
import torch
import upstream_reference as ref

from rtstyle.errors import WeightsError
from rtstyle.models.loading import import_style, load_stylizer
from rtstyle.models.registry import resolve_style
from rtstyle.models.vgg import load_vgg19


def _randomize(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Non-default affine/bias values so a swapped or missing tensor changes the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return module.eval()


def test_pytorch_examples_checkpoint_with_legacy_keys(tmp_path, rtstyle_home):
    upstream = _randomize(ref.TransformerNet(), 1)
    state = upstream.state_dict()
    # Checkpoints saved by old PyTorch carry instance-norm running stats; they must be dropped.
    state["in1.running_mean"] = torch.zeros(32)
    state["in1.running_var"] = torch.ones(32)
    path = tmp_path / "mosaic.pth"
    torch.save(state, path)

    spec = import_style(path, name="mosaic", arch="johnson")
    assert spec.arch_params == {"channels": 32, "n_res": 5}
    stylizer = load_stylizer("mosaic")
    x = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        expected = (upstream(x * 255) / 255).clamp(0, 1)
        torch.testing.assert_close(stylizer(x), expected, rtol=0, atol=1e-5)


def test_cyclegan_latest_net_G(tmp_path, rtstyle_home):
    upstream = _randomize(ref.ResnetGenerator(ngf=16, n_blocks=6), 2)
    path = tmp_path / "latest_net_G.pth"
    torch.save(upstream.state_dict(), path)
    spec = import_style(path, name="monet-cg", arch="cyclegan")
    assert spec.arch_params == {"ngf": 16, "n_blocks": 6}
    assert resolve_style("monet-cg").weights == spec.weights
    x = torch.rand(2, 3, 64, 48)
    with torch.no_grad():
        expected = ((upstream(x * 2 - 1) + 1) / 2).clamp(0, 1)
        torch.testing.assert_close(load_stylizer("monet-cg")(x), expected, rtol=0, atol=1e-5)


def test_cyclegan_nine_blocks_detected(tmp_path, rtstyle_home):
    path = tmp_path / "g.pth"
    torch.save({"state_dict": ref.ResnetGenerator(ngf=8, n_blocks=9).state_dict()}, path)
    assert import_style(path, name="nine", arch="cyclegan").arch_params["n_blocks"] == 9


def test_sanet_decoder_and_transformer_files(tmp_path, rtstyle_home):
    decoder = _randomize(ref.sanet_decoder, 3)
    transform = _randomize(ref.Transform(512), 4)
    torch.save(decoder.state_dict(), tmp_path / "decoder_iter_500000.pth")
    torch.save(transform.state_dict(), tmp_path / "transformer_iter_500000.pth")
    spec = import_style(tmp_path / "decoder_iter_500000.pth", name="sanet", arch="sanet",
                        transformer=tmp_path / "transformer_iter_500000.pth")
    assert spec.needs_style_image

    vgg = load_vgg19()
    content = torch.rand(1, 3, 64, 80)
    style_u8 = torch.randint(0, 256, (64, 64, 3), dtype=torch.uint8)
    style = style_u8.permute(2, 0, 1).unsqueeze(0).float() / 255
    with torch.no_grad():
        c = vgg(content, ["relu4_1", "relu5_1"])
        s = vgg(style, ["relu4_1", "relu5_1"])
        expected = decoder(transform(c["relu4_1"], s["relu4_1"], c["relu5_1"], s["relu5_1"]))
        expected = expected.clamp(0, 1)
        got = load_stylizer("sanet", style_image=style_u8.numpy())(content)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)


def test_wrong_architecture_is_one_clear_error(tmp_path, rtstyle_home):
    path = tmp_path / "g.pth"
    torch.save(ref.ResnetGenerator(ngf=8, n_blocks=2).state_dict(), path)
    with pytest.raises(WeightsError, match="not a Johnson"):
        import_style(path, name="x", arch="johnson")
    assert not any((rtstyle_home / "styles").iterdir())


def test_shape_mismatch_names_the_tensor(tmp_path, rtstyle_home):
    state = ref.TransformerNet().state_dict()
    state["res2.conv1.conv2d.weight"] = torch.zeros(128, 128, 5, 5)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match="res2.conv1.conv2d.weight"):
        import_style(tmp_path / "bad.pth", name="bad", arch="johnson")


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickle_with_code_is_refused(tmp_path, rtstyle_home, capsys):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as fh:
        pickle.dump({"conv1.conv2d.weight": Payload()}, fh)
    with pytest.raises(WeightsError, match="refused"):
        import_style(path, name="evil", arch="johnson")
    assert "this must never run" not in capsys.readouterr().out


def test_non_allowlisted_global_is_named(tmp_path, rtstyle_home):
    path = tmp_path / "custom.pth"
    torch.save({"weights": ref.TransformerNet().state_dict(), "opt": Path("x")}, path)
    with pytest.raises(WeightsError, match="pathlib"):
        import_style(path, name="custom", arch="johnson")


def test_truncated_checkpoint(tmp_path, rtstyle_home):
    path = tmp_path / "cut.pth"
    torch.save(ref.TransformerNet().state_dict(), path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(WeightsError, match="cut.pth"):
        import_style(path, name="cut", arch="johnson")
