"""Reflect padding to a stride multiple and its exact inverse.

Generators downsample by a fixed factor; an input whose sides are not multiples of it would come
back a few pixels off. We pad (reflect, so borders stay natural) and crop back, rather than
resizing the frame like CycleGAN's `__make_power_2`, which silently changes the geometry.
"""

import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad an N×C×H×W tensor on the bottom/right so H and W are multiples of `multiple`.

    Returns the padded tensor and the original (H, W) for `unpad`.
    """
    h, w = x.shape[-2:]
    ph = (-h) % multiple
    pw = (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    # Reflection needs the pad smaller than the side; fall back to replicate for tiny inputs.
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def unpad(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crop back to the (H, W) that `pad_to_multiple` returned."""
    h, w = size
    return x[..., :h, :w]
