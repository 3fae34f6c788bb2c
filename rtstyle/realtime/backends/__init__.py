"""Inference backends: each turns an FP32 `Stylizer` into a callable for one padded input shape.

A backend behaves like the module it replaces (N×3×H×W 0..1 in, same shape out), so the engine
and the pipeline never branch on which one is active (cf. StreamDiffusion's
`UNet2DConditionModelEngine`). `unavailable_reason` says why a backend cannot run here, so
`auto` can log every skip instead of failing silently.

Adding a backend is one file here: a `Backend` subclass under `@register_backend(...)` (see
`registry.py` for the facts it declares, and `eager.py` for the smallest example). Nothing in
this package imports torch at import time, so the CLI can list the names cheaply; backends
import torch (and their own libraries) when they are used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .registry import (
    BackendInfo,
    backend_aliases,
    backend_help,
    backend_info,
    backend_names,
    get_backend,
    register_backend,
    resolve_backend_name,
    speed_order,
    unregister_backend,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ..cache import EngineCache

Runner = Callable[["torch.Tensor"], "torch.Tensor"]

__all__ = ["Backend", "BackendInfo", "BuildRequest", "Runner", "backend_aliases",
           "backend_help", "backend_info", "backend_names", "cpu_has_bf16", "get_backend",
           "graph_inputs",
           "register_backend", "resolve_backend_name", "speed_order",
           "unregister_backend"]


@dataclass(frozen=True)
class BuildRequest:
    """Everything a backend needs to build a runner for one shape bucket."""

    module: nn.Module          # FP32, eval mode, on `device`
    device: torch.device
    dtype: torch.dtype
    shape: tuple[int, int, int, int]
    cache: EngineCache
    fingerprint: str          # module_fingerprint(module): weights + graph-changing attributes


class Backend:
    """What every backend offers the engine; `@register_backend` sets `name` and `info`."""

    name: str
    info: BackendInfo

    def unavailable_reason(self, device: torch.device) -> str | None:
        """Why this backend cannot run on `device` here, or None."""
        return None

    def precisions(self, device: torch.device) -> list[torch.dtype]:
        """Precisions this backend can run on `device`, fastest first: the declared ones, less
        BF16 on CPUs that would only emulate it (slower than FP32 there)."""
        import torch

        dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
        names = self.info.precisions.get(device.type, ("fp32",))
        if device.type == "cpu" and not cpu_has_bf16():
            names = tuple(n for n in names if n != "bf16")
        return [dtypes[n] for n in names]

    def cached(self, request: BuildRequest) -> bool:
        """True when the build for `request` is on disk already, so it costs a load, not a
        build (`auto` then always takes it)."""
        return False

    def build(self, request: BuildRequest) -> Runner:
        raise NotImplementedError


def graph_inputs(module: nn.Module) -> tuple[torch.Tensor, ...]:
    """The tensors a runner passes after the frame, read at each call: a multi-style net's live
    style weight vector (`Stylizer.graph_inputs`), so switching styles needs no rebuild; () for
    every single-style network. Builds export the graph with them as inputs."""
    inputs = getattr(module, "graph_inputs", None)
    return tuple(inputs()) if inputs is not None else ()


def cpu_has_bf16() -> bool:
    """True on CPUs with native BF16 math (AVX-512-BF16 / AMX), where oneDNN runs BF16 convs
    faster than FP32; elsewhere BF16 is emulated and slower."""
    import torch

    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(torch.backends.mkldnn.is_available() and check is not None and check())

