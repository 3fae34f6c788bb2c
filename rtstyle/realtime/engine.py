"""Inference engine: runs a `Stylizer` on a device with a chosen backend and precision.

Backends behave like the module they replace (RGB 0..1 N×3×H×W in, same out), so the pipeline
never branches on which one is active.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

log = logging.getLogger(__name__)


class InferenceEngine:
    """Eager backend: FP16 on CUDA, FP32 elsewhere. Richer backends extend this."""

    def __init__(self, stylizer: nn.Module, device: torch.device, backend: str = "eager",
                 precision: str = "auto"):
        self.device = device
        self.dtype = torch.float16 if (device.type == "cuda" and precision != "fp32") else torch.float32
        self.module = stylizer.to(device=device, dtype=self.dtype).eval()
        self.backend = backend
        self.precision = str(self.dtype).replace("torch.", "")

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x.to(self.dtype)).float()
