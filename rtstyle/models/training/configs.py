"""What each trainer learns and how it runs: one dataclass per `rtstyle train` verb.

Every default lives here, once. A field with `help` in its metadata is also a command-line
option of its verb (`rtstyle/cli/train.py` builds the options from these fields, as transformers'
`HfArgumentParser` does from `field(metadata={"help": ...})`); a field without is for library
callers and recipes (`bundled.py`) only.

This module imports no torch, so `rtstyle --help` stays fast.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import UserInputError

DEFAULT_CONTENT_LAYER = "relu2_2"
DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
JOHNSON_ARCHS = {"standard": "johnson", "lite": "johnson-lite"}


def option(default: Any = dataclasses.MISSING, help: str | None = None, *,
           flags: tuple[str, ...] = (), default_factory: Any = dataclasses.MISSING) -> Any:
    """A config field that is also a CLI option: `help` for `--help`, `flags` for short names."""
    metadata = {"help": help, "flags": flags} if help is not None else {}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def redefault(cls: type, name: str, default: Any) -> Any:
    """The field `name` of `cls` (its help too) with another default, for a subclass."""
    base = next(f for f in dataclasses.fields(cls) if f.name == name)
    return dataclasses.field(default=default, metadata=base.metadata)


@dataclass(kw_only=True)
class RunSettings:
    """How a training run runs, shared by every trainer (what it learns is in each subclass)."""

    device: str = option("auto", "auto, cpu, cuda, cuda:N or mps.", flags=("--device", "-d"))
    precision: str = option("auto", "auto, fp32, bf16 or fp16 (autocast).")
    seed: int = option(0, "Seed for init and data order.")
    resume: bool = option(False, "Continue from the work dir's checkpoint.")
    sample_every: int = option(500, "Write a sample grid every N steps (0: never).")
    checkpoint_every: int = option(500, "Checkpoint every N steps (0: only at the end).")
    work_dir: Path | None = option(None, "Checkpoints, samples, logs "
                                         "(default: <user data dir>/training/NAME).")
    out: Path | None = option(None, "Folder for the style file (default: user styles).")
    tag: str = option("v1", "Version tag of the style.")
    license: str = "unspecified"
    tensorboard: bool = True

    def fingerprint(self) -> dict:
        """The settings that define what is trained, as plain data; a resumed run must not
        change them, and the exported file records them."""
        raise NotImplementedError

    def validate(self) -> None:
        """Raise `UserInputError` for settings that cannot train."""


@dataclass(kw_only=True)
class JohnsonConfig(RunSettings):
    style_image: Path = option(help="The painting to learn.")
    data: Path = option(help="Folder of training photos.")
    name: str = option(help="Style name to register.")
    arch: str = option("lite", "standard (GPU real time) or lite (CPU real time).")
    size: int = option(256, "Training crop side in pixels.")
    style_size: int | None = option(None, "Painting long side (default 2×size); sets stroke size.")
    steps: int = option(2000, "Optimizer steps.")
    batch: int = option(4, "Photos per step (per GPU).")
    lr: float = option(1e-3, "Adam learning rate.")
    content_weight: float = option(1.0, "Weight of the content term.")
    # 0.25 is what `rtstyle train johnson` has always used and the README documents; the bundled
    # styles set their own per painting (`bundled.py`).
    style_weight: float = option(0.25, "Weight of the Gram style term.")
    tv_weight: float = option(0.0, "Weight of total variation.")
    temporal_weight: float = option(0.0, "Weight of the synthetic-motion stability term.")
    init_from: str | None = option(None, "Fine-tune this style (name or file, same --arch) "
                                         "instead of starting fresh.")
    channels: int | None = option(None, "Width of the net (default per arch).")
    n_res: int | None = option(None, "Residual blocks (default per arch).")
    content_layer: str = DEFAULT_CONTENT_LAYER
    style_layers: tuple[str, ...] = DEFAULT_STYLE_LAYERS
    sample_every: int = redefault(RunSettings, "sample_every", 200)
    checkpoint_every: int = redefault(RunSettings, "checkpoint_every", 200)
    painting: str | None = option(None, "Painting title (metadata; default the image's name).")
    artist: str | None = option(None, "Artist (metadata).")
    year: str | None = None
    attribution: str | None = None
    style_license: str | None = None

    @property
    def arch_name(self) -> str:
        try:
            return JOHNSON_ARCHS[self.arch]
        except KeyError:
            raise UserInputError(f"unknown --arch '{self.arch}'; choose from: "
                                 f"{', '.join(JOHNSON_ARCHS)}") from None

    @property
    def arch_params(self) -> dict:
        """The builder's defaults (from the registry) with `channels`/`n_res` where given."""
        from ..architectures import get_arch

        params = get_arch(self.arch_name).default_params()
        if self.channels is not None:
            params["channels"] = self.channels
        if self.n_res is not None:
            params["n_res"] = self.n_res
        return params

    def resolved_style_size(self) -> int:
        return self.style_size or 2 * self.size

    def fingerprint(self) -> dict:
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


@dataclass(kw_only=True)
class CycleGANConfig(RunSettings):
    domain_a: Path = option(help="Folder of source images (photos).")
    domain_b: Path = option(help="Folder of target images (paintings).")
    name: str = option(help="Style name for the A→B generator.")
    ngf: int = option(64, "Generator width.")
    n_blocks: int = option(9, "Generator residual blocks.")
    ndf: int = 64
    size: int = option(256, "Training crop side in pixels.")
    steps: int = option(20000, "Optimizer steps.")
    batch: int = option(1, "Images per step.")
    lr: float = option(2e-4, "Adam learning rate (decays linearly in the 2nd half).")
    cycle_weight: float = option(10.0, "Weight of cycle consistency.")
    identity_weight: float = option(0.5, "Identity term, relative to the cycle weight.")
    ssim_weight: float = option(0.0, "Weight of 1-SSIM on the reconstructions.")
    pool_size: int = 50
    decay_from: int | None = None  # default: half of steps
    painting: str | None = None
    artist: str | None = None

    _RESUME_KEYS = ("ngf", "n_blocks", "ndf", "size", "batch", "lr", "cycle_weight",
                    "identity_weight", "ssim_weight", "pool_size", "seed", "precision")

    def fingerprint(self) -> dict:
        return {k: getattr(self, k) for k in self._RESUME_KEYS}

    def validate(self) -> None:
        if self.size < 16 or self.size % 4:
            raise UserInputError(f"--size must be a multiple of 4 and >= 16, got {self.size}")
        if self.steps < 1 or self.batch < 1:
            raise UserInputError("--steps and --batch must be >= 1")


@dataclass(kw_only=True)
class SANetConfig(RunSettings):
    content: Path = option(help="Folder of content photos.")
    styles: Path = option(help="Folder of paintings.")
    name: str = option("sanet", "Model name.")
    holdout: list[str] = option(help="Painting file kept out of training (repeat).",
                                default_factory=list)
    init_from: str | None = option(None, "Fine-tune this SANet model (name or file) "
                                         "instead of starting fresh.")
    size: int = option(256, "Training crop side in pixels.")
    steps: int = option(20000, "Optimizer steps.")
    batch: int = option(4, "Pairs per step (per GPU).")
    lr: float = option(1e-4, "Adam learning rate.")
    content_weight: float = 1.0
    style_weight: float = 3.0
    identity1_weight: float = 50.0
    identity2_weight: float = 1.0

    _RESUME_KEYS = ("size", "batch", "lr", "content_weight", "style_weight", "identity1_weight",
                    "identity2_weight", "seed", "precision", "holdout", "init_from")

    def fingerprint(self) -> dict:
        return {k: getattr(self, k) for k in self._RESUME_KEYS}

    def validate(self) -> None:
        if self.size < 32 or self.size % 16:
            raise UserInputError(f"--size must be a multiple of 16 and >= 32, got {self.size}")
        if self.steps < 1 or self.batch < 1:
            raise UserInputError("--steps and --batch must be >= 1")
