"""Eager PyTorch: always available, the reference every other backend is checked against.

Runners use `no_grad`, not `inference_mode`: their outputs stay ordinary tensors, which
downstream stages (smoothing, `to_uint8`) may modify in place.
"""

from __future__ import annotations

import contextlib
import copy

import torch

from . import BuildRequest, Runner, cpu_has_bf16


def autocast_context(device: torch.device, dtype: torch.dtype):
    """BF16 on CPU runs under autocast: convolutions in BF16, instance norm kept in FP32, which
    keeps the colours right where casting every weight to BF16 would drift."""
    if device.type == "cpu" and dtype == torch.bfloat16:
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def module_for(request: BuildRequest) -> torch.nn.Module:
    """A private copy with weights in the requested dtype (FP16 on CUDA, BF16 for Inductor)."""
    return copy.deepcopy(request.module).to(request.dtype).eval()


class EagerBackend:
    name = "eager"

    def unavailable_reason(self, device: torch.device) -> str | None:
        return None

    def precisions(self, device: torch.device) -> list[torch.dtype]:
        if device.type == "cuda":
            return [torch.float16, torch.float32]
        if device.type == "cpu" and cpu_has_bf16():
            return [torch.float32, torch.bfloat16]
        return [torch.float32]

    def build(self, request: BuildRequest) -> Runner:
        device, dtype = request.device, request.dtype
        # FP32 weights for FP32 and for autocast BF16; FP16 weights on CUDA.
        module = module_for(request) if dtype == torch.float16 else request.module
        cast = torch.float16 if dtype == torch.float16 else torch.float32

        def run(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad(), autocast_context(device, dtype):
                return module(x.to(cast))

        return run
