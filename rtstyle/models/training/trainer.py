"""One training skeleton for every architecture; each architecture brings its `ArchSteps`.

`train(steps)` owns what every trainer needs and nothing architecture-specific: the device and
torchrun process group, autocast and the gradient scaler, the loop, the step callback, loss
checks, TensorBoard scalars, sample grids every `sample_every` steps, a checkpoint every
`checkpoint_every` steps with every random stream in it (so `--resume` ends with the same
weights as an uninterrupted run), the DDP wrap and the end-of-run check that all ranks agree,
and the export of an rtstyle file whose facts (input range, parameters) come from the
architecture registry.

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
from ..architectures import get_arch
from .common import (
    DistributedContext,
    Precision,
    ScalarLog,
    check_replicas_agree,
    check_resume_config,
    device_description,
    export_style,
    finish_distributed,
    init_distributed,
    load_checkpoint,
    resolve_precision,
    save_checkpoint,
    wait_for_all_ranks,
    write_grid,
)
from .configs import RunSettings

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
        return _train(steps, run, fingerprint, on_step)
    finally:
        finish_distributed(ctx)


def _train(steps: ArchSteps, run: TrainingRun, fingerprint: dict,
           on_step: StepCallback | None) -> TrainResult:
    cfg, ctx = run.cfg, run.dist
    ckpt_path = run.work / "checkpoint.pt"
    torch.manual_seed(cfg.seed)
    module = steps.build(run)
    start, elapsed_before = 0, 0.0
    if cfg.resume:
        start, elapsed_before = _resume(steps, run, ckpt_path, fingerprint)
    run.model = DistributedDataParallel(module) if ctx.world_size > 1 else module
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
            "rng": {name: g.get_state().cpu() for name, (g, _) in run.generators.items()},
            "scaler": run.scaler.state_dict(),
            "state": steps.state_dict(),
        })

    losses: dict[str, float] = {}
    t0 = time.perf_counter()
    step = start
    module.train()
    try:
        for step in range(start + 1, cfg.steps + 1):
            terms = steps.step(run, step)
            losses = {k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
                      for k, v in terms.items()}
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
        check_replicas_agree(module, ctx)
        path = None
        if ctx.is_main:
            checkpoint(step, duration, losses)
            _write_sample(steps, run, "final.png")
            path = _export(steps, run, fingerprint, step, losses, duration)
        wait_for_all_ranks(ctx)
        run.model = None  # DDP's reducer goes before the process group it holds
    finally:
        scalars.close()
    return TrainResult(path, step, losses, duration, str(run.device), run.work, ctx.world_size)


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
            losses: dict[str, float], duration: float) -> Path:
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
            "data": export.data,
        },
    }
    return export_style(cfg.out or user_styles_dir(), cfg.name, cfg.tag, export.state, spec)


def _finite(x: float) -> bool:
    return x == x and abs(x) != float("inf")
