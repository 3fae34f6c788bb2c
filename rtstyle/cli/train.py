"""`rtstyle train`: train your own style."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from .common import (
    DeviceOption,
    JsonOption,
    err,
    out,
    user_errors,
)

train_app = typer.Typer(help="Train your own style (Johnson/lite, CycleGAN, SANet).",
                        no_args_is_help=True)


@contextlib.contextmanager
def _training_progress(name: str, quiet: bool):
    """A bar with each loss term, it/s and ETA; yields the trainer's step callback."""
    progress = Progress(
        TextColumn(f"[bold]{name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[losses]}"),
        TextColumn("[cyan]{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=err,
        disable=quiet,
    )
    task = progress.add_task(name, total=None, losses="", rate="")

    def on_step(step: int, total: int, losses: dict[str, float]) -> None:
        speed = progress.tasks[task].speed
        progress.update(task, completed=step, total=total,
                        losses=" ".join(f"{k}={v:.4g}" for k, v in losses.items()),
                        rate=f"{speed:.2f} it/s" if speed else "")

    with progress:
        yield on_step


def _training_summary(result, as_json: bool) -> None:
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: rank 0 exported and reports
        return
    summary = {"style": str(result.style_path) if result.style_path else None,
               "steps": result.steps, "losses": result.losses,
               "duration_s": round(result.duration_s, 1), "device": result.device,
               "world_size": result.world_size, "work_dir": str(result.work_dir)}
    if as_json:
        out.print_json(json.dumps(summary))
    else:
        err.print(f"wrote {summary['style']} after {result.steps} steps "
                  f"({summary['duration_s']} s on {result.device})", highlight=False)


@train_app.command("johnson")
def train_johnson_verb(
    *,
    style_image: Annotated[Path, typer.Option(help="The painting to learn.")],
    data: Annotated[Path, typer.Option(help="Folder of training photos.")],
    name: Annotated[str, typer.Option(help="Style name to register.")],
    arch: Annotated[str, typer.Option(help="standard (GPU real time) or lite (CPU real time).")] = "lite",
    size: Annotated[int, typer.Option(help="Training crop side in pixels.")] = 256,
    style_size: Annotated[int | None, typer.Option(help="Painting long side (default 2×size); sets stroke size.")] = None,
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 2000,
    batch: Annotated[int, typer.Option(help="Photos per step (per GPU).")] = 4,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    content_weight: Annotated[float, typer.Option(help="Weight of the content term.")] = 1.0,
    style_weight: Annotated[float, typer.Option(help="Weight of the Gram style term.")] = 0.25,
    tv_weight: Annotated[float, typer.Option(help="Weight of total variation.")] = 0.0,
    temporal_weight: Annotated[float, typer.Option(help="Weight of the synthetic-motion stability term.")] = 0.0,
    init_from: Annotated[str | None, typer.Option(help="Fine-tune this style (name or file, same --arch) instead of starting fresh.")] = None,
    channels: Annotated[int | None, typer.Option(help="Width of the net (default per arch).")] = None,
    n_res: Annotated[int | None, typer.Option(help="Residual blocks (default per arch).")] = None,
    device: DeviceOption = "auto",
    precision: Annotated[str, typer.Option(help="auto, fp32, bf16 or fp16 (autocast).")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for init and data order.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from the work dir's checkpoint.")] = False,
    sample_every: Annotated[int, typer.Option(help="Write a sample grid every N steps (0: never).")] = 200,
    checkpoint_every: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = 200,
    work_dir: Annotated[Path | None, typer.Option(help="Checkpoints, samples, logs.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Folder for the style file (default: user styles).")] = None,
    tag: Annotated[str, typer.Option(help="Version tag of the style.")] = "v1",
    painting: Annotated[str | None, typer.Option(help="Painting title (metadata).")] = None,
    artist: Annotated[str | None, typer.Option(help="Artist (metadata).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Train a feed-forward net for one painting (perceptual losses on VGG-19)."""
    from ..models.training.johnson import JohnsonConfig, train_johnson

    cfg = JohnsonConfig(
        style_image=style_image, data=data, name=name, arch=arch, size=size,
        style_size=style_size, steps=steps, batch=batch, lr=lr, content_weight=content_weight,
        style_weight=style_weight, tv_weight=tv_weight, temporal_weight=temporal_weight,
        init_from=init_from,
        channels=channels, n_res=n_res, device=device, precision=precision, seed=seed,
        resume=resume, sample_every=sample_every, checkpoint_every=checkpoint_every,
        work_dir=work_dir, out=out, tag=tag, painting=painting or style_image.stem,
        artist=artist,
    )
    with user_errors(), _training_progress(f"train {name}", as_json) as on_step:
        result = train_johnson(cfg, on_step)
    _training_summary(result, as_json)


@train_app.command("cyclegan")
def train_cyclegan_verb(
    *,
    domain_a: Annotated[Path, typer.Option(help="Folder of source images (photos).")],
    domain_b: Annotated[Path, typer.Option(help="Folder of target images (paintings).")],
    name: Annotated[str, typer.Option(help="Style name for the A→B generator.")],
    ngf: Annotated[int, typer.Option(help="Generator width.")] = 64,
    n_blocks: Annotated[int, typer.Option(help="Generator residual blocks.")] = 9,
    size: Annotated[int, typer.Option(help="Training crop side in pixels.")] = 256,
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 20000,
    batch: Annotated[int, typer.Option(help="Images per step.")] = 1,
    lr: Annotated[float, typer.Option(help="Adam learning rate (decays linearly in the 2nd half).")] = 2e-4,
    cycle_weight: Annotated[float, typer.Option(help="Weight of cycle consistency.")] = 10.0,
    identity_weight: Annotated[float, typer.Option(help="Identity term, relative to the cycle weight.")] = 0.5,
    ssim_weight: Annotated[float, typer.Option(help="Weight of 1-SSIM on the reconstructions.")] = 0.0,
    device: DeviceOption = "auto",
    precision: Annotated[str, typer.Option(help="auto, fp32, bf16 or fp16 (autocast).")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for init and data order.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from the work dir's checkpoint.")] = False,
    sample_every: Annotated[int, typer.Option(help="Write a sample grid every N steps (0: never).")] = 500,
    work_dir: Annotated[Path | None, typer.Option(help="Checkpoints, samples, logs.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Folder for the style file (default: user styles).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Train an unpaired photo→painting CycleGAN and register its A→B generator."""
    from ..models.training.cyclegan import CycleGANConfig, train_cyclegan

    cfg = CycleGANConfig(
        domain_a=domain_a, domain_b=domain_b, name=name, ngf=ngf, n_blocks=n_blocks, size=size,
        steps=steps, batch=batch, lr=lr, cycle_weight=cycle_weight,
        identity_weight=identity_weight, ssim_weight=ssim_weight, device=device,
        precision=precision, seed=seed, resume=resume, sample_every=sample_every,
        checkpoint_every=sample_every, work_dir=work_dir, out=out,
    )
    with user_errors(), _training_progress(f"train {name}", as_json) as on_step:
        result = train_cyclegan(cfg, on_step)
    _training_summary(result, as_json)


@train_app.command("sanet")
def train_sanet_verb(
    *,
    content: Annotated[Path, typer.Option(help="Folder of content photos.")],
    styles: Annotated[Path, typer.Option(help="Folder of paintings.")],
    name: Annotated[str, typer.Option(help="Model name.")] = "sanet",
    holdout: Annotated[list[str] | None, typer.Option(help="Painting file kept out of training (repeat).")] = None,
    init_from: Annotated[str | None, typer.Option(help="Fine-tune this SANet model (name or file) instead of starting fresh.")] = None,
    size: Annotated[int, typer.Option(help="Training crop side in pixels.")] = 256,
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 20000,
    batch: Annotated[int, typer.Option(help="Pairs per step (per GPU).")] = 4,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-4,
    device: DeviceOption = "auto",
    precision: Annotated[str, typer.Option(help="auto, fp32, bf16 or fp16 (autocast).")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for init and data order.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from the work dir's checkpoint.")] = False,
    sample_every: Annotated[int, typer.Option(help="Write a sample grid every N steps (0: never).")] = 500,
    work_dir: Annotated[Path | None, typer.Option(help="Checkpoints, samples, logs.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Folder for the model file (default: user styles).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Train a SANet arbitrary-style model (content, style and identity losses)."""
    from ..models.training.sanet import SANetConfig, train_sanet

    cfg = SANetConfig(
        content=content, styles=styles, name=name, holdout=list(holdout or []), size=size,
        init_from=init_from,
        steps=steps, batch=batch, lr=lr, device=device, precision=precision, seed=seed,
        resume=resume, sample_every=sample_every, checkpoint_every=sample_every,
        work_dir=work_dir, out=out,
    )
    with user_errors(), _training_progress(f"train {name}", as_json) as on_step:
        result = train_sanet(cfg, on_step)
    _training_summary(result, as_json)


