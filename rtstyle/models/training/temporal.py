"""Temporal term for training feed-forward generators: synthetic motion with known flow.

Video with ground-truth flow is scarce, but a still photo under a small random affine warp is a
frame pair whose flow we know exactly (Gupta et al. 2017, ReCoNet 2019). A generator that is
stable under such motion flickers less on real video. The trainer stylizes both the batch and
its warped copy and penalises `out_b - warp(out_a, flow)` where the flow is valid.

Flow follows rtstyle's convention (see `rtstyle.flow`): `flow` lives on the grid of
the warped image `b` and points into the original `a`, so `b(p) = a(p + flow(p))`.
"""

from __future__ import annotations

import math

import torch

from ...errors import UserInputError
from ...flow import pixel_grid, warp


def _uniform(n: int, bound: float, generator: torch.Generator | None,
             device: torch.device) -> torch.Tensor:
    return (torch.rand(n, generator=generator, device=device) * 2.0 - 1.0) * bound


def random_affine_flow_pair(
    images: torch.Tensor,
    max_shift: float = 8.0,
    max_rot: float = 2.0,
    max_scale: float = 0.03,
    noise: float = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Warp each image by its own random affine motion and return what the loss needs.

    `images` is N×C×H×W in any value range. Per image: a translation up to `max_shift` pixels
    on each axis, a rotation up to `max_rot` degrees and a zoom up to `1 ± max_scale`, all about
    the image centre and drawn uniformly from `generator` (pass a seeded one for
    reproducibility; it must live on the images' device). `noise` is the standard deviation of
    Gaussian noise added to the warped images, in the images' own units, so the generator also
    learns to ignore sensor noise that differs between frames.

    Returns `(warped, flow, mask)`: warped N×C×H×W, flow N×2×H×W in pixels with
    `warped(p) = images(p + flow(p))`, and mask N×1×H×W (1.0 where `p + flow(p)` lies inside
    the image, 0.0 where the warped pixel was invented by border padding).
    """
    if images.dim() != 4:
        raise UserInputError(f"images must be N×C×H×W, got shape {tuple(images.shape)}")
    if min(max_shift, max_rot, max_scale, noise) < 0:
        raise UserInputError("max_shift, max_rot, max_scale and noise must be >= 0")
    n, _, h, w = images.shape
    device, dtype = images.device, images.dtype
    shift = torch.stack((_uniform(n, max_shift, generator, device),
                         _uniform(n, max_shift, generator, device)), dim=1)
    angle = _uniform(n, math.radians(max_rot), generator, device)
    scale = 1.0 + _uniform(n, max_scale, generator, device)

    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    matrix = torch.stack((torch.stack((cos, -sin), 1), torch.stack((sin, cos), 1)), 1)
    centre = torch.tensor(((w - 1) / 2.0, (h - 1) / 2.0), device=device).view(1, 2, 1, 1)
    rel = (pixel_grid(h, w, device) - centre).expand(n, -1, -1, -1)
    source = torch.einsum("nij,njhw->nihw", matrix, rel) + centre + shift.view(n, 2, 1, 1)
    flow = (source - pixel_grid(h, w, device)).to(dtype)

    warped, mask = warp(images, flow)
    if noise > 0:
        warped = warped + noise * torch.randn(warped.shape, generator=generator,
                                              device=device, dtype=dtype)
    return warped, flow, mask


def temporal_loss(out_a: torch.Tensor, out_b: torch.Tensor, flow: torch.Tensor,
                  mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared difference between `out_b` and `out_a` warped onto `b`'s grid.

    `out_a`, `out_b` are N×C×H×W generator outputs for the original and the warped batch;
    `flow`, `mask` come from `random_affine_flow_pair`. The mean runs over channels and the
    valid pixels only, so the value does not depend on how much of the border the warp
    invented. Scale the outputs to 0..1 first if the term's weight should not depend on the
    architecture's output range. Gradients flow into both outputs.
    """
    warped_a, inside = warp(out_a, flow)
    valid = inside if mask is None else inside * mask
    sq = (out_b - warped_a).pow(2) * valid
    denom = valid.sum() * out_b.shape[1]
    return sq.sum() / denom.clamp_min(1.0)
