"""Stylizing still images: `rtstyle image` over files and folders."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from .errors import MediaError, OutputExistsError, UserInputError
from .geometry import target_size
from .images import IMAGE_SUFFIXES, image_to_tensor, read_image, tensor_to_image, write_image
from .models.color import check_color_mode
from .models.color import preserve_color as keep_colors
from .models.gatys import INIT_MODES, GatysConfig, GatysResult, GatysStep, gatys_stylize
from .models.mixing import mix_weights
from .models.stylizer import blend_strength


@dataclass(frozen=True)
class ImageJob:
    source: Path
    target: Path


def expand_inputs(inputs: list[Path]) -> list[Path]:
    """Files as given, folders expanded to their images (sorted), in order, without repeats."""
    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise MediaError(f"no images in folder {item}")
            files.extend(found)
        elif item.is_file():
            files.append(item)
        else:
            raise MediaError(f"input not found: {item}")
    return list(dict.fromkeys(files))


def output_from_arguments(inputs: list[Path], output: Path | None
                          ) -> tuple[list[Path], Path | None]:
    """`rtstyle image in.jpg out.jpg`: a last path that does not exist yet, has an image suffix
    and follows exactly one existing file is the output, as with `cp`.

    Any other missing last path (after inputs that all exist) is probably a misplaced output
    too, so the error says how to name one rather than only "not found".
    """
    if output is not None or len(inputs) < 2:
        return inputs, output
    *given, last = inputs
    if last.exists() or not all(p.exists() for p in given):
        return inputs, output
    if len(given) == 1 and given[0].is_file() and last.suffix.lower() in IMAGE_SUFFIXES:
        return given, last
    raise MediaError(f"input not found: {last}; to name the output, use -o "
                     "(a file such as out.jpg for one image, a folder for several)")


def plan_jobs(inputs: list[Path], output: Path | None, style_label: str,
              overwrite: bool = False) -> list[ImageJob]:
    """Pair each input with its output path and refuse to clobber before any work starts.

    One input and an output with an image suffix -> that file (also given as the second path,
    see `output_from_arguments`). Otherwise the output is a folder (default: beside each input)
    holding `<stem>_<style><suffix>`.
    """
    inputs, output = output_from_arguments(inputs, output)
    files = expand_inputs(inputs)
    single_file = (len(files) == 1 and output is not None
                   and output.suffix.lower() in IMAGE_SUFFIXES and not output.is_dir())
    if output is not None and output.suffix.lower() in IMAGE_SUFFIXES and not single_file:
        raise UserInputError(f"{len(files)} images need an output folder, not the file {output}")
    jobs = []
    for src in files:
        if single_file:
            dst = output
        else:
            folder = output if output is not None else src.parent
            dst = folder / f"{src.stem}_{style_label}{src.suffix.lower()}"
        jobs.append(ImageJob(src, dst))
    if not overwrite:
        for job in jobs:
            if job.target.exists():
                raise OutputExistsError(f"{job.target} exists; pass --overwrite to replace it")
    return jobs


@torch.inference_mode()
def stylize_rgb(stylizer: torch.nn.Module, rgb, device: torch.device, *,
                size: tuple[int, int] | None = None, scale: float | None = None,
                max_side: int | None = None, strength: float = 1.0, finish=None,
                preserve_color: str | None = None):
    """`finish(stylized, photo) -> image`, if given, runs last: the photoreal step and the
    mask, as in video (`rtstyle.realtime.finishing`). `preserve_color` (`luminance`,
    `histogram`; `rtstyle.models.color`) acts before the strength blend, as in video."""
    h, w = rgb.shape[:2]
    tw, th = target_size(w, h, size=size, scale=scale, max_side=max_side)
    x = _fit(image_to_tensor(rgb, device), tw, th)
    y = blend_strength(x, keep_colors(x, stylizer(x), preserve_color), strength)
    return tensor_to_image(y if finish is None else finish(y, x))


def _fit(x: torch.Tensor, width: int, height: int) -> torch.Tensor:
    if (width, height) == (x.shape[-1], x.shape[-2]):
        return x
    return F.interpolate(x, size=(height, width), mode="bilinear", antialias=True,
                         align_corners=False)


def stylize_files(stylizer: torch.nn.Module, jobs: list[ImageJob], device: torch.device,
                  strength: float = 1.0, finish=None, preserve_color: str | None = None,
                  **geometry) -> Iterator[ImageJob]:
    """Stylize each job in turn, yielding it once its output is written (for progress)."""
    for job in jobs:
        rgb = read_image(job.source)
        write_image(job.target, stylize_rgb(stylizer, rgb, device, strength=strength,
                                            finish=finish, preserve_color=preserve_color,
                                            **geometry))
        yield job


def photoreal_files(jobs: list[ImageJob], reference: Path, device: torch.device, *,
                    content_mask: Path | None = None, style_mask: Path | None = None,
                    config=None, finish=None, on_step=None, size=None, scale=None,
                    max_side=None) -> Iterator[ImageJob]:
    """Deep Photo Style Transfer (`rtstyle.models.deep_photo`) of each job's photo in the
    look of `reference`, with optional colour-coded region maps; yields each written job.
    `finish` (a mask) runs on the result as in `stylize_rgb`."""
    import cv2

    from .models.deep_photo import DeepPhotoConfig, deep_photo_stylize, paired_regions

    if (content_mask is None) != (style_mask is None):
        raise UserInputError("--content-mask and --style-mask go together")
    if content_mask is not None and len(jobs) > 1:
        raise UserInputError("--content-mask belongs to one photo; give one input")
    ref_rgb = read_image(reference)
    ref = image_to_tensor(ref_rgb, device)
    for job in jobs:
        rgb = read_image(job.source)
        h, w = rgb.shape[:2]
        tw, th = target_size(w, h, size=size, scale=scale, max_side=max_side)
        x = _fit(image_to_tensor(rgb, device), tw, th)
        masks = {}
        if content_mask is not None:
            cmap = cv2.resize(read_image(content_mask), (tw, th), interpolation=cv2.INTER_NEAREST)
            smap = cv2.resize(read_image(style_mask), ref_rgb.shape[1::-1],
                              interpolation=cv2.INTER_NEAREST)
            _, cm, sm = paired_regions(cmap, smap)
            masks = {"content_masks": cm, "style_masks": sm}
        result = deep_photo_stylize(x, ref, config=config or DeepPhotoConfig(), on_step=on_step,
                                    **masks)
        y = result.image if finish is None else finish(result.image, x)
        write_image(job.target, tensor_to_image(y))
        yield job


# `--method gatys`: optimisation costs grow with the pixel count; with no size option the long
# side is this. `--init fast` without `--init-style` uses the style trained on the same
# painting, else this one (the default bundled style, as `rtstyle bench` uses).
DEFAULT_GATYS_SIDE = 512
FALLBACK_INIT_STYLE = "monet"


@dataclass
class GatysStill:
    """What `rtstyle image --method gatys` does to each photo (`rtstyle.models.gatys`), then
    the finish every method shares: colour preservation, then the `--strength` pixel blend
    with the photo (`blend_strength`, as after a network)."""

    paintings: Sequence[Path]
    mix: Sequence[float] | None = None
    config: GatysConfig = field(default_factory=GatysConfig)
    init: str = "photo"
    init_style: str | None = None
    strength: float = 1.0
    preserve_color: str | None = None
    size: tuple[int, int] | None = None
    scale: float | None = None
    max_side: int | None = None

    def __post_init__(self):
        if not self.paintings:
            raise UserInputError("--method gatys needs a painting as --style")
        for painting in self.paintings:
            if Path(painting).suffix.lower() not in IMAGE_SUFFIXES:
                raise UserInputError(f"--method gatys takes paintings (image files) as --style, "
                                     f"not '{painting}'")
        if self.init not in INIT_MODES:
            raise UserInputError(f"unknown --init '{self.init}'; choose from: "
                                 f"{', '.join(INIT_MODES)}")
        self.mix = mix_weights(self.mix, len(self.paintings))
        self.preserve_color = check_color_mode(self.preserve_color)

    @property
    def label(self) -> str:
        """Output names: `photo_<painting>-gatys.jpg`, `<a>+<b>-gatys` for a mix."""
        stems = [Path(p).stem for p, w in zip(self.paintings, self.mix, strict=True) if w > 0]
        return "+".join(stems) + "-gatys"

    def working_size(self, width: int, height: int) -> tuple[int, int]:
        if self.size is None and self.scale is None and self.max_side is None:
            return target_size(width, height, max_side=DEFAULT_GATYS_SIDE)
        return target_size(width, height, size=self.size, scale=self.scale,
                           max_side=self.max_side)

    def init_style_name(self) -> str:
        """`--init-style`, else the installed style trained on the heaviest painting of the
        mix (matched by file name), else `FALLBACK_INIT_STYLE`."""
        if self.init_style:
            return self.init_style
        from .models.registry import discover

        heaviest = Path(max(zip(self.mix, self.paintings, strict=True), key=lambda p: p[0])[1])
        for spec in discover().default_specs():
            if (spec.meta.get("style") or {}).get("image") == heaviest.name:
                return spec.full_name
        return FALLBACK_INIT_STYLE


def gatys_files(jobs: list[ImageJob], settings: GatysStill, device: torch.device, *,
                on_step: Callable[[ImageJob, GatysStep], None] | None = None,
                ) -> Iterator[tuple[ImageJob, GatysResult]]:
    """Optimise each job's photo in turn; yields it and its result once written."""
    from .models.loading import load_stylizer
    from .models.vgg import load_vgg19

    paintings = [image_to_tensor(read_image(p), device) for p in settings.paintings]
    vgg = load_vgg19(device=device).use_caffe_borders()
    init_net = (load_stylizer(settings.init_style_name(), device=device)
                if settings.init == "fast" else None)
    for job in jobs:
        rgb = read_image(job.source)
        x = _fit(image_to_tensor(rgb, device), *settings.working_size(rgb.shape[1], rgb.shape[0]))
        init: str | torch.Tensor = settings.init
        if init_net is not None:
            with torch.no_grad():
                init = init_net(x)
        step = None if on_step is None else (lambda s, job=job: on_step(job, s))
        result = gatys_stylize(x, paintings, mix=settings.mix, config=settings.config,
                               init=init, vgg=vgg, on_step=step)
        y = keep_colors(x, result.image, settings.preserve_color)
        write_image(job.target, tensor_to_image(blend_strength(x, y, settings.strength)))
        yield job, result
