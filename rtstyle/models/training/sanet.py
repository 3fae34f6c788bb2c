"""Train SANet for arbitrary styles (Park & Lee, CVPR 2019) on folders of photos and paintings.

The VGG-19 encoder stays frozen; the style-attention transform and the decoder learn from the
paper's losses: content (mean-variance-normalised relu4_1/relu5_1), style (feature means and
standard deviations over relu1_1…relu5_1) and the two identity terms (a content or style image
stylised with itself should come back unchanged, in pixels and in features). The exported file
holds only `decoder.*` and `transform.*`; the registry rebuilds the encoder from the default VGG.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import UserInputError
from ..sanet import SANetModel, mean_variance_norm
from .configs import SANetConfig
from .data import PhotoBatches
from .trainer import Export, FrozenEncoderSteps, StepCallback, TrainingRun, TrainResult, train

__all__ = ["SANetConfig", "SANetObjective", "SANetSteps", "sanet_losses", "train_sanet"]

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


class _HeldOutBatches(PhotoBatches):
    """Style crops from every painting except the held-out ones (kept for evaluation)."""

    def __init__(self, folder: Path, size: int, batch: int, holdout: list[str],
                 generator: torch.Generator):
        super().__init__(folder, size, batch, generator=generator)
        self.paths = [p for p in self.paths if p.name not in set(holdout)]
        if not self.paths:
            raise UserInputError(f"every painting in {folder} is held out; nothing to train on")


def _relative(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error over the target's mean square: rtstyle's Caffe VGG-19 is not normalised
    (relu4_1 activations are ~100× relu1_1's), so raw feature errors would outweigh the content
    and pixel terms by orders of magnitude and the paper's weights would mean nothing."""
    target = target.float()
    return F.mse_loss(output.float(), target) / target.pow(2).mean().clamp_min(1e-8)


def _mean_std(feat: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    flat = feat.float().flatten(2)
    return flat.mean(-1), (flat.var(-1) + eps).sqrt()


def sanet_losses(model: SANetModel, content: torch.Tensor, style: torch.Tensor,
                 weights: dict[str, float]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The paper's four weighted terms and the stylised batch (all images RGB 0..1)."""
    vgg = model.encoder
    out = model(content, style)
    f_out = vgg(out, STYLE_LAYERS)
    with torch.no_grad():
        f_c = vgg(content, STYLE_LAYERS)
        f_s = vgg(style, STYLE_LAYERS)
    content_term = sum(
        F.mse_loss(mean_variance_norm(f_out[k].float()), mean_variance_norm(f_c[k].float()))
        for k in ("relu4_1", "relu5_1"))
    style_term = 0.0
    for k in STYLE_LAYERS:
        (m_o, s_o), (m_s, s_s) = _mean_std(f_out[k]), _mean_std(f_s[k])
        style_term = style_term + _relative(m_o, m_s) + _relative(s_o, s_s)
    i_cc, i_ss = model(content, content), model(style, style)
    id1 = F.mse_loss(i_cc.float(), content) + F.mse_loss(i_ss.float(), style)
    f_cc, f_ss = vgg(i_cc, STYLE_LAYERS), vgg(i_ss, STYLE_LAYERS)
    id2 = sum(_relative(f_cc[k], f_c[k]) + _relative(f_ss[k], f_s[k]) for k in STYLE_LAYERS)
    terms = {
        "content": weights["content"] * content_term,
        "style": weights["style"] * style_term,
        "identity1": weights["identity1"] * id1,
        "identity2": weights["identity2"] * id2,
    }
    terms["total"] = sum(terms.values())
    return terms, out


class SANetObjective(torch.nn.Module):
    """The model and its losses as one module, so DDP sees every forward of a step in one call
    (the step runs the model three times: stylise, and the two identity reconstructions)."""

    def __init__(self, model: SANetModel, weights: dict[str, float]):
        super().__init__()
        self.model, self.weights = model, weights

    def forward(self, content: torch.Tensor, style: torch.Tensor):
        return sanet_losses(self.model, content, style, self.weights)


class SANetSteps(FrozenEncoderSteps):
    """The transform and decoder train; the encoder (the registry's frozen prefix) stays VGG-19.

    SANet eats and emits RGB 0..1, its registered range, which is also what its VGG losses take,
    so the batches go in as they come.
    """

    verb = "sanet"
    arch = "sanet"
    cfg: SANetConfig

    def build(self, run: TrainingRun) -> nn.Module:
        cfg = self.cfg
        self.build_with_frozen_encoder(run)
        self.contents = PhotoBatches(cfg.content, cfg.size, cfg.batch,
                                     generator=run.rng("content", 0))
        self.styles = _HeldOutBatches(cfg.styles, cfg.size, cfg.batch, cfg.holdout,
                                      generator=run.rng("styles", 1))
        weights = {"content": cfg.content_weight, "style": cfg.style_weight,
                   "identity1": cfg.identity1_weight, "identity2": cfg.identity2_weight}
        # the frozen encoder has no gradients, so DDP leaves it alone
        return SANetObjective(self.model, weights)

    def step(self, run: TrainingRun, step: int) -> dict[str, torch.Tensor]:
        content = next(self.contents).to(run.device)
        style = next(self.styles).to(run.device)
        with run.autocast():
            terms, out = run.model(content, style)
        run.optimize(terms["total"], self.optimizer)
        self._last = (content, style, out.detach())
        return terms

    def sample_rows(self, run: TrainingRun) -> list[torch.Tensor]:
        """The last step's content, painting and output (SANet has no fixed painting)."""
        content, style, out = self._last
        return [content, style, out.float()]

    def export(self) -> Export:
        cfg = self.cfg
        return Export(
            state=self._trainable_state(),
            style={"painting": "any (arbitrary style; give --style-image)"},
            data={"content": Path(cfg.content).name, "styles": [p.name for p in self.styles.paths],
                  "held_out": sorted(cfg.holdout)},
        )


def train_sanet(cfg: SANetConfig, on_step: StepCallback | None = None) -> TrainResult:
    return train(SANetSteps(cfg), on_step)
