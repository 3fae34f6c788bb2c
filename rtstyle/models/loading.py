"""From a `--style` argument to a ready `Stylizer`, and importing foreign checkpoints."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import UnknownStyleError, UserInputError, WeightsError
from ..images import IMAGE_SUFFIXES, image_to_tensor, read_image, resize_max_side
from .architectures import build_generator, get_arch
from .registry import StyleSpec, discover, resolve_style, user_styles_dir, verify_weights
from .style_scale import StyleScale, parse_style_scale
from .stylizer import Stylizer
from .weights import build_and_load, convert_checkpoint, read_tensors, write_style_file

DEFAULT_STYLE_IMAGE_SIDE = 512


# Which arbitrary-style model a painting as `--style` uses when several are installed.
PREFERRED_ARBITRARY = ("adain", "sanet")


def default_arbitrary_style() -> StyleSpec:
    """The installed arbitrary-style model (AdaIN, else SANet, else any) used when `--style`
    is a painting instead of a name."""
    registry = discover()
    candidates = [s for s in registry.specs() if s.needs_style_image]
    if not candidates:
        raise UserInputError(
            "a painting as --style needs an arbitrary-style (AdaIN or SANet) model, and none "
            "is installed (the bundled one is missing: reinstall rtstyle); train one with "
            "`rtstyle train adain` or "
            "`rtstyle train sanet`, or import one with `rtstyle styles import decoder.pth "
            "--arch adain --vgg vgg_normalised.pth`"
        )
    names = {s.name.casefold() for s in candidates}
    for preferred in PREFERRED_ARBITRARY:
        if preferred in names:
            return registry.get(preferred)
    return candidates[0]


def default_strength(styles: Sequence[str], style_image: str | Path | None = None,
                     given: float | None = None) -> float:
    """`--strength` as `given`, or when not given the lowest default of the run's models (a
    painting as `--style` counts as the arbitrary-style model; 1 for ordinary styles)."""
    if given is not None:
        return given
    return min((split_style_argument(s, style_image is not None)[0].default_strength
                for s in styles), default=1.0)


def video_style_scale(styles: Sequence[str], style_image: str | Path | None = None,
                      given: StyleScale | None = None) -> StyleScale:
    """`--style-scale` of a video, camera or live run: `given`, or when not given what the
    run's styles recommend for moving pictures (`StyleSpec.video_style_scale`); for a mix
    whose styles recommend different ones, the first style's. A file's unreadable
    recommendation is a `WeightsError`."""
    if given is not None:
        return parse_style_scale(given)
    chosen = []
    for style in styles:
        spec = split_style_argument(style, style_image is not None)[0]
        try:
            chosen.append(parse_style_scale(spec.video_style_scale))
        except UserInputError:
            raise WeightsError(f"{Path(spec.weights).name}: video_style_scale "
                               f"{spec.video_style_scale!r} is not a style scale") from None
    return chosen[0] if chosen else 1.0


def split_style_argument(style: str, has_style_image: bool = False) -> tuple[StyleSpec, Path | None]:
    """`--style monet`, `--style file.safetensors`, or `--style painting.jpg` (SANet).

    Returns the spec and, for the last form, the painting's path.
    """
    path = Path(style).expanduser()
    if path.suffix.lower() in IMAGE_SUFFIXES:
        if not path.is_file():
            raise UserInputError(f"style image not found: {path}")
        return default_arbitrary_style(), path
    spec = resolve_style(style)
    if spec.needs_style_image and not has_style_image:
        raise UserInputError(
            f"style '{spec.name}' is an arbitrary-style model; give a painting with --style-image"
        )
    return spec, None


def load_stylizer(style: str | StyleSpec, *, device: str | torch.device = "cpu",
                  style_image: str | Path | np.ndarray | None = None,
                  style_size: int = DEFAULT_STYLE_IMAGE_SIDE) -> Stylizer:
    """Build the network for a style on `device`, FP32, eval mode, ready for the engine."""
    if isinstance(style, StyleSpec):
        spec = style
    else:
        spec, painting = split_style_argument(style, style_image is not None)
        if painting is not None:
            style_image = painting
    verify_weights(spec)
    net = build_and_load(spec.arch, spec.arch_params, read_tensors(spec.weights))
    net = net.to(device)
    info = get_arch(spec.arch)
    if info.needs_style_image:
        if style_image is None:
            raise UserInputError(f"style '{spec.name}' needs --style-image")
        rgb = style_image if isinstance(style_image, np.ndarray) else read_image(style_image)
        net.set_style(image_to_tensor(resize_max_side(rgb, style_size), device))
    if spec.style_index is not None:  # one style of a multi-style file
        net.set_style_weights(spec.style_index)
    training = spec.meta.get("training") or {}
    return Stylizer(net, spec.input_range, name=spec.full_name,
                    temporal_weight=float(training.get("temporal_weight") or 0.0),
                    train_size=int(training.get("size") or 0) or None).eval()


def _is_painting(style: str) -> bool:
    return Path(style).suffix.lower() in IMAGE_SUFFIXES


def load_style_mix(styles: list[str], weights: list[float] | None = None, *,
                   device: str | torch.device = "cpu",
                   style_image: str | Path | None = None,
                   style_size: int = DEFAULT_STYLE_IMAGE_SIDE) -> torch.nn.Module:
    """Several `--style`s with `--mix` weights as one RGB 0..1 module.

    Paintings, when the arbitrary-style model mixes statistics (AdaIN), become one network
    whose target is the weighted mix of their feature statistics (a mixed style, not a blend of
    two pictures). Anything else is a `MixedStylizer`: each net's output, blended by weight.
    """
    from .mixing import MixedStylizer, mix_weights

    weights = mix_weights(weights, len(styles))
    if len(styles) > 1 and all(_is_painting(s) for s in styles):
        spec = default_arbitrary_style()
        if getattr(get_arch(spec.arch).build, "mixes_style_statistics", False):
            for s in styles:
                if not Path(s).expanduser().is_file():
                    raise UserInputError(f"style image not found: {s}")
            stylizer = load_stylizer(spec, device=device, style_image=styles[0],
                                     style_size=style_size)
            paintings = [image_to_tensor(resize_max_side(read_image(Path(s).expanduser()),
                                                         style_size), device) for s in styles]
            stylizer.net.set_style(paintings, weights)
            stylizer.name = "+".join(f"{Path(s).stem}*{w:g}"
                                     for s, w in zip(styles, weights, strict=True) if w > 0)
            return stylizer
    kept = [(s, w) for s, w in zip(styles, weights, strict=True) if w > 0]
    shared = _one_multistyle_net([s for s, _ in kept], device)
    if shared is not None:
        # Styles of one multi-style net: blend its conditional instance norms (one forward
        # pass, a mixed style), not the outputs of several passes.
        vector = [0.0] * shared[0].n_styles
        for index, (_, w) in zip(shared[1], kept, strict=True):
            vector[index] += w
        stylizer = shared[0]
        stylizer.set_style_weights(vector)
        stylizer.name = "+".join(f"{s}*{w:g}" for s, w in kept)
        return stylizer
    nets = [load_stylizer(s, device=device, style_image=style_image) for s, _ in kept]
    return MixedStylizer(nets, [w for _, w in kept])


def _one_multistyle_net(styles: list[str], device) -> tuple[Stylizer, list[int]] | None:
    """When every style is a style of one multi-style file (and there are several): that net,
    loaded once, and each style's row; else None."""
    if len(styles) < 2 or any(_is_painting(s) for s in styles):
        return None
    try:
        specs = [resolve_style(s) for s in styles]
    except UserInputError:
        return None  # the ordinary path reports it
    if not all(spec.shares_network_with(specs[0]) for spec in specs):
        return None
    return load_stylizer(specs[0], device=device), [spec.style_index for spec in specs]


def import_style(path: Path, *, name: str, arch: str, tag: str = "v1",
                 transformer: Path | None = None, vgg: Path | None = None,
                 overwrite: bool = False, extra: dict | None = None) -> StyleSpec:
    """Convert a foreign checkpoint into a user style file and return its spec."""
    from .registry import spec_from_file

    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise UserInputError(f"style name '{name}' must be letters, digits, '-' or '_'")
    info = get_arch(arch)
    state, params = convert_checkpoint(info.name, Path(path), transformer=transformer, vgg=vgg)
    target = user_styles_dir() / f"{name}.{tag}.safetensors"
    if not overwrite:
        try:
            existing = discover().get(f"{name}.{tag}")
        except UnknownStyleError:
            existing = None
        if existing is not None or target.exists():
            raise UserInputError(
                f"style '{name}.{tag}' already exists; pick another --name/--tag or --overwrite"
            )
    spec = {
        "name": name,
        "tag": tag,
        "arch": info.name,
        "arch_params": params,
        "input_range": info.input_range,
        "license": "unknown (imported)",
        "origin": {"imported_from": Path(path).name},
        **(extra or {}),
    }
    try:
        write_style_file(target, state, spec, dtype=None)
    except OSError as exc:
        raise WeightsError(f"could not write {target}: {exc}") from None
    return spec_from_file(target, "user")


def random_stylizer(arch: str, seed: int = 0) -> Stylizer:
    """An architecture with random weights (seeded): for timing only, its images mean nothing."""
    info = get_arch(arch)
    torch.manual_seed(seed)
    net = build_generator(arch)
    if info.needs_style_image:
        net.set_style(torch.rand(1, 3, 256, 256))
    return Stylizer(net, info.input_range, name=f"{arch} (random weights)").eval()
