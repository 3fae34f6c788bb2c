"""Unpaired image-to-image training (CycleGAN, Zhu et al. 2017); exports the A→B generator.

Two ResNet generators and two 70×70 PatchGAN discriminators with least-squares GAN losses,
cycle-consistency and identity terms, a history pool of fakes for the discriminators and a
learning rate that is constant for the first half and decays linearly to zero, as in
junyanz/pytorch-CycleGAN-and-pix2pix. An optional SSIM term on the cycle reconstruction keeps
structure that an L1 term alone lets blur.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import torch
from torch import nn

from ..architectures import build_generator, get_arch
from .common import linear_decay, schedule_lr, style_info
from .configs import CycleGANConfig
from .data import PhotoBatches
from .losses import ssim
from .trainer import ArchSteps, Export, StepCallback, TrainingRun, TrainResult, evaluating, train

__all__ = ["CycleGANConfig", "CycleGANSteps", "ImagePool", "NLayerDiscriminator", "linear_decay",
           "train_cyclegan"]


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


def _lsgan(pred: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(pred) if real else torch.zeros_like(pred)
    return torch.mean((pred.float() - target) ** 2)


class CycleGANSteps(ArchSteps):
    """Both generators and discriminators train; the A→B generator is the exported style.

    Everything runs in the generators' own range (the registry's -1..1): the discriminators
    see it, and the cycle and identity weights of the reference implementation assume it.
    """

    verb = "cyclegan"
    arch = "cyclegan"
    distributed = False
    cfg: CycleGANConfig

    def build(self, run: TrainingRun) -> nn.Module:
        cfg, device = self.cfg, run.device
        self.range = get_arch(self.arch).value_range
        params = {"ngf": cfg.ngf, "n_blocks": cfg.n_blocks}
        self.g_ab, self.g_ba = (build_generator(self.arch, params) for _ in range(2))
        self.d_a, self.d_b = (NLayerDiscriminator(cfg.ndf) for _ in range(2))
        self.nets = {"g_ab": self.g_ab, "g_ba": self.g_ba, "d_a": self.d_a, "d_b": self.d_b}
        for net in self.nets.values():
            init_weights(net)
            net.to(device)
        self.opt_g = torch.optim.Adam(
            itertools.chain(self.g_ab.parameters(), self.g_ba.parameters()),
            lr=cfg.lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(
            itertools.chain(self.d_a.parameters(), self.d_b.parameters()),
            lr=cfg.lr, betas=(0.5, 0.999))
        self.decay_from = cfg.decay_from if cfg.decay_from is not None else cfg.steps // 2
        self.data_a = PhotoBatches(cfg.domain_a, cfg.size, cfg.batch,
                                   generator=run.rng("data_a", 0))
        self.data_b = PhotoBatches(cfg.domain_b, cfg.size, cfg.batch,
                                   generator=run.rng("data_b", 1))
        pool_gen = run.rng("pool", 2)
        self.pool_a = ImagePool(cfg.pool_size, pool_gen)
        self.pool_b = ImagePool(cfg.pool_size, pool_gen)
        self.fixed_a = next(PhotoBatches(cfg.domain_a, cfg.size, 4, seed=12345)).to(device)
        return nn.ModuleDict(self.nets)

    def step(self, run: TrainingRun, step: int) -> dict[str, torch.Tensor]:
        cfg, device = self.cfg, run.device
        g_ab, g_ba, d_a, d_b = self.g_ab, self.g_ba, self.d_a, self.d_b
        for opt in (self.opt_g, self.opt_d):
            schedule_lr(opt, cfg.lr, cfg.steps, self.decay_from, step)
        real_a = self.range.to_net(next(self.data_a).to(device))
        real_b = self.range.to_net(next(self.data_b).to(device))

        d_a.requires_grad_(False)
        d_b.requires_grad_(False)
        with run.autocast():
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
                from_net = self.range.from_net
                terms["ssim"] = cfg.ssim_weight * (
                    2 - ssim(from_net(rec_a), from_net(real_a))
                    - ssim(from_net(rec_b), from_net(real_b)))
            loss_g = sum(terms.values())
        scaler = run.scaler
        self.opt_g.zero_grad(set_to_none=True)
        scaler.scale(loss_g).backward()
        scaler.step(self.opt_g)

        d_a.requires_grad_(True)
        d_b.requires_grad_(True)
        with run.autocast():
            past_b, past_a = self.pool_b.query(fake_b), self.pool_a.query(fake_a)
            terms["d_b"] = 0.5 * (_lsgan(d_b(real_b), True) + _lsgan(d_b(past_b), False))
            terms["d_a"] = 0.5 * (_lsgan(d_a(real_a), True) + _lsgan(d_a(past_a), False))
        self.opt_d.zero_grad(set_to_none=True)
        scaler.scale(terms["d_a"] + terms["d_b"]).backward()
        scaler.step(self.opt_d)
        scaler.update()
        return {**terms, "total_g": loss_g}

    def sample_rows(self, run: TrainingRun) -> list[torch.Tensor]:
        with evaluating(self.g_ab):
            out = self.range.from_net(self.g_ab(self.range.to_net(self.fixed_a)))
        return [self.fixed_a, out]

    def state_dict(self) -> dict:
        return {**{k: n.state_dict() for k, n in self.nets.items()},
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                # the fakes the discriminators will see again: a resume without them diverges
                "pool_a": list(self.pool_a.images), "pool_b": list(self.pool_b.images)}

    def load_state_dict(self, state: dict) -> None:
        for key, net in self.nets.items():
            net.load_state_dict(state[key])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        device = self.fixed_a.device
        self.pool_a.images = [t.to(device) for t in state["pool_a"]]
        self.pool_b.images = [t.to(device) for t in state["pool_b"]]

    def export(self) -> Export:
        cfg = self.cfg
        return Export(
            state=self.g_ab.state_dict(),
            style=style_info(cfg.painting or Path(cfg.domain_b).name, cfg.artist, None, None,
                             None, None),
            data={"domain_a": Path(cfg.domain_a).name, "domain_b": Path(cfg.domain_b).name},
        )


def train_cyclegan(cfg: CycleGANConfig, on_step: StepCallback | None = None) -> TrainResult:
    return train(CycleGANSteps(cfg), on_step)
