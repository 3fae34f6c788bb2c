"""Eager PyTorch: always available, the reference every other backend is checked against.

Runners use `no_grad`, not `inference_mode`: their outputs stay ordinary tensors, which
downstream stages (smoothing, `to_uint8`) may modify in place.

This is also the smallest backend: copy it to add one (a class, its facts in the decorator).
"""

from __future__ import annotations

import contextlib
import copy
from typing import TYPE_CHECKING

from . import Backend, BuildRequest, Runner, graph_inputs, register_backend

if TYPE_CHECKING:
    import torch


def autocast_context(device: torch.device, dtype: torch.dtype):
    """BF16 on CPU runs under autocast: convolutions in BF16, instance norm kept in FP32, which
    keeps the colours right where casting every weight to BF16 would drift."""
    import torch

    if device.type == "cpu" and dtype == torch.bfloat16:
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def module_for(request: BuildRequest) -> torch.nn.Module:
    """A private copy with weights in the requested dtype (FP16 on CUDA, BF16 for Inductor)."""
    return copy.deepcopy(request.module).to(request.dtype).eval()


# On CPU, FP32 (the reference) first; BF16 autocast runs when asked for (`--precision bf16`).
# No `build_seconds`: nothing to build, so `auto` never weighs it.
@register_backend("eager", rank={"cuda": 3, "cpu": 2},
                  precisions={"cuda": ("fp16", "fp32"), "cpu": ("fp32", "bf16")})
class EagerBackend(Backend):
    def build(self, request: BuildRequest) -> Runner:
        import torch

        device, dtype = request.device, request.dtype
        # FP32 weights for FP32 and for autocast BF16; FP16 weights on CUDA.
        module = module_for(request) if dtype == torch.float16 else request.module
        cast = torch.float16 if dtype == torch.float16 else torch.float32

        def run(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad(), autocast_context(device, dtype):
                return module(x.to(cast), *graph_inputs(request.module))

        return run
