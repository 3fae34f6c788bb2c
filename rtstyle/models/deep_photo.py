"""Deep Photo Style Transfer (Luan, Paris, Shechtman & Bala 2017): a photo in the look of a
reference photo, by optimisation, that stays a photograph.

The Gatys objective (`rtstyle.models.gatys`) plus two things:

- **Photorealism**: λ/2 · Σ_c V_cᵀ L V_c with L the matting Laplacian of the input photo
  (`rtstyle.models.matting`), which is zero when the output is, window by window, an affine
  function of the input's colours. A final locally affine fit of the result to the input
  (DPST's own last step, here the guided filter of `rtstyle.models.photoreal`) removes what
  the optimisation leaves.
- **Semantic regions** (the augmented style loss): with colour-coded region maps for the
  photo and the reference, each region's Gram matrix is matched to the same-coloured region
  of the reference, so sky takes the colours of sky and not of the ground.

The weights are DPST's, in DPST's units (neural-style's normalisations, as in the authors'
`deepmatting_seg.lua`): content 5 · MSE at relu4_2; style 100 · Σ_l Σ_regions f_r ·
MSE(G_r, T_r) over relu1_1…relu5_1, with G_r = Gram(F ⊙ m_r) / (C · H · W · f_r) and f_r the
region's share of the picture; λ = 10⁴ on the image in 0..1 (their gradient λ·L·V/256 on
Caffe's 0..256 scale is the gradient of this energy). Features are in Caffe units (VGG-19
with zero padding and floor pooling, `VGG19.use_caffe_borders`). The matting term takes the
place of total variation, which DPST keeps at 10⁻³.

Coarse to fine, with the finest level in closed form. A VGG-19 pass with its gradient costs
about a second at 320×180 on a 2-core CPU and twenty at a megapixel, so the optimisation runs
only up to `max_side` (400 px; levels as in `gatys_stylize`, each finer one a quarter of the
iterations of the one before). It starts from the photo recoloured to the reference's CIELAB
mean and spread, region by region (the colour-transfer start of later DPST work), which saves
most of the iterations a start from the photo spends on moving colours at all. The full-size
result is then the locally affine transform of the full-size photo that best fits the
optimised picture: guided-filter coefficients solved at the working size and applied at full
size (`rtstyle.models.photoreal`), which is also DPST's closing step. A megapixel photo so
takes as long as a 400 px one plus a fraction of a second.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserInputError
from .gatys import CONTENT_LAYER, STYLE_LAYERS, GatysResult, GatysStep, level_sizes, resize
from .guided import apply_coefficients, guided_coefficients
from .lbfgs import CachedClosure, lbfgs, pixel_variable
from .matting import MattingTerm
from .photoreal import lab_moments, transfer_lab_moments
from .vgg import VGG19, load_vgg19

log = logging.getLogger(__name__)

# DPST's colour codes (deepmatting_seg.lua ExtractMask): channel values below 0.1 or above
# 0.9 (grey: 0.4–0.6), RGB.
REGION_COLOURS = {
    "blue": (0, 0, 1), "green": (0, 1, 0), "black": (0, 0, 0), "white": (1, 1, 1),
    "red": (1, 0, 0), "yellow": (1, 1, 0), "grey": (0.5, 0.5, 0.5), "lightblue": (0, 1, 1),
    "purple": (1, 0, 1),
}


@dataclass(frozen=True)
class DeepPhotoConfig:
    """DPST's weights (see the module docstring) and the optimisation schedule."""

    steps: int = 100
    max_side: int = 400                    # the optimisation's largest size (long side)
    init: str = "lab"                      # "lab": colour-transferred photo; "photo"
    content_weight: float = 5.0
    style_weight: float = 100.0
    photoreal_weight: float = 1e4          # λ
    matting_eps: float = 1e-7
    levels: int | None = None
    refine: float = 0.25
    history_size: int = 50
    final_radius: int = 2                  # the closing locally affine fit, working pixels
    final_eps: float = 1e-4

    def __post_init__(self):
        if self.steps < 1:
            raise UserInputError(f"--steps must be at least 1, got {self.steps}")
        for name in ("content_weight", "style_weight", "photoreal_weight"):
            if getattr(self, name) < 0:
                raise UserInputError(f"{name.replace('_', ' ')} must be >= 0")
        if self.max_side < 32:
            raise UserInputError(f"the optimisation size must be at least 32 px, got "
                                 f"{self.max_side}")
        if self.init not in ("lab", "photo"):
            raise UserInputError(f"unknown start '{self.init}'; choose from: lab, photo")


def region_masks(map_rgb: np.ndarray) -> dict[str, np.ndarray]:
    """Colour-coded region map (H×W×3 uint8) -> {colour name: H×W float 0/1} for the DPST
    colours present. A pixel belongs to the nearest DPST colour; pixels far from every code
    (antialiased edges of a hand-drawn map) go to the nearest too, so regions tile the map."""
    rgb = map_rgb.astype(np.float32) / 255.0
    names = list(REGION_COLOURS)
    codes = np.array([REGION_COLOURS[n] for n in names], np.float32)
    nearest = ((rgb[:, :, None, :] - codes[None, None]) ** 2).sum(-1).argmin(-1)
    return {names[i]: (nearest == i).astype(np.float32) for i in np.unique(nearest)}


def paired_regions(content_map: np.ndarray, style_map: np.ndarray
                   ) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """Region names and masks (content, style) matched by colour. A content region whose
    colour is missing from the style map is matched to the whole reference (logged)."""
    content, style = region_masks(content_map), region_masks(style_map)
    names = sorted(content)
    missing = [n for n in names if n not in style]
    if missing:
        log.warning("regions %s are not in the style mask: they take the whole reference",
                    ", ".join(missing))
    if not any(n in style for n in names):
        raise UserInputError("the content and style masks share no region colour; colour "
                             f"regions alike (DPST codes: {', '.join(REGION_COLOURS)})")
    whole = np.ones(style_map.shape[:2], np.float32)
    return names, [content[n] for n in names], [style.get(n, whole) for n in names]


def _masked_grams(feat: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-region Gram matrices R×C×C, normalised as DPST's (by C·H·W·f), and the shares f."""
    _, c, h, w = feat.shape
    m = F.interpolate(masks, size=(h, w), mode="bilinear", align_corners=False)[0]  # R×h×w
    share = m.mean((1, 2))
    flat = feat[0].float().reshape(c, h * w)
    masked = flat.unsqueeze(0) * m.reshape(-1, 1, h * w)
    grams = masked @ masked.transpose(1, 2)
    return grams / (c * h * w * share.clamp_min(1e-8)).view(-1, 1, 1), share


class DeepPhotoObjective:
    """DPST's energy at one size; targets, masks and the matting term computed once."""

    def __init__(self, vgg: VGG19, photo01: torch.Tensor, reference01: torch.Tensor,
                 content_masks: torch.Tensor, style_masks: torch.Tensor,
                 config: DeepPhotoConfig):
        self.vgg, self.config = vgg, config
        self.content_masks = content_masks
        with torch.no_grad():
            self.content = vgg(photo01, (CONTENT_LAYER,))[CONTENT_LAYER]
            feats = vgg(reference01, STYLE_LAYERS)
            self.targets = {layer: _masked_grams(feats[layer], style_masks)[0]
                            for layer in STYLE_LAYERS}
        self.matting = MattingTerm(photo01, eps=config.matting_eps)

    def __call__(self, x01: torch.Tensor) -> dict[str, torch.Tensor]:
        c = self.config
        feats = self.vgg(x01, (*STYLE_LAYERS, CONTENT_LAYER))
        content = F.mse_loss(feats[CONTENT_LAYER], self.content)
        style = 0.0
        for layer in STYLE_LAYERS:
            grams, share = _masked_grams(feats[layer], self.content_masks)
            per_region = ((grams - self.targets[layer]) ** 2).mean((1, 2))
            style = style + (share * per_region).sum()
        terms = {"content": c.content_weight * content,
                 "style": c.style_weight * style,
                 "photoreal": 0.5 * c.photoreal_weight * self.matting(x01)}
        terms["total"] = terms["content"] + terms["style"] + terms["photoreal"]
        return terms


def _as_masks(masks: list[np.ndarray] | None, device) -> torch.Tensor:
    if masks is None:
        return torch.ones(1, 1, 1, 1, device=device)
    return torch.from_numpy(np.stack(masks))[None].to(device)


def lab_start(photo01: torch.Tensor, reference01: torch.Tensor, content_masks: torch.Tensor,
              style_masks: torch.Tensor) -> torch.Tensor:
    """The photo with each region's CIELAB mean and spread moved to its reference region's."""
    h, w = photo01.shape[-2:]
    cm = F.interpolate(content_masks, size=(h, w), mode="bilinear", align_corners=False)
    sm = F.interpolate(style_masks, size=reference01.shape[-2:], mode="bilinear",
                       align_corners=False)
    out = torch.zeros_like(photo01)
    weight = torch.zeros_like(photo01[:, :1])
    for r in range(cm.shape[1]):
        c, s = cm[:, r:r + 1], sm[:, r:r + 1]
        if float(c.sum()) < 1 or float(s.sum()) < 1:
            continue
        mean, std = lab_moments(reference01, s)
        out += c * transfer_lab_moments(photo01, mean, std, mask=c)
        weight += c
    return torch.where(weight > 0, out / weight.clamp_min(1e-6), photo01)


def deep_photo_stylize(photo01: torch.Tensor, reference01: torch.Tensor, *,
                       content_masks: list[np.ndarray] | None = None,
                       style_masks: list[np.ndarray] | None = None,
                       config: DeepPhotoConfig = DeepPhotoConfig(), vgg: VGG19 | None = None,
                       on_step: Callable[[GatysStep], None] | None = None) -> GatysResult:
    """`photo01` (1×3×H×W, 0..1) in the look of `reference01` (any size), photorealistic.

    `content_masks` / `style_masks`: one H×W (resp. h×w) float mask per region, paired by
    position (`paired_regions`); None: the whole picture is one region.
    """
    if (content_masks is None) != (style_masks is None):
        raise UserInputError("give both a content mask and a style mask, or neither")
    device = photo01.device
    if vgg is None:
        vgg = load_vgg19(device=device).use_caffe_borders()
    photo01 = photo01.float()
    cmasks, smasks = _as_masks(content_masks, device), _as_masks(style_masks, device)
    height, width = photo01.shape[-2:]
    shrink = min(1.0, config.max_side / max(width, height))
    work = (max(1, round(width * shrink)), max(1, round(height * shrink)))
    sizes = level_sizes(*work, config.levels)
    steps = [max(1, round(config.steps * config.refine ** k)) for k in range(len(sizes))]
    total = sum(steps)
    result = GatysResult(image=photo01, sizes=sizes)
    start = time.perf_counter()
    ref_pixels = reference01.shape[-1] * reference01.shape[-2]
    x = resize(photo01, sizes[0])
    if config.init == "lab":
        x = lab_start(x, resize(reference01.float(), _fit_pixels(reference01, 512 * 512)),
                      cmasks, smasks)
    done = 0
    closure = None
    for level, (size, iters) in enumerate(zip(sizes, steps, strict=True)):
        photo = resize(photo01, size)
        reference = resize(reference01.float(),
                           _fit_pixels(reference01, min(ref_pixels, size[0] * size[1])))
        objective = DeepPhotoObjective(vgg, photo, reference, cmasks, smasks, config)
        x = pixel_variable(resize(x.detach(), size))
        optimizer = lbfgs(x, config.history_size)
        closure = CachedClosure(x, objective)
        losses = []
        for i in range(iters):
            losses.append(float(optimizer.step(closure)))
            done += 1
            if on_step is not None and i > 0:
                on_step(GatysStep(level, len(sizes), size, done, total, losses[-1], x.detach()))
        losses.append(float(closure()))
        if on_step is not None:
            on_step(GatysStep(level, len(sizes), size, done, total, losses[-1], x.detach()))
        result.losses.append(losses)
        result.evaluations += closure.evaluations
        log.info("deep photo level %d/%d %dx%d: loss %.4g -> %.4g in %d evaluations",
                 level + 1, len(sizes), *size, losses[0], losses[-1], closure.evaluations)
    optimised = x.detach().clamp(0.0, 1.0)
    a, b = guided_coefficients(resize(photo01, sizes[-1]), optimised, config.final_radius,
                               config.final_eps)
    result.terms = closure.last_terms if closure is not None else {}
    result.image = apply_coefficients(photo01, a, b).clamp_(0.0, 1.0)
    if (width, height) != sizes[-1]:
        result.sizes = [*sizes, (width, height)]
    result.seconds = time.perf_counter() - start
    return result


def _fit_pixels(image: torch.Tensor, pixels: int) -> tuple[int, int]:
    """(W, H) of `image` scaled to about `pixels` pixels (never up)."""
    h, w = image.shape[-2:]
    scale = min(1.0, (pixels / (w * h)) ** 0.5)
    return max(1, round(w * scale)), max(1, round(h * scale))
