"""Stylizing still images: `rtstyle image` over files and folders."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .errors import MediaError, OutputExistsError, UserInputError
from .geometry import target_size
from .images import IMAGE_SUFFIXES, image_to_tensor, read_image, tensor_to_image, write_image
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
                max_side: int | None = None, strength: float = 1.0):
    h, w = rgb.shape[:2]
    tw, th = target_size(w, h, size=size, scale=scale, max_side=max_side)
    x = image_to_tensor(rgb, device)
    if (tw, th) != (w, h):
        x = F.interpolate(x, size=(th, tw), mode="bilinear", antialias=True, align_corners=False)
    return tensor_to_image(blend_strength(x, stylizer(x), strength))


def stylize_files(stylizer: torch.nn.Module, jobs: list[ImageJob], device: torch.device,
                  strength: float = 1.0, **geometry) -> Iterator[ImageJob]:
    """Stylize each job in turn, yielding it once its output is written (for progress)."""
    for job in jobs:
        rgb = read_image(job.source)
        write_image(job.target, stylize_rgb(stylizer, rgb, device, strength=strength, **geometry))
        yield job
