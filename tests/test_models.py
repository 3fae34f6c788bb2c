"""Every generator keeps the input's exact H×W, batch and dtype, for odd and even sizes."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rtstyle.models.architectures import ARCHITECTURES, build_generator
from rtstyle.models.padding import pad_to_multiple, unpad
from rtstyle.models.sanet import SANetModel
from rtstyle.models.stylizer import Stylizer, blend_strength
from rtstyle.models.vgg import load_vgg19

SMALL = {
    "johnson": {"channels": 4, "n_res": 1},
    "johnson-lite": {},
    "johnson-mid": {"channels": 4, "n_res": 1, "n_styles": 2},
    "cyclegan": {"ngf": 4, "n_blocks": 1},
}
SIZES = [(48, 64), (41, 67), (137, 241), (17, 9)]


@pytest.mark.parametrize("arch", sorted(SMALL))
@pytest.mark.parametrize("hw", SIZES)
@pytest.mark.parametrize("batch", [1, 3])
def test_feed_forward_keeps_shape(arch, hw, batch):
    torch.manual_seed(0)
    net = build_generator(arch, SMALL[arch]).eval()
    x = torch.rand(batch, 3, *hw)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert y.dtype == x.dtype
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_dtype_kept_float64(arch):
    net = build_generator(arch, SMALL[arch]).double().eval()
    x = torch.rand(2, 3, 41, 67, dtype=torch.float64)
    with torch.no_grad():
        assert net(x).dtype == torch.float64


def test_sanet_keeps_shape_and_caches_style():
    torch.manual_seed(0)
    net = SANetModel().eval()
    style = torch.rand(1, 3, 50, 70)
    for hw in [(41, 67), (48, 64), (137, 241)]:
        x = torch.rand(2, 3, *hw)
        with torch.no_grad():
            direct = net(x, style)
            net.set_style(style)
            cached = net(x)
        assert direct.shape == x.shape
        torch.testing.assert_close(cached, direct)


def test_sanet_alpha_zero_ignores_style():
    torch.manual_seed(0)
    net = SANetModel(encoder=load_vgg19()).eval()
    x = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        a = net(x, torch.rand(1, 3, 48, 64), alpha=0.0)
        b = net(x, torch.rand(1, 3, 32, 32), alpha=0.0)
        c = net(x, torch.rand(1, 3, 32, 32), alpha=1.0)
    torch.testing.assert_close(a, b)
    assert (a - c).abs().max() > 0.05 * a.abs().max()


def test_every_registered_arch_is_covered():
    assert set(ARCHITECTURES) == set(SMALL) | {"sanet", "adain"}


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 70), w=st.integers(1, 70), multiple=st.sampled_from([2, 4, 8, 16]))
def test_unpad_inverts_pad(h, w, multiple):
    x = torch.rand(1, 3, h, w)
    padded, size = pad_to_multiple(x, multiple)
    assert padded.shape[-2] % multiple == 0 and padded.shape[-1] % multiple == 0
    assert torch.equal(unpad(padded, size), x)


@settings(max_examples=15, deadline=None)
@given(h=st.integers(5, 60), w=st.integers(5, 60))
def test_johnson_any_size(h, w):
    net = build_generator("johnson", SMALL["johnson"]).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, h, w)).shape[-2:] == (h, w)


def test_stylizer_maps_ranges_and_blends():
    class Echo(torch.nn.Module):
        def forward(self, x):
            self.seen = x.clone()
            return x

    x = torch.rand(1, 3, 8, 8)
    for rng, lo, hi in [("0_255", 0, 255), ("-1_1", -1, 1), ("0_1", 0, 1)]:
        echo = Echo()
        y = Stylizer(echo, rng)(x)
        torch.testing.assert_close(echo.seen, x * (hi - lo) + lo)
        torch.testing.assert_close(y, x)

    class Invert(torch.nn.Module):
        def forward(self, x):
            return 255 - x

    half = blend_strength(x, Stylizer(Invert(), "0_255")(x), 0.5)
    torch.testing.assert_close(half, torch.full_like(x, 0.5))


def test_registered_facts_match_the_networks():
    from rtstyle.models.stylizer import VALUE_RANGES

    for name, info in ARCHITECTURES.items():
        assert info.name == name
        assert info.input_range in VALUE_RANGES and info.value_range.name == info.input_range
        assert info.stride_multiple == info.build.stride_multiple
        assert info.precisions and set(info.precisions) <= {"fp32", "fp16", "bf16"}
    assert [n for n, i in ARCHITECTURES.items() if i.needs_style_image] == ["sanet", "adain"]


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_infer_params_reads_the_builder_params_back(arch):
    from rtstyle.models.architectures import get_arch

    info = get_arch(arch)
    params = {**info.default_params(), **SMALL[arch]}
    assert info.infer_params(build_generator(arch, params).state_dict()) == params


def test_registration_refuses_a_second_name_and_an_unknown_range():
    from rtstyle.models.architectures import register_arch

    with pytest.raises(ValueError, match="already registered"):
        register_arch("johnson", input_range="0_255", infer_params=dict)(torch.nn.Identity)
    with pytest.raises(ValueError, match="input_range"):
        register_arch("test-bad-range", input_range="0_1023", infer_params=dict,
                      stride_multiple=1)(torch.nn.Identity)
    assert "test-bad-range" not in ARCHITECTURES


def test_unit_range_net_is_the_stylizer_before_its_clamp():
    from rtstyle.models.stylizer import UnitRangeNet

    torch.manual_seed(0)
    net = build_generator("cyclegan", SMALL["cyclegan"]).eval()
    x = torch.rand(1, 3, 24, 32)
    with torch.no_grad():
        torch.testing.assert_close(UnitRangeNet(net, "-1_1")(x).clamp(0, 1),
                                   Stylizer(net, "-1_1")(x))
