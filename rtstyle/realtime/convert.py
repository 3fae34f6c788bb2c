"""Moving frames between uint8 host arrays and float device tensors.

Frames stay uint8 until they are on the device: copying 1 byte per channel instead of 4 and
scaling there is the cheap direction.
"""

from __future__ import annotations

import numpy as np
import torch

from ..models.padding import pad_to_multiple, unpad

__all__ = ["to_device_tensor", "to_uint8", "pad_to_multiple", "unpad"]


def to_device_tensor(frame_hwc_u8: np.ndarray, device: torch.device,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """H×W×3 uint8 RGB -> 1×3×H×W `dtype` in 0..1 on `device`."""
    t = torch.from_numpy(np.ascontiguousarray(frame_hwc_u8))
    if device.type == "cuda":
        t = t.pin_memory().to(device, non_blocking=True)
    else:
        t = t.to(device)
    return t.permute(2, 0, 1).unsqueeze(0).to(dtype).div_(255.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """1×3×H×W 0..1 -> H×W×3 uint8 RGB on the host (rounded, clamped on the device)."""
    y = x[0].float().clamp_(0, 1).mul_(255.0).round_().to(torch.uint8)
    return y.permute(1, 2, 0).contiguous().cpu().numpy()
