"""Train SANet for arbitrary styles (Park & Lee, CVPR 2019) on folders of photos and paintings.

The VGG-19 encoder stays frozen; the style-attention transform and the decoder learn from the
paper's losses: content (mean-variance-normalised relu4_1/relu5_1), style (feature means and
standard deviations over relu1_1…relu5_1) and the two identity terms (a content or style image
stylised with itself should come back unchanged, in pixels and in features). The exported file
holds only `decoder.*` and `transform.*`; the registry rebuilds the encoder from the default VGG.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from ...devices import resolve_device
from ...errors import UserInputError
from ..sanet import SANetModel, mean_variance_norm
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
    weights_to_fine_tune,
    write_grid,
)
from .data import PhotoBatches
from .johnson import TrainResult, _device_name, _finite, default_work_dir

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
_RESUME_KEYS = ("size", "batch", "lr", "content_weight", "style_weight", "identity1_weight",
                "identity2_weight", "seed", "precision", "holdout", "init_from")


@dataclass(kw_only=True)
class SANetConfig(RunSettings):
    content: Path
    styles: Path
    name: str = "sanet"
    size: int = 256
    steps: int = 20000
    batch: int = 4
    lr: float = 1e-4
    content_weight: float = 1.0
    style_weight: float = 3.0
    identity1_weight: float = 50.0
    identity2_weight: float = 1.0
    holdout: list[str] = field(default_factory=list)  # painting file names kept out of training
    init_from: str | None = None  # a SANet style (name or file) to fine-tune instead of a fresh one

    def fingerprint(self) -> dict:
        return {k: getattr(self, k) for k in _RESUME_KEYS}

    def validate(self) -> None:
        if self.size < 32 or self.size % 16:
            raise UserInputError(f"--size must be a multiple of 16 and >= 32, got {self.size}")
        if self.steps < 1 or self.batch < 1:
            raise UserInputError("--steps and --batch must be >= 1")


class _HeldOutBatches(PhotoBatches):
    """Style crops from every painting except the held-out ones (kept for evaluation)."""

    def __init__(self, folder: Path, size: int, batch: int, seed: int, holdout: list[str]):
        super().__init__(folder, size, batch, seed)
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


def train_sanet(cfg: SANetConfig,
                on_step: Callable[[int, int, dict[str, float]], None] | None = None) -> TrainResult:
    cfg.validate()
    ctx, device = init_distributed(resolve_device(cfg.device))
    precision = resolve_precision(cfg.precision, device)
    fingerprint = {**cfg.fingerprint(), "precision": precision.name}
    work = Path(cfg.work_dir or default_work_dir(cfg.name))
    ckpt_path = work / "checkpoint.pt"

    torch.manual_seed(cfg.seed)
    model = SANetModel(encoder=load_vgg19()).to(device)
    model.encoder.requires_grad_(False)
    if cfg.init_from:
        trained_parts = weights_to_fine_tune(cfg.init_from, "sanet",
                                             prefixes=("decoder.", "transform."))
        model.load_state_dict({**model.state_dict(), **trained_parts})
    trainable = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    optimizer = torch.optim.Adam(trainable, lr=cfg.lr)
    contents = PhotoBatches(cfg.content, cfg.size, cfg.batch, seed=cfg.seed + 1000 * ctx.rank)
    styles = _HeldOutBatches(cfg.styles, cfg.size, cfg.batch, cfg.seed + 1 + 1000 * ctx.rank,
                             cfg.holdout)
    trained_on = [p.name for p in styles.paths]

    start, elapsed_before = 0, 0.0
    if cfg.resume:
        saved = load_checkpoint(ckpt_path)
        check_resume_config(saved["config"], fingerprint, _RESUME_KEYS)
        model.load_state_dict({**model.state_dict(), **saved["trainable"]})
        optimizer.load_state_dict(saved["optimizer"])
        contents.set_state(saved["data_rng"][0])
        styles.set_state(saved["data_rng"][1])
        start, elapsed_before = int(saved["step"]), float(saved["duration_s"])

    weights = {"content": cfg.content_weight, "style": cfg.style_weight,
               "identity1": cfg.identity1_weight, "identity2": cfg.identity2_weight}
    objective = SANetObjective(model, weights)
    if ctx.world_size > 1:  # the frozen encoder has no gradients, so DDP leaves it alone
        objective = DistributedDataParallel(objective)
    scaler = precision.scaler(device)
    scalars = ScalarLog(work / "tensorboard", cfg.tensorboard and ctx.is_main)
    losses: dict[str, float] = {}
    t0 = time.perf_counter()
    step = start
    model.train()
    try:
        for step in range(start + 1, cfg.steps + 1):
            content = next(contents).to(device)
            style = next(styles).to(device)
            with precision.autocast(device):
                terms, out = objective(content, style)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(terms["total"]).backward()
            scaler.step(optimizer)
            scaler.update()
            losses = {k: float(v.detach()) for k, v in terms.items()}
            if not all(map(_finite, losses.values())):
                raise UserInputError(f"training diverged at step {step} (losses {losses})")
            if ctx.is_main:
                scalars.add(step, losses)
                if cfg.sample_every and step % cfg.sample_every == 0:
                    write_grid(work / "samples" / f"step{step:06d}.png",
                               [content, style, out.detach().float()])
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps:
                    _checkpoint(ckpt_path, model, optimizer, contents, styles, step,
                                elapsed_before + time.perf_counter() - t0, fingerprint)
                if on_step is not None:
                    on_step(step, cfg.steps, losses)
        duration = elapsed_before + time.perf_counter() - t0
        check_replicas_agree(model, ctx)
        path = None
        if ctx.is_main:
            _checkpoint(ckpt_path, model, optimizer, contents, styles, step, duration, fingerprint)
            spec = {
                "name": cfg.name, "tag": cfg.tag, "arch": "sanet", "arch_params": {},
                "input_range": "0_1", "license": cfg.license,
                "origin": "trained with rtstyle train sanet",
                "style": {"painting": "any (arbitrary style; give --style-image)"},
                "training": {
                    **fingerprint, "steps": step,
                    "final_losses": {k: round(v, 6) for k, v in losses.items()},
                    "device": _device_name(device), "duration_s": round(duration, 1),
                    "data": {"content": Path(cfg.content).name, "styles": trained_on,
                             "held_out": sorted(cfg.holdout)},
                },
            }
            from ..registry import user_styles_dir

            path = export_style(cfg.out or user_styles_dir(), cfg.name, cfg.tag,
                                _trainable_state(model), spec)
    finally:
        scalars.close()
        finish_distributed(ctx)
    return TrainResult(path, step, losses, duration, str(device), work, ctx.world_size)


def _trainable_state(model: SANetModel) -> dict[str, torch.Tensor]:
    """decoder.* and transform.* only: the encoder is the default VGG-19 and stays out of files."""
    return {k: v for k, v in model.state_dict().items()
            if k.startswith(("decoder.", "transform."))}


def _checkpoint(path, model, optimizer, contents, styles, step, duration, fingerprint) -> None:
    save_checkpoint(path, {
        "step": step, "duration_s": duration, "config": fingerprint,
        "trainable": _trainable_state(model), "optimizer": optimizer.state_dict(),
        "data_rng": [contents.get_state(), styles.get_state()],
    })

