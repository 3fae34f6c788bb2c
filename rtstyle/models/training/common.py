"""Pieces the trainer skeleton (`trainer.py`) is made of: precision, checkpoints, DDP, sample
grids, logs, style export.

Checkpoints hold only plain tensors, numbers, strings and dicts (`torch.save`), so they load
with `torch.load(weights_only=True)` like every other file rtstyle reads.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import os
import platform
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from ...errors import UserInputError, WeightsError
from ...images import atomic_output, write_image
from ..weights import write_style_file
from .configs import COMPILE_MIN_STEPS

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Precision:
    """Autocast settings for one device; fp16 also needs a gradient scaler."""

    name: str
    dtype: torch.dtype | None

    def autocast(self, device: torch.device):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.dtype)

    def scaler(self, device: torch.device) -> torch.amp.GradScaler:
        return torch.amp.GradScaler(device.type, enabled=self.dtype == torch.float16)


# CPU features with native bf16 arithmetic (oneDNN's bf16 convolutions and matmuls); without
# them bf16 is emulated and slower than fp32.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@functools.cache
def _cpuinfo_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:  # the first processor's flags
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:  # not Linux
        pass
    return frozenset()


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as /proc/cpuinfo lists them (empty where there is none)."""
    return _cpuinfo_flags()


def cpu_has_native_bf16() -> bool:
    return bool(BF16_CPU_FLAGS & cpu_flags())


def resolve_precision(name: str, device: torch.device) -> Precision:
    """`auto` is bf16 (or fp16 on older GPUs) on CUDA, bf16 on a CPU with native bf16
    (`avx512_bf16` or `amx_bf16` in its flags) and fp32 elsewhere.

    On a 2-core AVX512-BF16 EPYC, bf16 autocast with channels-last made a training step 1.6×
    (256 px, `benchmarks/train_speed.py`) to 2.2× (128 px, forward and backward alone) faster
    than fp32; Gram matrices and loss terms stay float32 (`losses.py`).
    """
    if name not in PRECISIONS:
        raise UserInputError(f"unknown precision '{name}'; choose from: {', '.join(PRECISIONS)}")
    if name == "auto":
        if device.type == "cuda":
            name = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        elif device.type == "cpu" and cpu_has_native_bf16():
            name = "bf16"
        else:
            name = "fp32"
    if name == "fp16" and device.type != "cuda":
        raise UserInputError("fp16 training needs CUDA; use --precision bf16 or fp32 on CPU")
    dtypes = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    return Precision(name, dtypes[name])


def compiler_available(device: torch.device) -> bool:
    """Whether torch.compile can build kernels here: a C++ compiler for the CPU (Inductor's
    C++ backend), Triton for CUDA."""
    if device.type == "cpu":
        return sys.platform.startswith("linux") and any(
            shutil.which(c) for c in ("g++", "c++", "clang++"))
    if device.type == "cuda":
        return importlib.util.find_spec("triton") is not None
    return False


def resolve_compile(setting: bool | None, device: torch.device, world_size: int,
                    steps_to_run: int) -> bool:
    """`--compile`: True/False as asked, None (auto) where it pays: CPU or CUDA with a compiler,
    one process, and a run long enough to win the compile time back. Under DDP (torchrun) the
    step runs eagerly: DDP's gradient hooks and a compiled graph need care this trainer skips."""
    if world_size > 1:
        if setting:
            log.warning("--compile is off under torchrun (DDP); the steps run eagerly")
        return False
    if setting is not None:
        return bool(setting)
    return steps_to_run >= COMPILE_MIN_STEPS and compiler_available(device)


def compile_module(module: torch.nn.Module) -> torch.nn.Module:
    """`torch.compile` for a training module (forward and, through AOTAutograd, backward).

    Shapes are static (a run trains one crop size); the compiled module shares its parameters
    with `module`, so optimizers, checkpoints and exports keep using the original."""
    return torch.compile(module, dynamic=False)


@dataclass(frozen=True)
class DistributedContext:
    """Rank facts of a torchrun launch; a plain single process when WORLD_SIZE is unset."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> tuple[DistributedContext, torch.device]:
    """Join the torchrun process group when WORLD_SIZE > 1 and pick this rank's GPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistributedContext(), device
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistributedContext(rank, world, local), device


def check_replicas_agree(module: torch.nn.Module, ctx: DistributedContext) -> None:
    """After DDP training every rank must hold the same weights; a mismatch means the gradient
    sync was bypassed somewhere, and the exported (rank 0) file would not be what was trained."""
    if ctx.world_size <= 1:
        return
    flat = torch.cat([p.detach().float().flatten() for p in module.parameters() if p.requires_grad])
    probe = torch.stack((flat.sum(), flat.abs().sum(), (flat * flat).sum()))
    gathered = [torch.zeros_like(probe) for _ in range(ctx.world_size)]
    dist.all_gather(gathered, probe)
    if not all(torch.allclose(g, gathered[0], rtol=1e-5, atol=1e-6) for g in gathered):
        raise RuntimeError(f"DDP replicas disagree after training: {[g.tolist() for g in gathered]}")
    if ctx.is_main:
        log.info("DDP: the weights of all %d ranks agree", ctx.world_size)


def weights_to_fine_tune(style: str, arch: str,
                         arch_params: dict | None = None) -> dict[str, torch.Tensor]:
    """FP32 weights of an existing style for `--init-from`: it must be `arch` (and, when given,
    the same `arch_params`). A frozen encoder (the registry's `frozen_encoder_prefix`) is left
    out: it is not trained, so it is the default one."""
    from ..architectures import get_arch
    from ..registry import resolve_style
    from ..weights import read_tensors

    spec = resolve_style(style)
    if spec.arch != arch or (arch_params is not None and spec.arch_params != arch_params):
        raise UserInputError(
            f"--init-from {style}: it is {spec.arch} {spec.arch_params}, but this run trains "
            f"{arch}{f' {arch_params}' if arch_params is not None else ''}; pick a matching style")
    frozen = get_arch(arch).frozen_encoder_prefix
    return {k: v.float() for k, v in read_tensors(spec.weights).items()
            if not (frozen and k.startswith(frozen))}


def wait_for_all_ranks(ctx: DistributedContext) -> None:
    """Hold every rank until the main one has exported: a rank that tears its process group
    down while the others still talk to it aborts in gloo ("terminate called without an
    active exception") and torchrun reports the whole run as failed."""
    if ctx.world_size > 1 and dist.is_initialized():
        dist.barrier()


def finish_distributed(ctx: DistributedContext) -> None:
    if ctx.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()


def save_checkpoint(path: Path, payload: dict) -> None:
    """Atomic torch.save of plain data (tensors, numbers, strings, lists, dicts)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:  # the umask's mode, not mkstemp's 0600
        torch.save(payload, tmp)


def load_checkpoint(path: Path) -> dict:
    if not path.is_file():
        raise UserInputError(f"--resume: no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, foreign pickle, ...
        raise WeightsError(f"{path.name}: unreadable checkpoint ({exc})") from None


# Settings a resumed run may set or change, like the step budget: when to slow down, not what
# is learned (recorded in the checkpoint and the style file all the same).
RESUME_MAY_CHANGE = ("lr_decay_from",)


def linear_decay(total: int, decay_from: int) -> Callable[[int], float]:
    """LR multiplier: 1 until `decay_from`, then linearly down to 0 at `total`."""
    span = max(1, total - decay_from)
    return lambda step: 1.0 - max(0, step - decay_from) / span


def schedule_lr(optimizer: torch.optim.Optimizer, lr: float, total: int,
                decay_from: int | None, step: int) -> None:
    """`--lr-decay-from`: `lr` until that step, then linearly to 0 at step `total` (the LR of
    step `step`, 1-based); nothing when no decay is asked for (the optimizer keeps `lr`)."""
    if decay_from is None:
        return
    for group in optimizer.param_groups:
        group["lr"] = lr * linear_decay(total, decay_from)(step - 1)


def check_resume_config(saved: dict, current: dict, keys: tuple[str, ...]) -> None:
    """A resumed run must train the same thing; only the step budget and the schedule's
    tail (`RESUME_MAY_CHANGE`) may change."""
    changed = [k for k in keys if k not in RESUME_MAY_CHANGE and saved.get(k) != current.get(k)]
    if changed:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in changed)
        raise UserInputError(f"--resume: the checkpoint was trained with other settings ({detail})")


def image_grid(rows: list[torch.Tensor]) -> torch.Tensor:
    """Stack N×3×H×W 0..1 tensors (same N, H, W) into one 3×(N·H)×(R·W) image."""
    cols = [torch.cat(list(r.detach().float().clamp(0, 1).cpu()), dim=1) for r in rows]
    return torch.cat(cols, dim=2)


def write_grid(path: Path, rows: list[torch.Tensor]) -> Path:
    grid = image_grid(rows)
    rgb = grid.mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return write_image(path, rgb)


class ScalarLog:
    """TensorBoard scalars when `torch.utils.tensorboard` imports, otherwise nothing."""

    def __init__(self, folder: Path, enabled: bool):
        self._writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.info("tensorboard is not installed; no TensorBoard logs")
            return
        self._writer = SummaryWriter(str(folder))

    def add(self, step: int, scalars: dict[str, float]) -> None:
        if self._writer is not None:
            for key, value in scalars.items():
                self._writer.add_scalar(f"loss/{key}", value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def export_style(out_dir: Path, name: str, tag: str, state: dict[str, torch.Tensor],
                 spec: dict) -> Path:
    """Write `<name>.<tag>.safetensors` (FP16) where the registry looks, spec in its header."""
    path = Path(out_dir) / f"{name}.{tag}.safetensors"
    return write_style_file(path, {k: v.detach().cpu() for k, v in state.items()}, spec)


def style_info(painting: str | None, artist: str | None, year: str | None,
               attribution: str | None, license_: str | None, image: Path | None) -> dict:
    return {
        "painting": painting,
        "artist": artist,
        "year": year,
        "attribution": attribution,
        "license": license_,
        "image": image.name if image is not None else None,
    }


def device_description(device: torch.device) -> str:
    """What trained a style, for its metadata (GPU model, or CPU and thread count)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
