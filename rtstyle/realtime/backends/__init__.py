"""Inference backends: each turns an FP32 `Stylizer` into a callable for one padded input shape.

A backend behaves like the module it replaces (N×3×H×W 0..1 in, same shape out), so the engine
and the pipeline never branch on which one is active (cf. StreamDiffusion's
`UNet2DConditionModelEngine`). `unavailable_reason` says why a backend cannot run here, so
`auto` can log every skip instead of failing silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from ..cache import EngineCache

Runner = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class BuildRequest:
    """Everything a backend needs to build a runner for one shape bucket."""

    module: nn.Module          # FP32, eval mode, on `device`
    device: torch.device
    dtype: torch.dtype
    shape: tuple[int, int, int, int]
    cache: EngineCache
    fingerprint: str          # module_fingerprint(module): weights + graph-changing attributes


class Backend(Protocol):
    name: str

    def unavailable_reason(self, device: torch.device) -> str | None: ...

    def precisions(self, device: torch.device) -> list[torch.dtype]:
        """Precisions this backend can run on `device`, fastest first."""
        ...

    def build(self, request: BuildRequest) -> Runner: ...


def cpu_has_bf16() -> bool:
    """True on CPUs with native BF16 math (AVX-512-BF16 / AMX), where oneDNN runs BF16 convs
    faster than FP32; elsewhere BF16 is emulated and slower."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(torch.backends.mkldnn.is_available() and check is not None and check())


def _registry() -> dict[str, Backend]:
    from .compiled import CompileBackend
    from .eager import EagerBackend
    from .onnx import OnnxRuntimeBackend
    from .tensorrt import TensorRTBackend

    return {b.name: b for b in (TensorRTBackend(), CompileBackend(), OnnxRuntimeBackend(),
                                EagerBackend())}


BACKENDS: dict[str, Backend] = _registry()

# Fastest first, from `rtstyle bench` (CPU, measured here) and the published behaviour of each
# library on NVIDIA GPUs (TensorRT and CUDA graphs; not measured in this repository).
PREFERENCE = {
    "cuda": ["tensorrt", "compile", "onnxruntime", "eager"],
    "cpu": ["compile", "onnxruntime", "eager"],
}
DEFAULT_PREFERENCE = ["eager"]


def preference(device: torch.device) -> list[str]:
    return PREFERENCE.get(device.type, DEFAULT_PREFERENCE)
