"""Train a feed-forward Johnson net (standard or lite) for one painting (Johnson et al. 2016).

Perceptual losses on the frozen VGG-19, Adam, random crops of a photo folder. An optional
temporal term (synthetic affine motion, see `temporal.py`) makes the net steadier on video.
The result is an FP16 rtstyle file that the registry picks up by name.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ...devices import resolve_device
from ...errors import UserInputError
from ...images import read_image
from ..architectures import build_generator
from ..registry import user_data_dir, user_styles_dir
from ..vgg import load_vgg19
from .common import (
    RunSettings,
    ScalarLog,
    check_replicas_agree,
    check_resume_config,
    export_style,
    finish_distributed,
    init_distributed,
    load_checkpoint,
    resolve_precision,
    save_checkpoint,
    style_info,
    weights_to_fine_tune,
    write_grid,
)
from .data import PhotoBatches, list_images, load_style_image, random_crop, to_tensor01
from .losses import DEFAULT_CONTENT_LAYER, DEFAULT_STYLE_LAYERS, PerceptualLoss

log = logging.getLogger(__name__)

ARCHS = {"standard": "johnson", "lite": "johnson-lite"}
DEFAULT_PARAMS = {"johnson": {"channels": 32, "n_res": 5}, "johnson-lite": {"channels": 16, "n_res": 4}}
# Settings that define what is trained; a resumed run must not change them.
_RESUME_KEYS = ("arch", "arch_params", "size", "batch", "style_size", "lr", "content_weight",
                "style_weight", "tv_weight", "temporal_weight", "seed", "content_layer",
                "style_layers", "precision", "init_from")


@dataclass(kw_only=True)
class JohnsonConfig(RunSettings):
    style_image: Path
    data: Path
    name: str
    arch: str = "lite"  # standard | lite
    channels: int | None = None
    n_res: int | None = None
    size: int = 256
    style_size: int | None = None  # long side of the painting; default 2 × size
    steps: int = 2000
    batch: int = 4
    lr: float = 1e-3
    content_weight: float = 1.0
    style_weight: float = 2.0
    tv_weight: float = 0.0
    temporal_weight: float = 0.0
    content_layer: str = DEFAULT_CONTENT_LAYER
    style_layers: tuple[str, ...] = DEFAULT_STYLE_LAYERS
    sample_every: int = 200
    checkpoint_every: int = 200
    painting: str | None = None
    artist: str | None = None
    year: str | None = None
    attribution: str | None = None
    style_license: str | None = None
    init_from: str | None = None  # a style name or file to fine-tune instead of a fresh net

    @property
    def arch_name(self) -> str:
        try:
            return ARCHS[self.arch]
        except KeyError:
            raise UserInputError(f"unknown --arch '{self.arch}'; choose from: standard, lite") from None

    @property
    def arch_params(self) -> dict:
        params = dict(DEFAULT_PARAMS[self.arch_name])
        if self.channels is not None:
            params["channels"] = self.channels
        if self.n_res is not None:
            params["n_res"] = self.n_res
        return params

    def resolved_style_size(self) -> int:
        return self.style_size or 2 * self.size

    def fingerprint(self) -> dict:
        """The settings that define the run, as plain data (checkpoint and style metadata)."""
        return {
            "arch": self.arch_name,
            "arch_params": self.arch_params,
            "size": self.size,
            "batch": self.batch,
            "style_size": self.resolved_style_size(),
            "lr": self.lr,
            "content_weight": self.content_weight,
            "style_weight": self.style_weight,
            "tv_weight": self.tv_weight,
            "temporal_weight": self.temporal_weight,
            "seed": self.seed,
            "content_layer": self.content_layer,
            "style_layers": list(self.style_layers),
            "precision": self.precision,
            "init_from": self.init_from,
        }

    def validate(self) -> None:
        if self.size < 16 or self.size % 8:
            raise UserInputError(f"--size must be a multiple of 8 and >= 16, got {self.size}")
        if self.steps < 1 or self.batch < 1:
            raise UserInputError("--steps and --batch must be >= 1")
        if min(self.content_weight, self.style_weight, self.tv_weight, self.temporal_weight) < 0:
            raise UserInputError("loss weights must be >= 0")
        if not Path(self.style_image).is_file():
            raise UserInputError(f"style image not found: {self.style_image}")


@dataclass
class TrainResult:
    style_path: Path | None
    steps: int
    losses: dict[str, float]
    duration_s: float
    device: str
    work_dir: Path
    world_size: int = 1  # DDP processes that trained it (weights checked equal across them)


StepCallback = Callable[[int, int, dict[str, float]], None]


def default_work_dir(name: str) -> Path:
    return user_data_dir() / "training" / name


def _sample_photos(data: Path, size: int, count: int = 4) -> torch.Tensor:
    """A fixed set of centre crops so every sample grid shows the same photos."""
    paths = list_images(data)
    step = max(1, len(paths) // count)
    gen = torch.Generator().manual_seed(0)
    return torch.stack([random_crop(to_tensor01(read_image(p)), size, gen, 1.0)
                        for p in paths[::step][:count]])


def init_output_range(net: nn.Module, gain: float = 50.0, mean: float = 127.5) -> None:
    """Start the net's 0..255 output at mid-grey with a photo-like spread.

    Default init makes the last convolution emit values near 0 (a black image on the 0..255
    scale), and Adam, moving each weight by about `lr` per step, needs hundreds of steps just to
    lift it; on a CPU budget those are most of the run.
    """
    last = [m for m in net.modules() if isinstance(m, nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight.mul_(gain)
        last.bias.fill_(mean)


def _stylize_batch(model, content: torch.Tensor, temporal: bool,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The 0..1 output for `content`, and the temporal term when asked.

    The temporal pair (small affine motion plus sensor-like noise, which the net should ignore
    between frames) goes through the net in the same call as the batch: instance norm works
    per image, so this equals two calls, and DDP sees one forward per step.
    """
    if not temporal:
        return model(content * 255.0) / 255.0, None
    from .temporal import random_affine_flow_pair, temporal_loss

    warped, flow, mask = random_affine_flow_pair(content, noise=0.02, generator=generator)
    out01, out_b = (model(torch.cat((content, warped)) * 255.0) / 255.0).chunk(2)
    return out01, temporal_loss(out01.float(), out_b.float(), flow, mask)


def train_johnson(cfg: JohnsonConfig, on_step: StepCallback | None = None) -> TrainResult:
    """Run (or resume) a training; export the style on rank 0 and return its path."""
    cfg.validate()
    ctx, device = init_distributed(resolve_device(cfg.device))
    precision = resolve_precision(cfg.precision, device)
    work = Path(cfg.work_dir or default_work_dir(cfg.name))
    ckpt_path = work / "checkpoint.pt"
    fingerprint = cfg.fingerprint()
    fingerprint["precision"] = precision.name

    torch.manual_seed(cfg.seed)
    net = build_generator(cfg.arch_name, cfg.arch_params)
    if cfg.init_from:
        net.load_state_dict(weights_to_fine_tune(cfg.init_from, cfg.arch_name, cfg.arch_params))
    else:
        init_output_range(net)
    net = net.to(device)
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    batches = PhotoBatches(cfg.data, cfg.size, cfg.batch, seed=cfg.seed + 1000 * ctx.rank)
    temporal_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1 + 1000 * ctx.rank)

    start_step, elapsed_before = 0, 0.0
    if cfg.resume:
        saved = load_checkpoint(ckpt_path)
        check_resume_config(saved["config"], fingerprint, _RESUME_KEYS)
        net.load_state_dict(saved["net"])
        optimizer.load_state_dict(saved["optimizer"])
        if ctx.world_size == 1:
            batches.set_state(saved["data_rng"][0])
            temporal_gen.set_state(saved["temporal_rng"])
            torch.set_rng_state(saved["torch_rng"])
        else:  # only rank 0 saves; other ranks restart their streams from (seed, rank, step)
            batches.generator.manual_seed(cfg.seed + 1000 * ctx.rank + 7919 * int(saved["step"]))
            temporal_gen.manual_seed(cfg.seed + 1 + 1000 * ctx.rank + 7919 * int(saved["step"]))
        start_step, elapsed_before = int(saved["step"]), float(saved["duration_s"])
        log.info("resuming %s at step %d", cfg.name, start_step)

    model = DistributedDataParallel(net) if ctx.world_size > 1 else net
    vgg = load_vgg19(device=device)
    style = load_style_image(cfg.style_image, cfg.resolved_style_size()).to(device)
    criterion = PerceptualLoss(vgg, style, cfg.content_layer, cfg.style_layers,
                               cfg.content_weight, cfg.style_weight, cfg.tv_weight)
    scaler = precision.scaler(device)
    samples = _sample_photos(cfg.data, cfg.size).to(device) if ctx.is_main else None
    scalars = ScalarLog(work / "tensorboard", cfg.tensorboard and ctx.is_main)

    losses: dict[str, float] = {}
    t0 = time.perf_counter()
    step = start_step
    net.train()
    try:
        for step in range(start_step + 1, cfg.steps + 1):
            content = next(batches).to(device, non_blocking=True)
            if device.type == "cuda":
                content = content.contiguous(memory_format=torch.channels_last)
            with precision.autocast(device):
                out01, temporal = _stylize_batch(model, content, cfg.temporal_weight > 0,
                                                 temporal_gen)
                terms = criterion(out01, content)
                if temporal is not None:
                    terms["temporal"] = cfg.temporal_weight * temporal
                    terms["total"] = terms["total"] + terms["temporal"]
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(terms["total"]).backward()
            scaler.step(optimizer)
            scaler.update()
            losses = {k: float(v.detach()) for k, v in terms.items()}
            if not all(map(_finite, losses.values())):
                raise UserInputError(f"training diverged at step {step} (losses {losses}); "
                                     "lower --lr or the loss weights")
            if ctx.is_main:
                scalars.add(step, losses)
                if cfg.sample_every and step % cfg.sample_every == 0:
                    _write_sample(net, samples, work / "samples" / f"step{step:06d}.png")
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps:
                    _checkpoint(ckpt_path, net, optimizer, batches, temporal_gen, step,
                                elapsed_before + time.perf_counter() - t0, fingerprint, losses,
                                ctx)
            if on_step is not None and ctx.is_main:
                on_step(step, cfg.steps, losses)
        duration = elapsed_before + time.perf_counter() - t0
        check_replicas_agree(net, ctx)
        path = None
        if ctx.is_main:
            _checkpoint(ckpt_path, net, optimizer, batches, temporal_gen, step, duration,
                        fingerprint, losses, ctx)
            _write_sample(net, samples, work / "samples" / "final.png")
            path = export_style(cfg.out or _default_out(), cfg.name, cfg.tag, net.state_dict(),
                                _spec(cfg, fingerprint, step, losses, device, duration))
    finally:
        scalars.close()
        finish_distributed(ctx)
    return TrainResult(path, step, losses, duration, str(device), work, ctx.world_size)


def _finite(x: float) -> bool:
    return x == x and abs(x) != float("inf")


def _default_out() -> Path:
    return user_styles_dir()


@torch.no_grad()
def _write_sample(net, samples: torch.Tensor, path: Path) -> None:
    was_training = net.training
    net.eval()
    out = (net(samples * 255.0) / 255.0).float()
    net.train(was_training)
    write_grid(path, [samples, out])


def _checkpoint(path, net, optimizer, batches, temporal_gen, step, duration, fingerprint,
                losses, ctx) -> None:
    save_checkpoint(path, {
        "step": step,
        "duration_s": duration,
        "config": fingerprint,
        "losses": losses,
        "net": net.state_dict(),
        "optimizer": optimizer.state_dict(),
        "data_rng": [batches.get_state()],
        "temporal_rng": temporal_gen.get_state().cpu(),
        "torch_rng": torch.get_rng_state(),
        "world_size": ctx.world_size,
    })


def _spec(cfg: JohnsonConfig, fingerprint: dict, steps: int, losses: dict, device, duration) -> dict:
    return {
        "name": cfg.name,
        "tag": cfg.tag,
        "arch": cfg.arch_name,
        "arch_params": cfg.arch_params,
        "input_range": "0_255",
        "license": cfg.license,
        "origin": "trained with rtstyle train johnson",
        "style": style_info(cfg.painting, cfg.artist, cfg.year, cfg.attribution,
                            cfg.style_license, Path(cfg.style_image)),
        "training": {
            **fingerprint,
            "steps": steps,
            "final_losses": {k: round(v, 6) for k, v in losses.items()},
            "device": _device_name(device),
            "duration_s": round(duration, 1),
            "data": Path(cfg.data).name,
        },
    }


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"

