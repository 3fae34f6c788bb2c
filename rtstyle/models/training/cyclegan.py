"""Unpaired image-to-image training (CycleGAN, Zhu et al. 2017); exports the A→B generator.

Two ResNet generators and two 70×70 PatchGAN discriminators with least-squares GAN losses,
cycle-consistency and identity terms, a history pool of fakes for the discriminators and a
learning rate that is constant for the first half and decays linearly to zero, as in
junyanz/pytorch-CycleGAN-and-pix2pix. An optional SSIM term on the cycle reconstruction keeps
structure that an L1 term alone lets blur.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ...devices import resolve_device
from ...errors import UserInputError
from ..cyclegan import ResnetGenerator
from .common import (
    RunSettings,
    ScalarLog,
    check_resume_config,
    export_style,
    load_checkpoint,
    resolve_precision,
    save_checkpoint,
    style_info,
    write_grid,
)
from .data import PhotoBatches
from .johnson import TrainResult, _device_name, _finite, default_work_dir
from .losses import ssim

_RESUME_KEYS = ("ngf", "n_blocks", "ndf", "size", "batch", "lr", "cycle_weight",
                "identity_weight", "ssim_weight", "pool_size", "seed", "precision")


class NLayerDiscriminator(nn.Module):
    """PatchGAN: a map of real/fake scores, each seeing a 70×70 patch (with n_layers=3)."""

    def __init__(self, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1),
                       nn.InstanceNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class ImagePool:
    """Feed discriminators a mix of new and older fakes (Shrivastava et al. 2017).

    Half the time a new fake replaces a random stored one and the stored one is returned, which
    keeps the discriminator from chasing only the generator's latest mode.
    """

    def __init__(self, size: int, generator: torch.Generator):
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = generator

    def query(self, batch: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return batch
        out = []
        for img in batch.detach():
            img = img.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif torch.rand((), generator=self.generator).item() < 0.5:
                i = int(torch.randint(0, self.size, (), generator=self.generator))
                out.append(self.images[i].clone())
                self.images[i] = img.clone()
            else:
                out.append(img)
        return torch.cat(out)


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """N(0, 0.02) convolutions, as in the reference implementation."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def linear_decay(total: int, decay_from: int) -> Callable[[int], float]:
    """LR multiplier: 1 until `decay_from`, then linearly down to 0 at `total`."""
    span = max(1, total - decay_from)
    return lambda step: 1.0 - max(0, step - decay_from) / span


@dataclass(kw_only=True)
class CycleGANConfig(RunSettings):
    domain_a: Path
    domain_b: Path
    name: str
    ngf: int = 64
    n_blocks: int = 9
    ndf: int = 64
    size: int = 256
    steps: int = 20000
    batch: int = 1
    lr: float = 2e-4
    cycle_weight: float = 10.0
    identity_weight: float = 0.5
    ssim_weight: float = 0.0
    pool_size: int = 50
    decay_from: int | None = None  # default: half of steps
    painting: str | None = None
    artist: str | None = None

    def fingerprint(self) -> dict:
        return {k: getattr(self, k) for k in _RESUME_KEYS}

    def validate(self) -> None:
        if self.size < 16 or self.size % 4:
            raise UserInputError(f"--size must be a multiple of 4 and >= 16, got {self.size}")
        if self.steps < 1 or self.batch < 1:
            raise UserInputError("--steps and --batch must be >= 1")


def _lsgan(pred: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(pred) if real else torch.zeros_like(pred)
    return torch.mean((pred.float() - target) ** 2)


def train_cyclegan(cfg: CycleGANConfig,
                   on_step: Callable[[int, int, dict[str, float]], None] | None = None
                   ) -> TrainResult:
    cfg.validate()
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    fingerprint = {**cfg.fingerprint(), "precision": precision.name}
    work = Path(cfg.work_dir or default_work_dir(cfg.name))
    ckpt_path = work / "checkpoint.pt"

    torch.manual_seed(cfg.seed)
    g_ab, g_ba = (ResnetGenerator(cfg.ngf, cfg.n_blocks) for _ in range(2))
    d_a, d_b = (NLayerDiscriminator(cfg.ndf) for _ in range(2))
    nets = {"g_ab": g_ab, "g_ba": g_ba, "d_a": d_a, "d_b": d_b}
    for net in nets.values():
        init_weights(net)
        net.to(device)
    opt_g = torch.optim.Adam(itertools.chain(g_ab.parameters(), g_ba.parameters()),
                             lr=cfg.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(itertools.chain(d_a.parameters(), d_b.parameters()),
                             lr=cfg.lr, betas=(0.5, 0.999))
    decay = linear_decay(cfg.steps, cfg.decay_from if cfg.decay_from is not None else cfg.steps // 2)
    data_a = PhotoBatches(cfg.domain_a, cfg.size, cfg.batch, seed=cfg.seed)
    data_b = PhotoBatches(cfg.domain_b, cfg.size, cfg.batch, seed=cfg.seed + 1)
    pool_gen = torch.Generator().manual_seed(cfg.seed + 2)
    pool_a, pool_b = ImagePool(cfg.pool_size, pool_gen), ImagePool(cfg.pool_size, pool_gen)

    start, elapsed_before = 0, 0.0
    if cfg.resume:
        saved = load_checkpoint(ckpt_path)
        check_resume_config(saved["config"], fingerprint, _RESUME_KEYS)
        for key, net in nets.items():
            net.load_state_dict(saved[key])
        opt_g.load_state_dict(saved["opt_g"])
        opt_d.load_state_dict(saved["opt_d"])
        data_a.set_state(saved["data_rng"][0])
        data_b.set_state(saved["data_rng"][1])
        pool_gen.set_state(saved["pool_rng"])
        start, elapsed_before = int(saved["step"]), float(saved["duration_s"])

    scaler = precision.scaler(device)
    scalars = ScalarLog(work / "tensorboard", cfg.tensorboard)
    fixed_a = next(PhotoBatches(cfg.domain_a, cfg.size, 4, seed=12345)).to(device)
    losses: dict[str, float] = {}
    t0 = time.perf_counter()
    step = start
    try:
        for step in range(start + 1, cfg.steps + 1):
            for opt in (opt_g, opt_d):
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * decay(step - 1)
            real_a = next(data_a).to(device) * 2 - 1
            real_b = next(data_b).to(device) * 2 - 1

            d_a.requires_grad_(False)
            d_b.requires_grad_(False)
            with precision.autocast(device):
                fake_b, fake_a = g_ab(real_a), g_ba(real_b)
                rec_a, rec_b = g_ba(fake_b), g_ab(fake_a)
                terms = {
                    "g_gan": _lsgan(d_b(fake_b), True) + _lsgan(d_a(fake_a), True),
                    "cycle": cfg.cycle_weight * ((rec_a - real_a).abs().mean()
                                                 + (rec_b - real_b).abs().mean()),
                }
                if cfg.identity_weight > 0:
                    terms["identity"] = cfg.identity_weight * cfg.cycle_weight * (
                        (g_ab(real_b) - real_b).abs().mean() + (g_ba(real_a) - real_a).abs().mean())
                if cfg.ssim_weight > 0:
                    terms["ssim"] = cfg.ssim_weight * (
                        2 - ssim((rec_a + 1) / 2, (real_a + 1) / 2)
                        - ssim((rec_b + 1) / 2, (real_b + 1) / 2))
                loss_g = sum(terms.values())
            opt_g.zero_grad(set_to_none=True)
            scaler.scale(loss_g).backward()
            scaler.step(opt_g)

            d_a.requires_grad_(True)
            d_b.requires_grad_(True)
            with precision.autocast(device):
                past_b, past_a = pool_b.query(fake_b), pool_a.query(fake_a)
                terms["d_b"] = 0.5 * (_lsgan(d_b(real_b), True) + _lsgan(d_b(past_b), False))
                terms["d_a"] = 0.5 * (_lsgan(d_a(real_a), True) + _lsgan(d_a(past_a), False))
            opt_d.zero_grad(set_to_none=True)
            scaler.scale(terms["d_a"] + terms["d_b"]).backward()
            scaler.step(opt_d)
            scaler.update()

            losses = {k: float(v.detach()) for k, v in terms.items()}
            losses["total_g"] = float(loss_g.detach())
            if not all(map(_finite, losses.values())):
                raise UserInputError(f"training diverged at step {step} (losses {losses})")
            scalars.add(step, losses)
            if cfg.sample_every and step % cfg.sample_every == 0:
                _sample(g_ab, fixed_a, work / "samples" / f"step{step:06d}.png")
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps:
                _checkpoint(ckpt_path, nets, opt_g, opt_d, data_a, data_b, pool_gen, step,
                            elapsed_before + time.perf_counter() - t0, fingerprint)
            if on_step is not None:
                on_step(step, cfg.steps, losses)
        duration = elapsed_before + time.perf_counter() - t0
        _checkpoint(ckpt_path, nets, opt_g, opt_d, data_a, data_b, pool_gen, step, duration,
                    fingerprint)
        _sample(g_ab, fixed_a, work / "samples" / "final.png")
        spec = {
            "name": cfg.name,
            "tag": cfg.tag,
            "arch": "cyclegan",
            "arch_params": {"ngf": cfg.ngf, "n_blocks": cfg.n_blocks},
            "input_range": "-1_1",
            "license": cfg.license,
            "origin": "trained with rtstyle train cyclegan",
            "style": style_info(cfg.painting or Path(cfg.domain_b).name, cfg.artist, None, None,
                                None, None),
            "training": {
                **fingerprint, "steps": step,
                "final_losses": {k: round(v, 6) for k, v in losses.items()},
                "device": _device_name(device), "duration_s": round(duration, 1),
                "data": {"domain_a": Path(cfg.domain_a).name, "domain_b": Path(cfg.domain_b).name},
            },
        }
        from ..registry import user_styles_dir

        path = export_style(cfg.out or user_styles_dir(), cfg.name, cfg.tag, g_ab.state_dict(), spec)
    finally:
        scalars.close()
    return TrainResult(path, step, losses, duration, str(device), work)


@torch.no_grad()
def _sample(g_ab: nn.Module, fixed_a: torch.Tensor, path: Path) -> None:
    g_ab.eval()
    out = (g_ab(fixed_a * 2 - 1) + 1) / 2
    g_ab.train()
    write_grid(path, [fixed_a, out])


def _checkpoint(path, nets, opt_g, opt_d, data_a, data_b, pool_gen, step, duration, fingerprint):
    save_checkpoint(path, {
        "step": step, "duration_s": duration, "config": fingerprint,
        **{k: n.state_dict() for k, n in nets.items()},
        "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
        "data_rng": [data_a.get_state(), data_b.get_state()],
        "pool_rng": pool_gen.get_state(),
    })
