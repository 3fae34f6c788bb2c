"""Train the AdaIN decoder (Huang & Belongie, ICCV 2017) on folders of photos and paintings.

The VGG-19 encoder stays frozen; only the decoder learns. Each step pairs every photo crop with
a painting crop, takes the AdaIN target `t = AdaIN(relu4_1(photo), relu4_1(painting))` and
decodes it; the losses are the paper's: content (relu4_1 of the output against `t`) and style
(feature means and standard deviations of the output against the painting's on
relu1_1…relu4_1). Like SANet's, each term is relative to its target's size (rtstyle's Caffe
VGG-19 is not normalised, so raw errors differ by orders of magnitude between layers).
Paintings named with `holdout` are never seen, so a model can be judged on paintings it never
saw. The exported file holds only `decoder.*`; the registry rebuilds the encoder from the
default VGG-19.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import UserInputError
from ...images import read_image
from ..adain import AdaINModel, adain, feature_stats
from .configs import AdaINConfig
from .data import PhotoBatches, list_images, random_crop, to_tensor01
from .trainer import Export, FrozenEncoderSteps, StepCallback, TrainingRun, TrainResult, train

__all__ = ["AdaINConfig", "AdaINObjective", "AdaINSteps", "PaintingBatches", "adain_losses",
           "train_adain"]

log = logging.getLogger(__name__)

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
MIN_HOLDOUT = 4


def _relative(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error over the target's mean square (see the module docstring)."""
    target = target.float()
    return F.mse_loss(output.float(), target) / target.pow(2).mean().clamp_min(1e-8)


def adain_losses(model: AdaINModel, content: torch.Tensor, style: torch.Tensor,
                 weights: dict[str, float]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The paper's two weighted terms and the stylised batch (all images RGB 0..1)."""
    vgg = model.encoder
    with torch.no_grad():
        f_s = vgg(style, STYLE_LAYERS)
        target = adain(model.encode(content), *feature_stats(f_s["relu4_1"]))
    out = model.decoder(target)
    f_out = vgg(out, STYLE_LAYERS)
    content_term = _relative(f_out["relu4_1"], target)
    style_term = 0.0
    for k in STYLE_LAYERS:
        (m_o, s_o), (m_s, s_s) = feature_stats(f_out[k]), feature_stats(f_s[k])
        style_term = style_term + _relative(m_o, m_s) + _relative(s_o, s_s)
    terms = {"content": weights["content"] * content_term,
             "style": weights["style"] * style_term}
    terms["total"] = terms["content"] + terms["style"]
    return terms, out


class AdaINObjective(nn.Module):
    """The model and its losses as one module, so DDP sees the step's forward in one call."""

    def __init__(self, model: AdaINModel, weights: dict[str, float]):
        super().__init__()
        self.model, self.weights = model, weights

    def forward(self, content: torch.Tensor, style: torch.Tensor):
        return adain_losses(self.model, content, style, self.weights)


class PaintingBatches(PhotoBatches):
    """Crops of every painting except the held-out ones, decoded once and kept in memory.

    Paintings are large JPEGs; decoding eight of them per step would starve a GPU. Each is kept
    with its short side at most 2 × `size`: a crop covers at least half the short side and is
    resized to `size`, so nothing finer than what the crop keeps is lost.
    """

    def __init__(self, folder: Path, size: int, batch: int, holdout: list[str],
                 generator: torch.Generator):
        super().__init__(folder, size, batch, generator=generator)
        self.paths = [p for p in self.paths if p.name not in set(holdout)]
        if not self.paths:
            raise UserInputError(f"every painting in {folder} is held out; nothing to train on")
        self.images = [self._decode(p) for p in self.paths]

    def _decode(self, path: Path) -> torch.Tensor:
        img = to_tensor01(read_image(path))
        short = min(img.shape[-2:])
        if short > 2 * self.size:
            scale = 2 * self.size / short
            size = [max(1, round(s * scale)) for s in img.shape[-2:]]
            img = F.interpolate(img[None], size=size, mode="bilinear", align_corners=False,
                                antialias=True)[0].clamp_(0, 1)
        return img

    def __next__(self) -> torch.Tensor:
        idx = torch.randint(0, len(self.paths), (self.batch,), generator=self.generator).tolist()
        return torch.stack([random_crop(self.images[i], self.size, self.generator,
                                        self.min_scale) for i in idx])


def _sample_pairs(content: Path, styles: list[Path], size: int,
                  count: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed photos and paintings (centre crops) so every sample grid shows the same pairs."""
    photos = list_images(content)
    gen = torch.Generator().manual_seed(0)
    step = max(1, len(photos) // count)
    chosen = photos[::step][:count]
    paintings = [styles[i % len(styles)] for i in range(len(chosen))]
    crop = lambda p: random_crop(to_tensor01(read_image(p)), size, gen, 1.0)  # noqa: E731
    return (torch.stack([crop(p) for p in chosen]), torch.stack([crop(p) for p in paintings]))


class AdaINSteps(FrozenEncoderSteps):
    """The decoder trains; the encoder (the registry's frozen prefix) stays VGG-19.

    AdaIN eats and emits RGB 0..1, its registered range, which is also what its VGG losses
    take, so the batches go in as they come.
    """

    verb = "adain"
    arch = "adain"
    speedups = True  # --compile, --channels-last, --prefetch apply
    cfg: AdaINConfig

    def build(self, run: TrainingRun) -> nn.Module:
        cfg = self.cfg
        if len(cfg.holdout) < MIN_HOLDOUT:
            log.warning("adain: %d painting(s) held out; hold out at least %d (--holdout) to "
                        "measure it on paintings it never saw", len(cfg.holdout), MIN_HOLDOUT)
        self.build_with_frozen_encoder(run)
        self.contents = run.prefetch(PhotoBatches(cfg.content, cfg.size, cfg.batch,
                                                  generator=run.rng("content", 0)), "content")
        paintings = PaintingBatches(cfg.styles, cfg.size, cfg.batch, cfg.holdout,
                                    generator=run.rng("styles", 1))
        self.painting_paths = paintings.paths
        self.styles = run.prefetch(paintings, "styles")
        self.samples = _sample_pairs(cfg.content, self.painting_paths, cfg.size)
        weights = {"content": cfg.content_weight, "style": cfg.style_weight}
        return AdaINObjective(self.model, weights)

    def step(self, run: TrainingRun, step: int) -> dict[str, torch.Tensor]:
        content = run.to_format(next(self.contents).to(run.device, non_blocking=True))
        style = run.to_format(next(self.styles).to(run.device, non_blocking=True))
        with run.autocast():
            terms, _ = run.model(content, style)
        run.optimize(terms["total"], self.optimizer)
        return terms

    def sample_rows(self, run: TrainingRun) -> list[torch.Tensor]:
        """Fixed photos, paintings (seen ones) and the outputs."""
        content, style = (t.to(run.device) for t in self.samples)
        was_training = self.model.training
        self.model.eval()
        try:
            out = self.model(content, style).float().clamp(0, 1)
        finally:
            self.model.train(was_training)
        return [content, style, out]

    def export(self) -> Export:
        cfg = self.cfg
        return Export(
            state=self._trainable_state(),
            style={"painting": "any (arbitrary style: a painting as --style, or --style-image)"},
            data={"content": Path(cfg.content).name,
                  "styles": [p.name for p in self.painting_paths],
                  "held_out": sorted(cfg.holdout)},
        )


def train_adain(cfg: AdaINConfig, on_step: StepCallback | None = None) -> TrainResult:
    return train(AdaINSteps(cfg), on_step)
