"""Moving frames between uint8 host arrays and float device tensors.

Frames stay uint8 until they are on the device: copying 1 byte per channel instead of 4 and
scaling there is the cheap direction.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..models.padding import pad_to_multiple, unpad
from .frames import Colorimetry, Frame, Yuv420
from .yuv import rgb_to_yuv420, yuv420_to_rgb

__all__ = ["DeviceUploader", "frame_to_device", "to_device_tensor", "to_uint8", "to_yuv420",
           "pad_to_multiple", "unpad"]


def to_device_tensor(frame_hwc_u8: np.ndarray, device: torch.device,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """H×W×3 uint8 RGB -> 1×3×H×W `dtype` in 0..1 on `device`."""
    t = to_device_tensor_raw(frame_hwc_u8, device)
    return t.permute(2, 0, 1).unsqueeze(0).to(dtype).div_(255.0)


def frame_to_device(frame: Frame, device: torch.device, dtype: torch.dtype = torch.float32,
                    upload: Callable[[np.ndarray], torch.Tensor] | None = None) -> torch.Tensor:
    """A `Frame` -> 1×3×H×W RGB 0..1 on `device`; YUV planes are converted there, with the
    frame's own matrix and range (1.5 bytes/pixel cross the bus instead of 3).

    `upload` moves one uint8 array to the device (the pipeline passes a `DeviceUploader`'s).
    """
    upload = upload or (lambda array: to_device_tensor_raw(array, device))
    if frame.yuv is None:
        return upload(frame.rgb).permute(2, 0, 1).unsqueeze(0).to(dtype).div_(255.0)
    planes = frame.yuv
    y, u, v = (upload(p) for p in (planes.y, planes.u, planes.v))
    return yuv420_to_rgb(y, u, v, matrix=planes.colorimetry.matrix,
                         full_range=planes.colorimetry.full_range, dtype=dtype)


def to_device_tensor_raw(array_u8: np.ndarray, device: torch.device) -> torch.Tensor:
    """Any uint8 array -> the same on `device`, unchanged (pinned and async on CUDA)."""
    t = torch.from_numpy(np.ascontiguousarray(array_u8))
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def to_yuv420(x: torch.Tensor, colorimetry: Colorimetry) -> Yuv420:
    """1×3×H×W 0..1 -> host 4:2:0 planes, converted on the device (for a yuv420p encoder)."""
    y, u, v = rgb_to_yuv420(x[:1], matrix=colorimetry.matrix,
                            full_range=colorimetry.full_range)
    return Yuv420(y[0].cpu().numpy(), u[0].cpu().numpy(), v[0].cpu().numpy(), colorimetry)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """1×3×H×W 0..1 -> H×W×3 uint8 RGB on the host (rounded, clamped on the device)."""
    # Out of place first: `x` may be the caller's tensor (or an inference-mode tensor).
    y = x[0].float().clamp(0, 1).mul_(255.0).round_().to(torch.uint8)
    return y.permute(1, 2, 0).contiguous().cpu().numpy()


class DeviceUploader:
    """Host uint8 frames -> device uint8 tensors, overlapping copies with compute on CUDA.

    On CUDA each frame is staged in one of two reusable pinned buffers and copied on a side
    stream; the compute stream waits on an event, not the host, so frame n+1 crosses the bus
    while frame n is stylized. (Written against the documented CUDA stream API; not measured in
    this repository, which has no GPU.) On CPU the array is wrapped without a copy.
    """

    def __init__(self, device: torch.device, slots: int = 2):
        self.device = device
        self._slots = slots
        self._next = 0
        self._pinned: list[torch.Tensor | None] = [None] * slots
        self._done: list = [None] * slots
        self._stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    def upload(self, array_u8: np.ndarray) -> torch.Tensor:
        """Any-shape uint8 array -> the same on the device (an H×W×3 frame or a YUV plane)."""
        host = torch.from_numpy(np.ascontiguousarray(array_u8))
        if self._stream is None:
            return host.to(self.device)
        slot = self._next
        self._next = (slot + 1) % self._slots
        if self._done[slot] is not None:
            self._done[slot].synchronize()  # the previous copy out of this buffer has finished
        pinned = self._pinned[slot]
        if pinned is None or pinned.shape != host.shape:
            pinned = self._pinned[slot] = torch.empty(host.shape, dtype=torch.uint8,
                                                      pin_memory=True)
        pinned.copy_(host)
        compute = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(self._stream):
            on_device = torch.empty(host.shape, dtype=torch.uint8, device=self.device)
            on_device.copy_(pinned, non_blocking=True)
            done = torch.cuda.Event()
            done.record(self._stream)
        self._done[slot] = done
        compute.wait_event(done)
        on_device.record_stream(compute)  # allocator: the tensor is used on the compute stream
        return on_device
