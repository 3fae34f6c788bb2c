"""The synthetic-motion temporal term used by `rtstyle train ... --temporal-weight`."""

import math

import pytest
import torch
import torch.nn.functional as F

from rtstyle.errors import UserInputError
from rtstyle.models.training.temporal import random_affine_flow_pair, temporal_loss


def _textured(n=2, h=41, w=67, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, h // 4 + 1, w // 4 + 1, generator=g)
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def _fit_affine(flow):
    """Least-squares affine map p -> p + flow(p) per image: N×2×3 in pixel coordinates."""
    n, _, h, w = flow.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                            torch.arange(w, dtype=torch.float64), indexing="ij")
    design = torch.stack((xs.flatten(), ys.flatten(), torch.ones(h * w, dtype=torch.float64)), 1)
    targets = flow.double().flatten(2) + torch.stack((xs.flatten(), ys.flatten()))
    sol = torch.linalg.lstsq(design.expand(n, -1, -1), targets.transpose(1, 2)).solution
    residual = design @ sol - targets.transpose(1, 2)
    return sol.transpose(1, 2), residual.abs().max().item()


def _pixel_to_theta(affine, h, w):
    """Pixel-space affine (source = A p + t) as an `affine_grid` theta (align_corners=True)."""
    to_norm = torch.tensor([[2 / (w - 1), 0, -1], [0, 2 / (h - 1), -1], [0, 0, 1]],
                           dtype=torch.float64)
    full = torch.eye(3, dtype=torch.float64).repeat(affine.shape[0], 1, 1)
    full[:, :2] = affine
    return (to_norm @ full @ torch.linalg.inv(to_norm))[:, :2]


def test_known_affine_flow_matches_grid_sample_ground_truth():
    images = _textured()
    g = torch.Generator().manual_seed(1)
    warped, flow, mask = random_affine_flow_pair(images, max_shift=4.0, max_rot=5.0,
                                                 max_scale=0.05, generator=g)
    affine, residual = _fit_affine(flow)
    assert residual < 1e-3, "the flow is not an affine field"
    linear = affine[:, :, :2]
    scale = torch.linalg.det(linear).sqrt()
    angle = torch.rad2deg(torch.atan2(linear[:, 1, 0], linear[:, 0, 0]))
    assert ((scale - 1).abs() <= 0.05 + 1e-6).all()
    assert (angle.abs() <= 5.0 + 1e-6).all()
    assert (linear - torch.eye(2, dtype=torch.float64)).abs().max() > 1e-3, "no motion drawn"

    theta = _pixel_to_theta(affine, 41, 67).float()
    grid = F.affine_grid(theta, list(images.shape), align_corners=True)
    expected = F.grid_sample(images, grid, mode="bilinear", padding_mode="border",
                             align_corners=True)
    valid = mask.expand_as(images) > 0
    torch.testing.assert_close(warped[valid], expected[valid], atol=1e-4, rtol=0)
    inside = ((grid.abs() <= 1 + 1e-4).all(-1)).unsqueeze(1)
    assert torch.equal(mask > 0, inside)


def test_pure_integer_shift_moves_pixels_exactly():
    images = _textured(n=1)
    g = torch.Generator().manual_seed(3)
    warped, flow, mask = random_affine_flow_pair(images, max_shift=6.0, max_rot=0.0,
                                                 max_scale=0.0, generator=g)
    dx, dy = flow[0, 0, 0, 0].item(), flow[0, 1, 0, 0].item()
    assert torch.allclose(flow[0, 0], torch.full_like(flow[0, 0], dx))
    # Round the drawn shift, then check the pixels that the integer shift maps exactly.
    ix, iy = round(dx), round(dy)
    exact_flow = torch.zeros_like(flow)
    exact_flow[:, 0], exact_flow[:, 1] = ix, iy
    from rtstyle.flow import warp

    shifted, shifted_mask = warp(images, exact_flow)
    ys = slice(max(0, -iy), 41 - max(0, iy))
    xs = slice(max(0, -ix), 67 - max(0, ix))
    torch.testing.assert_close(shifted[..., ys, xs],
                               images[..., ys.start + iy:ys.stop + iy, xs.start + ix:xs.stop + ix])
    assert shifted_mask[..., ys, xs].all()
    assert mask.sum() < mask.numel(), "a shift must invalidate a border strip"


def test_loss_is_zero_for_an_equivariant_output_and_positive_otherwise():
    images = _textured()
    g = torch.Generator().manual_seed(2)
    warped, flow, mask = random_affine_flow_pair(images, generator=g)
    pointwise = torch.nn.Conv2d(3, 4, 1)
    with torch.no_grad():
        # A 1×1 conv commutes with bilinear warping: a perfectly stable "generator".
        assert temporal_loss(pointwise(images), pointwise(warped), flow, mask).item() < 1e-10
        assert temporal_loss(images, warped, flow, mask).item() < 1e-10
        # A generator that paints a fixed pattern in screen space is not stable under motion.
        pattern = _textured(n=1, seed=9)
        unstable = temporal_loss(images + pattern, warped + pattern, flow, mask).item()
    assert unstable > 1e-3


def test_noise_shows_up_as_its_variance_and_gradients_reach_both_outputs():
    images = _textured(n=4, h=48, w=64)
    g = torch.Generator().manual_seed(4)
    warped, flow, mask = random_affine_flow_pair(images, noise=0.05, generator=g)
    out_a = images.clone().requires_grad_(True)
    out_b = warped.clone().requires_grad_(True)
    loss = temporal_loss(out_a, out_b, flow, mask)
    assert loss.item() == pytest.approx(0.05**2, rel=0.1)
    loss.backward()
    assert out_a.grad.abs().sum() > 0 and out_b.grad.abs().sum() > 0


def test_seeded_generator_reproduces_the_pair():
    images = _textured()
    a = random_affine_flow_pair(images, noise=0.01, generator=torch.Generator().manual_seed(7))
    b = random_affine_flow_pair(images, noise=0.01, generator=torch.Generator().manual_seed(7))
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)


def test_bad_arguments_are_user_errors():
    with pytest.raises(UserInputError):
        random_affine_flow_pair(torch.zeros(3, 8, 8))
    with pytest.raises(UserInputError):
        random_affine_flow_pair(torch.zeros(1, 3, 8, 8), max_rot=-math.pi)
