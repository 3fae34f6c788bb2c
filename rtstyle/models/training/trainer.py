"""One training skeleton for every architecture; each architecture brings its `ArchSteps`.

`train(steps)` owns what every trainer needs and nothing architecture-specific: the device and
torchrun process group, autocast and the gradient scaler, the loop, the step callback, loss
checks, TensorBoard scalars, sample grids every `sample_every` steps, a checkpoint every
`checkpoint_every` steps with every random stream in it (so `--resume` ends with the same
weights as an uninterrupted run), the DDP wrap and the end-of-run check that all ranks agree,
and the export of an rtstyle file whose facts (input range, parameters) come from the
architecture registry.

Speed (`--compile`, `--precision auto`, `--channels-last`, `--prefetch`): an `ArchSteps` with
`speedups = True` gets them through `TrainingRun`: `run.compiled(module)` for each heavy module
(the skeleton also compiles the module `build` returns unless `build` sets
`run.compile_model = False`), `run.to_format(x)` for networks and
input batches (channels-last), `run.prefetch(source, "data")` for a batch stream drawn from
`run.rng("data", …)` (a background loader whose checkpointed state stays exact), and
`run.autocast()` as before; `losses.perceptual_loss(run, …)` / `losses.loss_network(run, …)`
give the VGG loss built that way. Sample, export and save through the original modules (a
compiled one prefixes its state-dict keys and compiles again for eval mode). The skeleton
resolves the settings (`--compile` auto: long runs, one process), times the steps and reports
images/s (`TrainResult.images_per_s`, the style's `training.images_per_s`).

A new trainer is a subclass of `ArchSteps` in a file of its own: `johnson.py` is the one to copy
(cf. CycleGAN's `models/template_model.py`), plus a config dataclass in `configs.py` and a verb
in `rtstyle/cli/train.py`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ...devices import resolve_device
from ...errors import UserInputError
from ..architectures import build_generator, get_arch
from .common import (
    DistributedContext,
    Precision,
    ScalarLog,
    check_replicas_agree,
    check_resume_config,
    compile_module,
    device_description,
    export_style,
    finish_distributed,
    init_distributed,
    load_checkpoint,
    resolve_compile,
    resolve_precision,
    save_checkpoint,
    wait_for_all_ranks,
    write_grid,
)
from .configs import RunSettings
from .data import Prefetcher

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 2  # 1: the per-trainer layouts before the shared skeleton
RANK_SEED_STRIDE = 1000  # each rank draws its own crops and motions
STEP_SEED_STRIDE = 7919  # DDP resume: ranks > 0 restart their streams from (seed, rank, step)

StepCallback = Callable[[int, int, dict[str, float]], None]


@dataclass
class TrainResult:
    style_path: Path | None
    steps: int
    losses: dict[str, float]
    duration_s: float
    device: str
    work_dir: Path
    world_size: int = 1  # DDP processes that trained it (weights checked equal across them)
    # Training images per second over all ranks, the first (warm-up, compile) step of this
    # process left out when there were more; None when the trainer cannot say.
    images_per_s: float | None = None
    speed: dict = field(default_factory=dict)  # compile, channels_last, prefetch as resolved


@dataclass
class TrainingRun:
    """What the skeleton sets up for the steps of one run."""

    cfg: RunSettings
    device: torch.device
    precision: Precision
    dist: DistributedContext
    scaler: torch.amp.GradScaler
    work: Path
    # The module `ArchSteps.build` returned, wrapped in DDP under torchrun: call it for the
    # forward passes that train, so DDP sees them.
    model: nn.Module | None = None
    generators: dict[str, tuple[torch.Generator, int]] = field(default_factory=dict)
    # Speed settings as resolved for this run (all off for an ArchSteps without `speedups`).
    compile: bool = False
    # Whether the skeleton compiles the module `build` returned (when `compile`); a step may
    # turn it off in `build` where that measured slower (johnson's generator on CPU).
    compile_model: bool = True
    channels_last: bool = False
    prefetch_depth: int = 0
    streams: dict[str, Prefetcher] = field(default_factory=dict)

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    def seed_for(self, offset: int) -> int:
        return self.cfg.seed + offset + RANK_SEED_STRIDE * self.dist.rank

    def rng(self, name: str, offset: int, device: torch.device | str = "cpu") -> torch.Generator:
        """A generator seeded from (seed, offset, rank) whose state every checkpoint keeps."""
        generator = torch.Generator(device=device).manual_seed(self.seed_for(offset))
        self.generators[name] = (generator, offset)
        return generator

    def autocast(self):
        return self.precision.autocast(self.device)

    def compiled(self, module: nn.Module) -> nn.Module:
        """`module` compiled when this run compiles (same parameters), else itself. Keep the
        original for state dicts: the compiled one prefixes its keys."""
        return compile_module(module) if self.compile else module

    def to_format(self, x):
        """A module or a 4-D batch in channels-last when the run uses it, else unchanged."""
        if not self.channels_last:
            return x
        if isinstance(x, nn.Module):
            return x.to(memory_format=torch.channels_last)
        return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x

    def prefetch(self, source: Iterator[torch.Tensor], name: str) -> Iterator[torch.Tensor]:
        """`source` loaded ahead by a background thread when the run prefetches. Every random
        draw of `source` must come from the generator `run.rng(name, …)` returned; checkpoints
        then store the state after the batches handed out, so a resume stays exact."""
        if self.prefetch_depth <= 0:
            return source
        stream = Prefetcher(source, self.generators[name][0], self.prefetch_depth)
        self.streams[name] = stream
        return stream

    def rng_states(self) -> dict[str, torch.Tensor]:
        return {name: (self.streams[name].get_state() if name in self.streams
                       else generator.get_state()).cpu()
                for name, (generator, _) in self.generators.items()}

    def close_streams(self) -> None:
        for stream in self.streams.values():
            stream.close()

    def optimize(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """One optimizer step on `loss` through the gradient scaler (fp16 needs it)."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()


@dataclass
class Export:
    """What an architecture's steps contribute to the exported style file."""

    state: dict[str, torch.Tensor]  # the tensors of the registered network
    style: dict  # painting, artist, … (`common.style_info`)
    data: Any  # what it was trained on, for the metadata


class ArchSteps:
    """The per-architecture part of a trainer: models, one step, samples, state, export.

    Set `verb` (`rtstyle train VERB`) and `arch` (the registered architecture the exported file
    holds); `train()` calls `build` once after seeding torch, then `step` for every step.
    """

    verb: str
    arch: str
    # False: one process even under torchrun (the trainer has no DDP path of its own).
    distributed: bool = True
    # True: the steps use the run's speed helpers (`run.compiled`, `run.to_format`,
    # `run.prefetch`), so `--compile`, `--channels-last` and `--prefetch` apply.
    speedups: bool = False

    def __init__(self, cfg: RunSettings):
        self.cfg = cfg

    def build(self, run: TrainingRun) -> nn.Module:
        """Networks, optimizers and data streams (`run.rng` for anything random). Return the
        module whose forward trains; DDP wraps it and its trainable weights must agree across
        ranks at the end."""
        raise NotImplementedError

    def step(self, run: TrainingRun, step: int) -> dict[str, torch.Tensor]:
        """One optimization step (`run.optimize`); the loss terms by name, for logs."""
        raise NotImplementedError

    def images_per_step(self) -> int:
        """Training images one step of one process consumes (for images/s)."""
        return int(getattr(self.cfg, "batch", 1))

    def sample_rows(self, run: TrainingRun) -> list[torch.Tensor]:
        """N×3×H×W RGB 0..1 tensors for a sample grid (main rank, under `no_grad`)."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Weights and optimizer state for the checkpoint (plain tensors and dicts)."""
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError

    def export(self) -> Export:
        raise NotImplementedError


@contextlib.contextmanager
def evaluating(module: nn.Module) -> Iterator[nn.Module]:
    """Eval mode for a sample, then back to what it was."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def default_work_dir(name: str) -> Path:
    from ..registry import user_data_dir

    return user_data_dir() / "training" / name


class FrozenEncoderSteps(ArchSteps):
    """Steps of an arbitrary-style model whose VGG-19 encoder (the registry's frozen prefix,
    `self.frozen`) never trains: checkpoints and the exported file hold the rest of
    `self.model` only, the optimizer (`self.optimizer`) beside it in checkpoints."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    frozen: str

    def build_with_frozen_encoder(self, run: TrainingRun) -> nn.Module:
        """`self.model` with rtstyle's VGG-19 as its frozen encoder and the rest trainable
        (from `--init-from` when given), and `self.optimizer` (Adam) over the trainable part."""
        from ..vgg import load_vgg19
        from .common import weights_to_fine_tune

        cfg = self.cfg
        self.frozen = get_arch(self.arch).frozen_encoder_prefix
        # The first VGG-19 of a process is built (drawing from the RNG), later ones are copies;
        # isolating it keeps the seed alone in charge of the trainable part's init.
        with torch.random.fork_rng(devices=[]):
            encoder = load_vgg19()
        self.model = run.to_format(build_generator(self.arch, {"encoder": encoder})
                                   .to(run.device))
        trainable = []
        for name, param in self.model.named_parameters():
            if name.startswith(self.frozen):
                param.requires_grad_(False)
            else:
                trainable.append(param)
        if cfg.init_from:
            tuned = weights_to_fine_tune(cfg.init_from, self.arch)
            self.model.load_state_dict({**self.model.state_dict(), **tuned})
        self.optimizer = torch.optim.Adam(trainable, lr=cfg.lr)
        return self.model

    def _trainable_state(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.model.state_dict().items()
                if not k.startswith(self.frozen)}

    def state_dict(self) -> dict:
        return {"trainable": self._trainable_state(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict({**self.model.state_dict(), **state["trainable"]})
        self.optimizer.load_state_dict(state["optimizer"])


def train(steps: ArchSteps, on_step: StepCallback | None = None) -> TrainResult:
    """Run (or resume) a training; export the style on the main rank and return its path."""
    cfg = steps.cfg
    cfg.validate()
    info = get_arch(steps.arch)
    device = resolve_device(cfg.device)
    if steps.distributed:
        ctx, device = init_distributed(device)
    else:
        ctx = DistributedContext()
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            log.warning("rtstyle train %s has no DDP path: every process trains on its own",
                        steps.verb)
    try:
        precision = resolve_precision(cfg.precision, device)
        if precision.name not in info.precisions:
            raise UserInputError(f"{info.name} does not train in {precision.name}; choose from: "
                                 f"{', '.join(info.precisions)}")
        fingerprint = {**cfg.fingerprint(), "precision": precision.name}
        work = Path(cfg.work_dir or default_work_dir(cfg.name))
        run = TrainingRun(cfg, device, precision, ctx, precision.scaler(device), work)
        _resolve_speed(steps, run)
        return _train(steps, run, fingerprint, on_step)
    finally:
        finish_distributed(ctx)


def _resolve_speed(steps: ArchSteps, run: TrainingRun) -> None:
    cfg = run.cfg
    if steps.speedups:
        run.compile = resolve_compile(cfg.compile, run.device, run.dist.world_size, cfg.steps)
        run.channels_last = bool(cfg.channels_last)
        run.prefetch_depth = max(0, int(cfg.prefetch))


def build_single_run(steps: ArchSteps) -> TrainingRun:
    """What `train` sets up before its loop, for one process without resume: seeded, built,
    `run.model` compiled when the run compiles. For benchmarks that call `steps.step(run, i)`
    themselves (`benchmarks/train_speed.py`); close with `run.close_streams()`."""
    cfg = steps.cfg
    cfg.validate()
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    work = Path(cfg.work_dir or default_work_dir(cfg.name))
    run = TrainingRun(cfg, device, precision, DistributedContext(), precision.scaler(device), work)
    _resolve_speed(steps, run)
    torch.manual_seed(cfg.seed)
    module = steps.build(run)
    run.model = run.compiled(module) if run.compile_model else module
    module.train()
    return run


def _train(steps: ArchSteps, run: TrainingRun, fingerprint: dict,
           on_step: StepCallback | None) -> TrainResult:
    cfg, ctx = run.cfg, run.dist
    ckpt_path = run.work / "checkpoint.pt"
    torch.manual_seed(cfg.seed)
    module = steps.build(run)
    start, elapsed_before = 0, 0.0
    if cfg.resume:
        start, elapsed_before = _resume(steps, run, ckpt_path, fingerprint)
    if ctx.world_size > 1:
        run.model = DistributedDataParallel(module)
    else:
        run.model = run.compiled(module) if run.compile_model else module
    scalars = ScalarLog(run.work / "tensorboard", cfg.tensorboard and ctx.is_main)

    def checkpoint(step: int, duration: float, losses: dict[str, float]) -> None:
        save_checkpoint(ckpt_path, {
            "format": CHECKPOINT_FORMAT,
            "step": step,
            "duration_s": duration,
            "config": fingerprint,
            "losses": losses,
            "world_size": ctx.world_size,
            "torch_rng": torch.get_rng_state(),
            "rng": run.rng_states(),
            "scaler": run.scaler.state_dict(),
            "state": steps.state_dict(),
        })

    losses: dict[str, float] = {}
    step_times: list[float] = []
    t0 = time.perf_counter()
    step = start
    module.train()
    try:
        for step in range(start + 1, cfg.steps + 1):
            t_step = time.perf_counter()
            terms = steps.step(run, step)
            losses = {k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
                      for k, v in terms.items()}
            step_times.append(time.perf_counter() - t_step)
            if not all(map(_finite, losses.values())):
                raise UserInputError(f"training diverged at step {step} (losses {losses}); "
                                     "lower --lr or the loss weights")
            if ctx.is_main:
                scalars.add(step, losses)
                if cfg.sample_every and step % cfg.sample_every == 0:
                    _write_sample(steps, run, f"step{step:06d}.png")
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps:
                    checkpoint(step, elapsed_before + time.perf_counter() - t0, losses)
                if on_step is not None:
                    on_step(step, cfg.steps, losses)
        duration = elapsed_before + time.perf_counter() - t0
        rate = _images_per_s(step_times, steps.images_per_step() * ctx.world_size)
        speed = {"compile": run.compile, "channels_last": run.channels_last,
                 "prefetch": run.prefetch_depth}
        check_replicas_agree(module, ctx)
        path = None
        if ctx.is_main:
            checkpoint(step, duration, losses)
            _write_sample(steps, run, "final.png")
            path = _export(steps, run, fingerprint, step, losses, duration, rate, speed)
        wait_for_all_ranks(ctx)
        run.model = None  # DDP's reducer goes before the process group it holds
    finally:
        run.close_streams()
        scalars.close()
    return TrainResult(path, step, losses, duration, str(run.device), run.work, ctx.world_size,
                       rate, speed)


def _images_per_s(step_times: list[float], images_per_step: int) -> float | None:
    """Images per second of the training steps; the first one (warm-up: compile, first
    allocations) is left out when there are others."""
    timed = step_times[1:] or step_times
    if not timed or sum(timed) <= 0:
        return None
    return images_per_step * len(timed) / sum(timed)


def _resume(steps: ArchSteps, run: TrainingRun, path: Path, fingerprint: dict) -> tuple[int, float]:
    saved = load_checkpoint(path)
    if saved.get("format") != CHECKPOINT_FORMAT:
        raise UserInputError(f"--resume: {path} was written by an older rtstyle; "
                             "start the run again without --resume")
    check_resume_config(saved["config"], fingerprint, tuple(fingerprint))
    steps.load_state_dict(saved["state"])
    run.scaler.load_state_dict(saved["scaler"])
    step = int(saved["step"])
    if run.dist.world_size == 1:
        for name, (generator, _) in run.generators.items():
            generator.set_state(saved["rng"][name])
        torch.set_rng_state(saved["torch_rng"])
    else:  # only the main rank saves; the others restart their streams from (seed, rank, step)
        for generator, offset in run.generators.values():
            generator.manual_seed(run.seed_for(offset) + STEP_SEED_STRIDE * step)
    log.info("resuming %s at step %d", run.cfg.name, step)
    return step, float(saved["duration_s"])


def _write_sample(steps: ArchSteps, run: TrainingRun, name: str) -> None:
    with torch.no_grad():
        rows = steps.sample_rows(run)
    write_grid(run.work / "samples" / name, rows)


def _export(steps: ArchSteps, run: TrainingRun, fingerprint: dict, step: int,
            losses: dict[str, float], duration: float, images_per_s: float | None,
            speed: dict) -> Path:
    """The style file, its spec from the registry's facts and the run's settings."""
    from ..registry import user_styles_dir

    cfg = run.cfg
    info = get_arch(steps.arch)
    export = steps.export()
    spec = {
        "name": cfg.name,
        "tag": cfg.tag,
        "arch": info.name,
        "arch_params": info.infer_params(export.state),
        "input_range": info.input_range,
        "license": cfg.license,
        "origin": f"trained with rtstyle train {steps.verb}",
        "style": export.style,
        "training": {
            **fingerprint,
            "steps": step,
            "final_losses": {k: round(v, 6) for k, v in losses.items()},
            "device": device_description(run.device),
            "duration_s": round(duration, 1),
            "images_per_s": round(images_per_s, 2) if images_per_s else None,
            "speed": speed,
            "data": export.data,
        },
    }
    return export_style(cfg.out or user_styles_dir(), cfg.name, cfg.tag, export.state, spec)


def _finite(x: float) -> bool:
    return x == x and abs(x) != float("inf")
