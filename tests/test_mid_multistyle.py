"""The mid net (`johnson-mid`) and multi-style files (conditional instance norm): frame sizes,
one-hot and blended styles, registry names, switching without rebuilds, mixing, training."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from rtstyle.models.architectures import build_generator, get_arch
from rtstyle.models.mid import ConditionalInstanceNorm2d, MidTransformerNet
from rtstyle.models.stylizer import Stylizer
from rtstyle.models.weights import write_style_file

TINY = {"channels": 4, "n_res": 1, "kernel": 3, "out_kernel": 3}


def _randomize_norms(net: MidTransformerNet, seed: int = 0) -> MidTransformerNet:
    """Distinct (γ, β) rows per style: the defaults (1, 0) would make every style alike."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, ConditionalInstanceNorm2d):
                m.weight.copy_(1 + 0.5 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.5 * torch.randn(m.bias.shape, generator=gen))
    return net.eval()


def _multi(n_styles: int = 2, seed: int = 0, **params) -> MidTransformerNet:
    torch.manual_seed(seed)
    return _randomize_norms(MidTransformerNet(**{**TINY, **params}, n_styles=n_styles), seed)


def _single_from(multi: MidTransformerNet, weights: list[float]) -> MidTransformerNet:
    """A one-style net with the multi net's convolutions and norms at w·Γ, w·B."""
    params = {k: v for k, v in get_arch("johnson-mid").infer_params(multi.state_dict()).items()
              if k != "n_styles"}
    single = MidTransformerNet(**params).eval()
    w = torch.tensor(weights)
    state = {k: (w @ v if v.dim() == 2 and k.rsplit(".", 1)[0].split(".")[-1].startswith("in")
                 else v) for k, v in multi.state_dict().items()}
    single.load_state_dict(state)
    return single


def _photo(h: int = 29, w: int = 43, seed: int = 1) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed)) * 255


@pytest.mark.parametrize("size", [(9, 13), (7, 5), (33, 17), (37, 54), (64, 48)])
@pytest.mark.parametrize("n_styles", [1, 3])
def test_mid_net_keeps_the_frame_size(size, n_styles):
    net = build_generator("johnson-mid", {**TINY, "n_styles": n_styles}).eval()
    h, w = size
    with torch.no_grad():
        assert net(torch.rand(2, 3, h, w)).shape == (2, 3, h, w)


def test_default_mid_net_is_registered_with_full_resolution_strokes():
    info = get_arch("johnson-mid")
    net = build_generator("johnson-mid")
    assert info.input_range == "0_255" and info.stride_multiple == 4
    assert info.infer_params(net.state_dict()) == info.default_params()
    # no pixel shuffle: the last convolution emits RGB at full resolution
    assert net.deconv3.conv2d.out_channels == 3
    # one style: the norms are nn.InstanceNorm2d's keys and shapes
    assert net.state_dict()["in1.weight"].shape == (net.channels,)


def test_one_hot_equals_the_single_style_net():
    multi = _multi(2)
    x = _photo()
    for index in range(2):
        single = _single_from(multi, [1.0 if i == index else 0.0 for i in range(2)])
        multi.set_style_weights(index)
        with torch.no_grad():
            torch.testing.assert_close(multi(x), single(x), rtol=1e-5, atol=1e-3)


def test_a_blend_interpolates_the_norm_parameters():
    multi = _multi(2)
    x = _photo()
    with torch.no_grad():
        multi.set_style_weights([0.5, 0.5])
        blended = multi(x)
        torch.testing.assert_close(blended, _single_from(multi, [0.5, 0.5])(x),
                                   rtol=1e-5, atol=1e-3)
        ends = [multi(x, torch.tensor(w)) for w in ([1.0, 0.0], [0.0, 1.0])]
    norm = multi.in1
    gamma, _ = norm.affine(torch.tensor([0.5, 0.5]))
    lo, hi = norm.weight.min(0).values, norm.weight.max(0).values
    assert bool(((gamma >= lo - 1e-6) & (gamma <= hi + 1e-6)).all())
    # a different picture from either style, and closer to each than they are to each other
    apart = (ends[0] - ends[1]).abs().mean()
    assert (blended - ends[0]).abs().mean() < apart and (blended - ends[1]).abs().mean() < apart
    # weights are normalised: (2, 2) is the same blend
    multi.set_style_weights([2.0, 2.0])
    assert multi.style_weights.tolist() == [0.5, 0.5]


def test_a_style_per_image_equals_one_call_per_style():
    multi = _multi(3)
    x = torch.cat([_photo(seed=s) for s in range(3)])
    onehot = torch.eye(3)[[2, 0, 1]]
    with torch.no_grad():
        batched = multi(x, onehot)
        for i in range(3):
            torch.testing.assert_close(batched[i:i + 1], multi(x[i:i + 1], onehot[i]),
                                       rtol=1e-5, atol=1e-3)


def test_the_exported_graph_takes_the_style_as_an_input():
    """What AOTInductor and ONNX compile: a style change is an input, not a new graph."""
    stylizer = Stylizer(_multi(2), "0_255")
    x = torch.rand(1, 3, 24, 32)
    program = torch.export.export(stylizer, (x, *stylizer.graph_inputs()))
    assert len(program.graph_signature.user_inputs) == 2
    module = program.module()
    with torch.no_grad():
        for w in ([1.0, 0.0], [0.0, 1.0], [0.3, 0.7]):
            stylizer.set_style_weights(w)
            torch.testing.assert_close(module(x, *stylizer.graph_inputs()), stylizer(x))


def _write_multi(path, names=("alpha", "beta"), tag="v1", seed=0, extra=None):
    net = _multi(len(names), seed)
    spec = {"name": "pair", "tag": tag, "arch": "johnson-mid",
            "arch_params": get_arch("johnson-mid").infer_params(net.state_dict()),
            "input_range": "0_255", "license": "test", "styles": list(names),
            "style_info": [{"painting": f"painting {n}"} for n in names], **(extra or {})}
    write_style_file(path, net.state_dict(), spec, dtype=None)
    return net


def test_a_multistyle_file_registers_each_style_by_name(rtstyle_home, no_bundled):
    from rtstyle.cli import app
    from rtstyle.models.registry import discover, resolve_style

    path = rtstyle_home / "styles" / "pair.v1.safetensors"
    _write_multi(path)
    registry = discover()
    alpha, beta = registry.get("alpha"), registry.get("Beta.v1")
    assert (alpha.style_index, beta.style_index) == (0, 1)
    assert alpha.weights == beta.weights == path and alpha.shares_network_with(beta)
    assert alpha.summary()["painting"] == "painting alpha"
    assert resolve_style(f"{path}#beta").style_index == 1
    assert resolve_style(str(path)).style_index == 0
    listed = json.loads(CliRunner().invoke(app, ["styles", "--json"]).output)
    assert [(s["name"], s["style_index"], s["file_styles"]) for s in listed["styles"]] == [
        ("alpha", 0, ["alpha", "beta"]), ("beta", 1, ["alpha", "beta"])]


def test_a_taken_name_skips_that_style_not_the_file(rtstyle_home, no_bundled):
    from rtstyle.models.registry import discover

    _write_multi(rtstyle_home / "styles" / "a.v1.safetensors", names=("alpha", "beta"))
    _write_multi(rtstyle_home / "styles" / "b.v1.safetensors", names=("beta", "gamma"))
    registry = discover()
    assert registry.get("gamma").style_index == 1
    assert any("beta.v1" in p for p in registry.problems)


def test_each_name_stylizes_with_its_own_row(rtstyle_home, no_bundled):
    from rtstyle.models.loading import load_stylizer

    net = _write_multi(rtstyle_home / "styles" / "pair.v1.safetensors")
    x = _photo() / 255
    for index, name in enumerate(("alpha", "beta")):
        stylizer = load_stylizer(name)
        reference = Stylizer(_single_from(net, [float(i == index) for i in range(2)]), "0_255")
        with torch.no_grad():
            torch.testing.assert_close(stylizer(x), reference(x), rtol=1e-4, atol=1e-4)


def test_mixing_styles_of_one_file_blends_the_norms_in_one_pass(rtstyle_home, no_bundled):
    from rtstyle.models.loading import load_style_mix
    from rtstyle.models.mixing import MixedStylizer

    net = _write_multi(rtstyle_home / "styles" / "pair.v1.safetensors")
    mixed = load_style_mix(["alpha", "beta"], [0.25, 0.75])
    assert not isinstance(mixed, MixedStylizer)
    assert mixed.net.style_weights.tolist() == [0.25, 0.75]
    x = _photo() / 255
    with torch.no_grad():
        torch.testing.assert_close(mixed(x), Stylizer(_single_from(net, [0.25, 0.75]),
                                                      "0_255")(x), rtol=1e-4, atol=1e-4)


def test_switching_styles_of_one_file_reuses_the_engine(rtstyle_home, no_bundled):
    from rtstyle.models.loading import load_stylizer
    from rtstyle.realtime.runs import StyledRun, StyleSettings

    _write_multi(rtstyle_home / "styles" / "pair.v1.safetensors")
    run = StyledRun(StyleSettings(styles=("alpha", "beta"), device="cpu", backend="eager",
                                  smooth=0.0))
    run._load_styles(expected_frames=None)
    cycler = run.process
    x = _photo(32, 48) / 255  # a multiple of the engine's bucket: no padding, exact equality
    outputs = {}
    with torch.no_grad():
        for index in (0, 1, 0, 1):
            cycler.select(index)
            outputs[index] = cycler(x)
    first, second = cycler._engines[0], cycler._engines[1]
    assert first.shared_engine is second.shared_engine
    assert first.shared_engine.builds == 1  # one build for the frame size, none per switch
    for index, name in enumerate(("alpha", "beta")):
        with torch.no_grad():
            torch.testing.assert_close(outputs[index], load_stylizer(name)(x), atol=1e-4,
                                       rtol=1e-4)


def test_a_multistyle_engine_backend_reads_the_live_style_vector(rtstyle_home, no_bundled):
    """Backends get the style vector at each call (`graph_inputs`), not at build time."""
    from rtstyle.models.loading import load_stylizer
    from rtstyle.realtime.engine import InferenceEngine

    _write_multi(rtstyle_home / "styles" / "pair.v1.safetensors")
    engine = InferenceEngine(load_stylizer("alpha"), "cpu", backend="eager", precision="bf16")
    x = _photo() / 255
    with torch.no_grad():
        a = engine(x)
        engine.set_style_weights(1)
        b = engine(x)
        engine.set_style_weights(0)
        again = engine(x)
    assert engine.builds == 1
    assert (a - b).abs().max() > 1e-4 and torch.equal(a, again)


def test_train_multi_writes_one_file_that_each_name_loads(shared_data, tmp_path, rtstyle_home,
                                                          no_bundled, one_torch_thread):
    from rtstyle.cli import app
    from rtstyle.models.loading import load_stylizer
    from rtstyle.models.registry import discover
    from tests.conftest import linked_folder

    photos = linked_folder(tmp_path / "photos",
                           sorted((shared_data / "content" / "train").glob("*.jpg"))[:3])
    paintings = [shared_data / "styles" / f for f in ("hokusai_great_wave.jpg",
                                                      "munch_the_scream.jpg")]
    result = CliRunner().invoke(app, [
        "train", "multi", "--style-image", str(paintings[0]), "--style-image", str(paintings[1]),
        "--names", "wave,scream", "--name", "pair", "--data", str(photos), "--size", "32",
        "--batch", "2", "--steps", "2", "--channels", "4", "--n-res", "1",
        "--temporal-weight", "10", "--sample-every", "0", "--json"])
    assert result.exit_code == 0, result.output
    registry = discover()
    wave, scream = registry.get("wave"), registry.get("scream")
    assert (wave.style_index, scream.style_index) == (0, 1)
    assert wave.summary()["painting"] == "The Great Wave off Kanagawa"
    assert scream.meta["style"]["image"] == "munch_the_scream.jpg"  # what benchmarks score against
    assert wave.arch == "johnson-mid" and wave.arch_params["n_styles"] == 2
    x = _photo(24, 40) / 255
    with torch.no_grad():
        outs = [load_stylizer(n)(x) for n in ("wave", "scream")]
    assert all(o.shape == x.shape for o in outs)
    assert not torch.equal(outs[0], outs[1])
    # --lr-decay-from reaches the multi trainer: step 2 at half the LR, recorded in the file
    common = ["train", "multi", "--style-image", str(paintings[0]), "--style-image",
              str(paintings[1]), "--names", "wave,scream", "--data", str(photos), "--size", "32",
              "--batch", "2", "--steps", "2", "--channels", "4", "--n-res", "1",
              "--sample-every", "0", "--json", "--out", str(tmp_path / "out")]
    for name, extra in (("plain", []), ("decayed", ["--lr-decay-from", "0"])):
        result = CliRunner().invoke(app, [*common, "--name", name, *extra])
        assert result.exit_code == 0, result.output
    from rtstyle.models.weights import read_spec, read_tensors

    plain, decayed = (tmp_path / "out" / f"{n}.v1.safetensors" for n in ("plain", "decayed"))
    assert read_spec(decayed)["training"]["lr_decay_from"] == 0
    a, b = read_tensors(plain), read_tensors(decayed)
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_train_multi_checks_names_against_paintings(shared_data, tmp_path):
    from rtstyle.cli import app

    painting = shared_data / "styles" / "hokusai_great_wave.jpg"
    result = CliRunner().invoke(app, [
        "train", "multi", "--style-image", str(painting), "--names", "a,b", "--data",
        str(tmp_path)])
    assert result.exit_code == 2 and "--names has 2 names for 1" in result.output


@pytest.mark.slow
def test_compiled_engine_switches_styles_without_a_rebuild(tmp_path):
    """AOTInductor takes the style vector as a graph input: one build (~40 s on 2 cores)
    serves every style and blend, each agreeing with FP32 eager."""
    from rtstyle.realtime.backends import get_backend
    from rtstyle.realtime.cache import EngineCache
    from rtstyle.realtime.engine import InferenceEngine, relative_error

    reason = get_backend("compile").unavailable_reason(torch.device("cpu"))
    if reason is not None:
        pytest.skip(reason)
    net = _multi(3)
    with torch.no_grad():  # mid-grey and a visible spread, so a style change shows
        net.deconv3.conv2d.bias.fill_(127.5)
        net.deconv3.conv2d.weight.mul_(100)
    stylizer = Stylizer(net, "0_255")
    engine = InferenceEngine(stylizer, "cpu", backend="compile",
                             cache=EngineCache(root=tmp_path))
    x = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(3))
    outputs = []
    with torch.no_grad():
        for w in (0, 1, 2, [0.5, 0.5, 0.0]):
            engine.set_style_weights(w)
            y = engine(x)
            assert relative_error(y, stylizer(x)) < engine.guard_threshold
            outputs.append(y)
    assert engine.backend == "compile" and engine.builds == 1 and engine.cache.builds == 1
    assert (outputs[0] - outputs[1]).abs().mean() > 0.01
