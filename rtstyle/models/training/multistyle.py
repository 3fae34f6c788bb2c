"""Train one net on several paintings: conditional instance norm (Dumoulin et al. 2017).

Every convolution is shared; each painting owns one row (γ, β) of every instance norm of the
mid net (`rtstyle.models.mid`, `n_styles` = the number of paintings). Each image of a batch
draws its own style (a shuffled round over the paintings, so every painting is seen equally
often), the net paints it with that style's row, and the style loss compares it with that
painting's Gram matrices, computed once at the start. Content, total variation and the
temporal term are those of `rtstyle train johnson` (`losses.py`, `temporal.py`), with the
same speed helpers of the trainer skeleton (`run.to_format`, `run.prefetch`, compiled loss
network).

The file lists its styles in its spec (`"styles": [...]`, `"style_info": [...]`), and the
registry registers each by its own name (`rtstyle styles`, `--style monet`).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..architectures import get_arch
from ..stylizer import UnitRangeNet
from ..weights import read_spec, read_tensors, write_style_file
from .common import schedule_lr, style_info
from .configs import MultiStyleConfig
from .data import PhotoBatches, load_style_image, sample_photos
from .johnson import build_feed_forward
from .losses import content_loss, gram_matrix, loss_network, tv_loss
from .trainer import ArchSteps, Export, StepCallback, TrainingRun, TrainResult, evaluating, train

__all__ = ["MultiStyleConfig", "MultiStyleLoss", "MultiStyleSteps", "train_multistyle"]


class MultiStyleLoss(nn.Module):
    """Content + per-image style + TV: image i is compared with painting `styles[i]`'s Gram
    matrices (relative squared error, as `losses.style_loss`), weighted by that painting's
    style weight."""

    def __init__(self, vgg: nn.Module, paintings01: list[torch.Tensor], content_layer: str,
                 style_layers: tuple[str, ...], content_weight: float,
                 style_weights: list[float], tv_weight: float):
        super().__init__()
        self.vgg = vgg
        self.content_layer = content_layer
        self.style_layers = tuple(style_layers)
        self.content_weight, self.tv_weight = content_weight, tv_weight
        self.register_buffer("style_weights", torch.tensor(style_weights, dtype=torch.float32))
        grams: dict[str, list[torch.Tensor]] = {k: [] for k in self.style_layers}
        with torch.no_grad():
            for painting in paintings01:
                feats = vgg(painting.float(), self.style_layers)
                for k in self.style_layers:
                    grams[k].append(gram_matrix(feats[k])[0])
        # S×C×C per layer, and each target's mean square (the relative error's scale)
        self.targets = {k: torch.stack(v) for k, v in grams.items()}
        self.scales = {k: v.pow(2).mean(dim=(1, 2)).clamp_min(1e-12)
                       for k, v in self.targets.items()}

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.style_layers, self.content_layer)))

    def forward(self, output01: torch.Tensor, content01: torch.Tensor,
                styles: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            target = self.vgg(content01, (self.content_layer,))[self.content_layer]
        feats = self.vgg(output01, self.layers)
        style = 0.0
        for k in self.style_layers:
            gram = gram_matrix(feats[k])
            per_image = (gram - self.targets[k][styles]).pow(2).mean(dim=(1, 2))
            style = style + per_image / self.scales[k][styles]
        style = (self.style_weights[styles] * style / len(self.style_layers)).mean()
        terms = {"content": self.content_weight * content_loss(feats[self.content_layer], target),
                 "style": style,
                 "tv": self.tv_weight * tv_loss(output01.float())}
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        return terms


def _bundled_painting(image: Path) -> dict | None:
    """Title, artist… of a painting the bundled recipe knows (by file name)."""
    from .bundled import PAINTINGS

    for p in PAINTINGS:
        if p.file == Path(image).name:
            return {"painting": p.title, "artist": p.artist, "year": p.year,
                    "attribution": p.attribution, "license": "public domain", "image": p.file}
    return None


class MultiStyleSteps(ArchSteps):
    verb = "multi"
    arch = "johnson-mid"
    speedups = True
    cfg: MultiStyleConfig

    def build(self, run: TrainingRun) -> nn.Module:
        cfg, device = self.cfg, run.device
        self.n_styles = len(cfg.style_image)
        self.net = build_feed_forward(run, self.arch, cfg.arch_params, cfg.init_from)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        self.batches = run.prefetch(PhotoBatches(cfg.data, cfg.size, cfg.batch,
                                                 generator=run.rng("data", 0)), "data")
        self.style_gen = run.rng("styles", 2)
        self._round: list[int] = []
        self.temporal_gen = run.rng("temporal", 1, device=device)
        paintings = [load_style_image(p, cfg.resolved_style_size()).to(device)
                     for p in cfg.style_image]
        layers = (*cfg.style_layers, cfg.content_layer)
        # Compiled with the generator when the run compiles (`--compile`), as johnson's loss.
        self.criterion = run.compiled(MultiStyleLoss(
            loss_network(run, layers), paintings, cfg.content_layer, tuple(cfg.style_layers),
            cfg.content_weight, cfg.per_style_weights, cfg.tv_weight).to(device))
        self.samples = sample_photos(cfg.data, cfg.size, 3).to(device) if run.is_main else None
        self.net01 = UnitRangeNet(self.net, get_arch(self.arch).input_range)
        return self.net01

    def _draw_styles(self, count: int) -> torch.Tensor:
        """The next `count` style indices: shuffled rounds over all paintings."""
        out = []
        while len(out) < count:
            if not self._round:
                self._round = torch.randperm(self.n_styles, generator=self.style_gen).tolist()
            out.append(self._round.pop())
        return torch.tensor(out)

    def step(self, run: TrainingRun, step: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        schedule_lr(self.optimizer, cfg.lr, cfg.steps, cfg.lr_decay_from, step)
        content = run.to_format(next(self.batches).to(run.device, non_blocking=True))
        styles = self._draw_styles(content.shape[0]).to(run.device)
        onehot = F.one_hot(styles, self.n_styles).float()
        with run.autocast():
            if cfg.temporal_weight > 0:
                from .temporal import random_affine_flow_pair, temporal_loss

                warped, flow, mask = random_affine_flow_pair(content, noise=0.02,
                                                             generator=self.temporal_gen)
                both = run.model(torch.cat((content, warped)), torch.cat((onehot, onehot)))
                out01, out_b = both.chunk(2)
            else:
                out01 = run.model(content, onehot)
            terms = self.criterion(out01, content, styles)
            if cfg.temporal_weight > 0:
                terms["temporal"] = cfg.temporal_weight * temporal_loss(
                    out01.float(), out_b.float(), flow, mask)
                terms["total"] = terms["total"] + terms["temporal"]
        run.optimize(terms["total"], self.optimizer)
        return terms

    def sample_rows(self, run: TrainingRun) -> list[torch.Tensor]:
        rows = [self.samples]
        with evaluating(self.net01):
            for i in range(self.n_styles):
                w = F.one_hot(torch.tensor(i), self.n_styles).float().to(run.device)
                rows.append(self.net01(self.samples, w).float())
        return rows

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "round": list(self._round)}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._round = [int(i) for i in state.get("round", [])]

    def export(self) -> Export:
        cfg = self.cfg
        return Export(state=self.net.state_dict(),
                      style={"painting": ", ".join(Path(p).stem for p in cfg.style_image)},
                      data=Path(cfg.data).name)

    def style_infos(self) -> list[dict]:
        cfg = self.cfg
        return [_bundled_painting(p) or style_info(Path(p).stem, None, None, None, None, Path(p))
                for p in cfg.style_image]


def _add_style_names(path: Path, names: list[str], infos: list[dict]) -> None:
    """Record the styles in the file's spec (the registry registers each by name)."""
    spec = read_spec(path)
    spec["styles"] = names
    spec["style_info"] = infos
    write_style_file(path, read_tensors(path), spec, dtype=None)


def train_multistyle(cfg: MultiStyleConfig, on_step: StepCallback | None = None) -> TrainResult:
    """Run (or resume) a multi-style training; the exported file lists its styles by name."""
    steps = MultiStyleSteps(cfg)
    result = train(steps, on_step)
    if result.style_path is not None:
        _add_style_names(Path(result.style_path), cfg.style_names, steps.style_infos())
    return result

