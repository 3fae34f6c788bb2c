"""torch.compile (Inductor): fused kernels, channels_last, BF16 on AMX CPUs, CUDA graphs on GPUs.

Each shape bucket gets its own compiled module with `dynamic=False`: static shapes give the
fastest kernels, and bucketing (in the engine) keeps the number of compilations small. On CPU,
Inductor's `freezing` folds the weights into the graph so oneDNN can pre-pack them once.
BF16 means BF16 weights and activations, not autocast: for the bare lite net at 640×360 and
1 thread it measured 28.5 vs 31.2 ms, for the Johnson net 270 ms vs 325 ms (autocast, in the
engine with uint8 conversion), because the fused instance-norm/ReLU/pad kernels, which take
about half of the frame time, then move half the bytes. The precision guard checks the result
against FP32 eager before use. On CUDA, `mode="reduce-overhead"` records CUDA graphs, which removes the per-kernel launch cost
that dominates small generators at high frame rates (not measured in this repository: no GPU).
"""

from __future__ import annotations

import shutil

import torch

from . import BuildRequest, Runner, cpu_has_bf16
from .eager import module_for


class CompileBackend:
    name = "compile"

    def unavailable_reason(self, device: torch.device) -> str | None:
        if not hasattr(torch, "compile"):
            return f"torch {torch.__version__} has no torch.compile"
        from torch import _dynamo

        if not _dynamo.is_dynamo_supported():
            return "torch.compile is not supported on this Python version"
        if device.type == "cpu" and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
            return "Inductor needs a C++ compiler on CPU (install g++ or clang)"
        if device.type not in ("cpu", "cuda"):
            return f"not set up for {device.type}"
        return None

    def precisions(self, device: torch.device) -> list[torch.dtype]:
        if device.type == "cuda":
            return [torch.float16, torch.float32]
        if cpu_has_bf16():
            return [torch.bfloat16, torch.float32]
        return [torch.float32]

    def build(self, request: BuildRequest) -> Runner:
        device, dtype = request.device, request.dtype
        module = module_for(request).to(memory_format=torch.channels_last)
        if device.type == "cuda":
            compiled = torch.compile(module, mode="reduce-overhead", dynamic=False)
        else:
            compiled = torch.compile(module, dynamic=False, options={"freezing": True})

        def run(x: torch.Tensor) -> torch.Tensor:
            x = x.to(dtype).contiguous(memory_format=torch.channels_last)
            with torch.no_grad():
                y = compiled(x)
            # CUDA graphs reuse their output buffer on the next replay; copy it out.
            return y.clone() if device.type == "cuda" else y

        return run
