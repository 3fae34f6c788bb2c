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
# VGG-19 activations a content term may compare (the convs of ../vgg.py: conv1_1 … conv5_1)
CONTENT_LAYERS = tuple(f"relu{b}_{i}" for b, n in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 1))
                       for i in range(1, n + 1))
# "mid": issue #12, the full-resolution CPU net with conditional instance norm (models/mid.py)
JOHNSON_ARCHS = {"standard": "johnson", "lite": "johnson-lite", "mid": "johnson-mid"}
# `--compile` left to auto compiles runs of at least this many steps: a first compile costs one
# to three minutes on a 2-core CPU and saves ~0.6 s a step at 256 px (lite, batch 4; less at
# 128 px), which a short run (a test, a short fine-tune) never wins back.
COMPILE_MIN_STEPS = 500


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
    precision: str = option("auto", "auto, fp32, bf16 or fp16 (autocast); auto: bf16 on CUDA "
                                    "and on CPUs with AVX512-BF16 or AMX, else fp32.")
    # Speed (trainers whose steps use the skeleton's helpers: johnson); none of these changes
    # what is trained, so a resumed run may set them differently.
    compile: bool | None = option(None, "torch.compile the training step (default: on for "
                                        f"runs of {COMPILE_MIN_STEPS}+ steps with a C++ compiler or CUDA; "
                                        "off under torchrun).")
    channels_last: bool = option(True, "Channels-last memory format for the networks.")
    prefetch: int = option(2, "Batches a background thread loads ahead (0: load on the "
                              "training thread).")
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
    arch: str = option("lite", "standard (GPU real time), mid (CPU real time, full-res "
                               "strokes) or lite (fastest on a CPU).")
    size: int = option(256, "Training crop side in pixels.")
    style_size: int | None = option(None, "Painting long side (default 2×size); sets stroke size.")
    steps: int = option(2000, "Optimizer steps.")
    batch: int = option(4, "Photos per step (per GPU).")
    lr: float = option(1e-3, "Adam learning rate.")
    lr_decay_from: int | None = option(None, "From this step on the learning rate falls "
                                             "linearly towards 0 at --steps (default: "
                                             "constant); may be set or moved on --resume.")
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
    content_layer: str = option(DEFAULT_CONTENT_LAYER, "VGG-19 layer of the content term: "
                                "relu2_2 keeps fine detail, relu3_1/relu4_1 leave the "
                                "strokes to the painting.")
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
            "lr_decay_from": self.lr_decay_from,
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
        if self.lr_decay_from is not None and self.lr_decay_from < 0:
            raise UserInputError(f"--lr-decay-from must be a step >= 0, got {self.lr_decay_from}")
        if min(self.content_weight, self.style_weight, self.tv_weight, self.temporal_weight) < 0:
            raise UserInputError("loss weights must be >= 0")
        if self.content_layer not in CONTENT_LAYERS:
            raise UserInputError(f"unknown --content-layer '{self.content_layer}'; choose from: "
                                 + ", ".join(CONTENT_LAYERS))
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


@dataclass(kw_only=True)
class AdaINConfig(RunSettings):
    content: Path = option(help="Folder of content photos.")
    styles: Path = option(help="Folder of paintings.")
    name: str = option("adain", "Model name.")
    holdout: list[str] = option(help="Painting file kept out of training, for evaluation "
                                     "(repeat; hold out at least 4).", default_factory=list)
    init_from: str | None = option(None, "Fine-tune this AdaIN model (name or file) "
                                         "instead of starting fresh.")
    size: int = option(256, "Training crop side in pixels (photos and paintings).")
    steps: int = option(20000, "Optimizer steps.")
    batch: int = option(8, "Pairs per step (per GPU).")
    lr: float = option(1e-4, "Adam learning rate.")
    content_weight: float = option(1.0, "Weight of the content term (relu4_1 to the AdaIN "
                                        "target).")
    style_weight: float = option(2.0, "Weight of the style term (feature means and stds).")

    _RESUME_KEYS = ("size", "batch", "lr", "content_weight", "style_weight", "seed",
                    "precision", "holdout", "init_from")

    def fingerprint(self) -> dict:
        return {k: getattr(self, k) for k in self._RESUME_KEYS}

    def validate(self) -> None:
        if self.size < 16 or self.size % 8:
            raise UserInputError(f"--size must be a multiple of 8 and >= 16, got {self.size}")
        if self.steps < 1 or self.batch < 1:
            raise UserInputError("--steps and --batch must be >= 1")
        if min(self.content_weight, self.style_weight) < 0:
            raise UserInputError("loss weights must be >= 0")
        folder = Path(self.styles)
        if folder.is_dir():
            names = {p.name for p in folder.rglob("*")}
            unknown = sorted(set(self.holdout) - names)
            if unknown:
                raise UserInputError(f"--holdout {', '.join(unknown)}: not in {folder} "
                                     "(give the painting's file name)")


# --- issue #12: several paintings in one net (conditional instance norm); the steps are in
# multistyle.py, the verb is `rtstyle train multi`.
@dataclass(kw_only=True)
class MultiStyleConfig(JohnsonConfig):
    style_image: list[Path] = option(help="A painting to learn (repeat, one per style).",
                                     default_factory=list)
    names: str = option(help="Comma-separated style names, one per --style-image, in order.")
    name: str = option("multi", "Name of the file (each style is registered by its own name).")
    arch: str = redefault(JohnsonConfig, "arch", "mid")
    style_weights: str | None = option(None, "Comma-separated style weight per painting "
                                             "(default: --style-weight for all).")
    separable: bool = option(False, "Depthwise-separable residual blocks: ~1.4x faster on a "
                                    "CPU, a quarter of the parameters.")

    @property
    def style_names(self) -> list[str]:
        return [n.strip() for n in self.names.split(",") if n.strip()]

    @property
    def per_style_weights(self) -> list[float]:
        if not self.style_weights:
            return [self.style_weight] * len(self.style_image)
        try:
            return [float(w) for w in self.style_weights.split(",")]
        except ValueError:
            raise UserInputError(f"--style-weights must be numbers, got {self.style_weights}"
                                 ) from None

    @property
    def arch_params(self) -> dict:
        return {**super().arch_params, "n_styles": len(self.style_image),
                "separable": self.separable}

    def fingerprint(self) -> dict:
        return {**super().fingerprint(), "names": self.style_names,
                "style_images": [Path(p).name for p in self.style_image],
                "style_weights": self.per_style_weights}

    def validate(self) -> None:
        if self.arch_name != "johnson-mid":
            raise UserInputError("rtstyle train multi needs --arch mid (the net with "
                                 "conditional instance norm)")
        if len(self.style_image) < 1:
            raise UserInputError("give at least one --style-image")
        names = self.style_names
        if len(names) != len(self.style_image):
            raise UserInputError(f"--names has {len(names)} names for "
                                 f"{len(self.style_image)} --style-image")
        if len({n.casefold() for n in names}) != len(names):
            raise UserInputError(f"--names must be different from each other: {names}")
        for n in names:
            if not n.replace("-", "").replace("_", "").isalnum():
                raise UserInputError(f"style name '{n}' must be letters, digits, '-' or '_'")
        if len(self.per_style_weights) != len(names):
            raise UserInputError("--style-weights needs one weight per --style-image")
        if min(self.per_style_weights) < 0:
            raise UserInputError("loss weights must be >= 0")
        for image in self.style_image:
            if not Path(image).is_file():
                raise UserInputError(f"style image not found: {image}")
        first = self.style_image
        try:
            self.style_image = first[0]  # the single-painting checks, once
            super().validate()
        finally:
            self.style_image = first


# The paintings the recipe's AdaIN model never sees (the SANet experiment held out the same).
RECIPE_HOLDOUT = ("courbet_bonjour_monsieur_courbet.jpg", "sakai_hoitsu_flowering_tree.jpg",
                  "vangogh_olive_trees.jpg", "monet_woman_with_a_parasol.jpg")


@dataclass(kw_only=True)
class RecipeConfig:
    """`rtstyle train recipe`: the GPU tier (standard nets of the bundled styles + AdaIN) in one
    time budget (`rtstyle.models.training.recipe`)."""

    data: Path = option(help="Folder of training photos.")
    styles: Path = option(help="Folder of the paintings (the bundled styles' and AdaIN's).")
    out: Path = option(help="Folder for the style files and recipe_report.json.")
    budget_minutes: float = option(8.0, "Wall-clock budget for the whole recipe; each model "
                                        "gets a share and trains as many steps as fit.")
    toy: bool = option(False, "Tiny crops and 2 steps per model (CPU, CI): checks the recipe "
                              "end to end, trains nothing useful.")
    eval_photos: Path | None = option(None, "Folder of evaluation photos: style_rel and SSIM "
                                            "of every model on a few of them, in the report.")
    eval_count: int = option(4, "Evaluation photos per model.")
    only: list[str] = option(help="Train only these (repeat): the bundled style names or "
                                  "adain.", default_factory=list)
    holdout: list[str] = option(help="Paintings AdaIN never sees (repeat; default four of the "
                                     "shared set).", default_factory=lambda: list(RECIPE_HOLDOUT))
    temporal: bool = option(True, "Train the style nets with the synthetic-motion term and "
                                  "the bundled v3 weights (steadier video).")
    device: str = option("auto", "auto, cpu, cuda, cuda:N or mps.", flags=("--device", "-d"))
    precision: str = option("auto", "auto, fp32, bf16 or fp16 (autocast).")
    work_dir: Path | None = option(None, "Checkpoints and samples (default OUT/work).")
    tag: str = option("v1", "Version tag of the files.")
    seed: int = option(0, "Seed for init and data order.")
