"""TensorRT through torch-tensorrt's dynamo frontend (the `tensorrt` extra).

UNTESTED HERE: this workplace has no GPU and torch-tensorrt cannot be installed, so this module
is written against the documented API (`torch_tensorrt.compile(ir="dynamo")`,
`torch_tensorrt.Input(min_shape, opt_shape, max_shape)`, `torch_tensorrt.save` /
`torch.export.load`) and has never run. The engine's precision guard still checks its output
against FP32 eager before any frame reaches the user.

Building a TensorRT engine takes minutes, so each (weights, shape, precision, GPU, versions)
combination is built once and saved in the engine cache as an ExportedProgram.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from . import Backend, BuildRequest, Runner, graph_inputs, register_backend
from .eager import module_for

if TYPE_CHECKING:
    import torch


def _major_minor(version: str) -> tuple[int, int]:
    parts = (version.split("+")[0].split(".") + ["0", "0"])[:2]
    return int(parts[0]), int(parts[1])


# Speed-up and build time: TensorRT's published behaviour, not measured here (no GPU).
@register_backend("tensorrt", aliases=("trt",), rank={"cuda": 0},
                  precisions={"cuda": ("fp16", "fp32")},
                  speedup={"cuda": 2.0}, build_seconds={"cuda": 180.0})
class TensorRTBackend(Backend):
    def unavailable_reason(self, device: torch.device) -> str | None:
        if device.type != "cuda":
            return "TensorRT needs an NVIDIA GPU"
        if importlib.util.find_spec("torch_tensorrt") is None:
            return "torch-tensorrt is not installed (pip install 'rtstyle[tensorrt]')"
        return None

    def _key(self, request: BuildRequest) -> str:
        import torch
        import torch_tensorrt

        from ..cache import device_facts

        return request.cache.key(
            backend=self.name, weights=request.fingerprint, shape=request.shape,
            dtype=str(request.dtype), torch=torch.__version__,
            torch_tensorrt=torch_tensorrt.__version__, device=device_facts(request.device),
        )

    def cached(self, request: BuildRequest) -> bool:
        return request.cache.contains(self.name, self._key(request), ".ep")

    def build(self, request: BuildRequest) -> Runner:
        import torch
        import torch_tensorrt

        shape, dtype = request.shape, request.dtype
        example = torch.zeros(shape, device=request.device, dtype=dtype)
        # A multi-style net's style vector: a second input (float32), not a constant.
        extra = tuple(t.detach().clone() for t in graph_inputs(request.module))

        def build(path: Path) -> None:
            module = module_for(request)
            # Size buckets rather than one wide profile: a static profile gives TensorRT the
            # freedom to pick the fastest tactics for exactly this shape.
            spec = torch_tensorrt.Input(min_shape=shape, opt_shape=shape, max_shape=shape,
                                        dtype=dtype)
            options = {}
            if _major_minor(torch_tensorrt.__version__) < (2, 9):
                # Later releases type layers from the module's own dtype and deprecate this.
                options["enabled_precisions"] = {dtype}
            specs = [spec] + [torch_tensorrt.Input(shape=tuple(t.shape), dtype=t.dtype)
                              for t in extra]
            compiled = torch_tensorrt.compile(module, ir="dynamo", inputs=specs, **options)
            torch_tensorrt.save(compiled, str(path), output_format="exported_program",
                                inputs=[example, *extra])

        program = request.cache.load_or_build(
            self.name, self._key(request), ".ep", build,
            lambda path: torch.export.load(str(path)).module())

        def run(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return program(x.to(dtype), *graph_inputs(request.module))

        return run
