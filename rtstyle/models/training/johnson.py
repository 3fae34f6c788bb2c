"""Train a feed-forward Johnson net (standard or lite) for one painting (Johnson et al. 2016).

Perceptual losses on the frozen VGG-19, Adam, random crops of a photo folder. An optional
temporal term (synthetic affine motion, see `temporal.py`) makes the net steadier on video.
The result is an FP16 rtstyle file that the registry picks up by name.

This is the file to copy for a new trainer: an `ArchSteps` subclass (build, one step, sample
rows, state, export) that `trainer.train` runs; its settings are a dataclass in `configs.py`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..architectures import build_generator, get_arch
from ..stylizer import UnitRangeNet, ValueRange
from .common import schedule_lr, style_info, weights_to_fine_tune
from .configs import JohnsonConfig
from .data import PhotoBatches, load_style_image, sample_photos
from .losses import perceptual_loss
from .trainer import ArchSteps, Export, StepCallback, TrainingRun, TrainResult, evaluating, train

__all__ = ["JohnsonConfig", "JohnsonSteps", "init_output_range", "train_johnson"]


def init_output_range(net: nn.Module, value_range: ValueRange, spread01: float = 50 / 255) -> None:
    """Start the net's output at mid-grey with a photo-like spread (`spread01` of RGB 0..1).

    Default init makes the last convolution emit values near 0 (a black image on the 0..255
    scale), and Adam, moving each weight by about `lr` per step, needs hundreds of steps just to
    lift it; on a CPU budget those are most of the run.
    """
    last = [m for m in net.modules() if isinstance(m, nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight.mul_(spread01 * value_range.scale)
        last.bias.fill_(value_range.to_net(0.5))


def stylize_batch(net01: nn.Module, content: torch.Tensor, temporal: bool,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The 0..1 output for `content`, and the temporal term when asked.

    The temporal pair (small affine motion plus sensor-like noise, which the net should ignore
    between frames) goes through the net in the same call as the batch: instance norm works
    per image, so this equals two calls, and DDP sees one forward per step.
    """
    if not temporal:
        return net01(content), None
    from .temporal import random_affine_flow_pair, temporal_loss

    warped, flow, mask = random_affine_flow_pair(content, noise=0.02, generator=generator)
    out01, out_b = net01(torch.cat((content, warped))).chunk(2)
    return out01, temporal_loss(out01.float(), out_b.float(), flow, mask)


def build_feed_forward(run: TrainingRun, arch: str, params: dict,
                       init_from: str | None) -> nn.Module:
    """A feed-forward generator on the run's device and memory format: `init_from`'s weights
    when fine-tuning, else a fresh init whose output starts in the registered range."""
    net = build_generator(arch, params)
    if init_from:
        net.load_state_dict(weights_to_fine_tune(init_from, arch, params))
    else:
        init_output_range(net, get_arch(arch).value_range)
    return run.to_format(net.to(run.device))


class JohnsonSteps(ArchSteps):
    verb = "johnson"
    speedups = True
    cfg: JohnsonConfig

    def __init__(self, cfg: JohnsonConfig):
        super().__init__(cfg)
        self.arch = cfg.arch_name

    def build(self, run: TrainingRun) -> nn.Module:
        cfg, device = self.cfg, run.device
        net = build_feed_forward(run, self.arch, cfg.arch_params, cfg.init_from)
        self.net = net
        self.optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        self.batches = run.prefetch(PhotoBatches(cfg.data, cfg.size, cfg.batch,
                                                 generator=run.rng("data", 0)), "data")
        self.temporal_gen = run.rng("temporal", 1, device=device)
        style = load_style_image(cfg.style_image, cfg.resolved_style_size()).to(device)
        self.criterion = perceptual_loss(run, style, cfg.content_layer, cfg.style_layers,
                                         cfg.content_weight, cfg.style_weight, cfg.tv_weight)
        # `--compile` compiles the VGG loss (forward and backward); on a CPU the generator stays
        # eager: compiled, its step measured slower at 128 px and no faster at 256 px
        # (`benchmarks/train_speed.py`).
        run.compile_model = run.device.type != "cpu"
        self.samples = sample_photos(cfg.data, cfg.size).to(device) if run.is_main else None
        # The same range conversion inference uses (`Stylizer`), without its clamp.
        self.net01 = UnitRangeNet(net, get_arch(self.arch).input_range)
        return self.net01

    def step(self, run: TrainingRun, step: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        schedule_lr(self.optimizer, cfg.lr, cfg.steps, cfg.lr_decay_from, step)
        content = run.to_format(next(self.batches).to(run.device, non_blocking=True))
        with run.autocast():
            out01, temporal = stylize_batch(run.model, content, cfg.temporal_weight > 0,
                                            self.temporal_gen)
            terms = self.criterion(out01, content)
            if temporal is not None:
                terms["temporal"] = cfg.temporal_weight * temporal
                terms["total"] = terms["total"] + terms["temporal"]
        run.optimize(terms["total"], self.optimizer)
        return terms

    def sample_rows(self, run: TrainingRun) -> list[torch.Tensor]:
        with evaluating(self.net01):
            out = self.net01(self.samples).float()
        return [self.samples, out]

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])

    def export(self) -> Export:
        cfg = self.cfg
        image = Path(cfg.style_image)
        return Export(
            state=self.net.state_dict(),
            style=style_info(cfg.painting or image.stem, cfg.artist, cfg.year, cfg.attribution,
                             cfg.style_license, image),
            data=Path(cfg.data).name,
        )


def train_johnson(cfg: JohnsonConfig, on_step: StepCallback | None = None) -> TrainResult:
    """Run (or resume) a training; export the style on rank 0 and return its path."""
    return train(JohnsonSteps(cfg), on_step)
