"""Inductor: fused kernels, channels_last, BF16 on AMX CPUs; CUDA graphs on GPUs.

**CPU: AOTInductor packages, cached on disk.** Each shape bucket is exported (`torch.export`,
static shapes) and compiled ahead of time into a `.pt2` package
(`torch._inductor.aoti_compile_and_package`) with `freezing`, which folds the weights into the
graph so oneDNN can pre-pack them once. The package goes into the `EngineCache`, keyed by the
weights, shape, dtype, CPU and library versions; a later run loads it instead of compiling.
Measured for the bundled lite net at 640×360 BF16 on 2 shared vCPUs (AMD EPYC, AVX-512-BF16),
each in a fresh process: a cold `torch.compile` took 31 s, a rerun with Inductor's own on-disk
cache 5 s (it still traces and lowers), and one after `torch.compiler.load_cache_artifacts`
(the "mega-cache") into a fresh Inductor cache 27 s; the AOTInductor build took 27 s and
loading its package 0.02 s, with per-frame time no worse (7.7 ms, against 9.3 ms for
`torch.compile` and 18.6 ms for FP32 eager). `load_package` says why it bypasses
`aoti_load_package`.

BF16 means BF16 weights and activations, not autocast: for the bare lite net at 640×360 and
1 thread it measured 28.5 vs 31.2 ms, for the Johnson net 270 ms vs 325 ms (autocast, in the
engine with uint8 conversion), because the fused instance-norm/ReLU/pad kernels, which take
about half of the frame time, then move half the bytes. The precision guard checks the result
against FP32 eager before use.

**CUDA: `torch.compile(mode="reduce-overhead")`**, which records CUDA graphs and removes the
per-kernel launch cost that dominates small generators at high frame rates; it relies on
Inductor's own caches between runs (not measured in this repository: no GPU).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import Backend, BuildRequest, Runner, graph_inputs, register_backend
from .eager import module_for

if TYPE_CHECKING:
    import torch

PACKAGE_SUFFIX = ".pt2"


def load_package(path: Path) -> Runner:
    """A runner for an AOTInductor package; raises on a file that is not a valid package.

    `torch._inductor.aoti_load_package` first compares the package's CPU instruction set with
    this machine's, which imports Inductor and compiles probe programs into a fresh Inductor
    cache: 2–7 s measured here, against 0.02 s for the loader alone. It only warns on a
    mismatch, and our cache key already holds the CPU's flags, so the loader is used directly;
    the public function stays the fallback if its private signature changes.
    """
    import torch

    loader_cls = getattr(getattr(torch._C, "_aoti", None), "AOTIModelPackageLoader", None)
    if loader_cls is not None:
        try:
            # (path, model name, run single-threaded, number of runners, device index)
            loader = loader_cls(str(path), "model", False, 1, -1)
        except TypeError:  # a new signature
            pass
        else:
            return lambda *inputs: loader.run(list(inputs))[0]
    from torch._inductor import aoti_load_package

    return aoti_load_package(str(path))


@register_backend("compile", rank={"cuda": 1, "cpu": 0},
                  precisions={"cuda": ("fp16", "fp32"), "cpu": ("bf16", "fp32")},
                  # CPU: 2.4× (lite net, this EPYC), 2.7× (lite) and 4.7× (Johnson) on a Xeon
                  # with AMX, BF16 vs FP32 eager at 640×360; 2.0 stays on the safe side.
                  # CUDA: not measured here (no GPU), a guess.
                  speedup={"cpu": 2.0, "cuda": 1.5},
                  # CPU: 25–31 s for the lite net on 2 cores, 50–170 s for Johnson; the engine
                  # uses the time it measured here once there is one.
                  build_seconds={"cpu": 30.0, "cuda": 60.0})
class CompileBackend(Backend):
    def unavailable_reason(self, device: torch.device) -> str | None:
        import torch

        if device.type == "cpu":
            if not hasattr(torch._C, "_aoti"):
                return f"torch {torch.__version__} has no AOTInductor"
            if not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
                return "Inductor needs a C++ compiler on CPU (install g++ or clang)"
            return None
        if device.type != "cuda":
            return f"not set up for {device.type}"
        if not hasattr(torch, "compile"):
            return f"torch {torch.__version__} has no torch.compile"
        from torch import _dynamo

        if not _dynamo.is_dynamo_supported():
            return "torch.compile is not supported on this Python version"
        return None

    def _package_key(self, request: BuildRequest) -> str:
        import torch

        from ..cache import device_facts

        # No thread count: the generated OpenMP loops take it at run time.
        return request.cache.key(
            backend=self.name, format="aoti-package", freezing=True,
            weights=request.fingerprint, shape=request.shape, dtype=str(request.dtype),
            torch=torch.__version__, torch_git=torch.version.git_version,
            python=list(sys.version_info[:2]), device=device_facts(request.device))

    def cached(self, request: BuildRequest) -> bool:
        return (request.device.type == "cpu"
                and request.cache.contains(self.name, self._package_key(request),
                                           PACKAGE_SUFFIX))

    def build(self, request: BuildRequest) -> Runner:
        if request.device.type == "cuda":
            return self._build_cuda_graphs(request)
        return self._build_package(request)

    def _build_package(self, request: BuildRequest) -> Runner:
        import torch

        dtype = request.dtype

        def build(path: Path) -> None:
            from torch._inductor import aoti_compile_and_package

            # Runs warm up under inference_mode, whose tensors (a copy of the weights made
            # there too) export refuses: copy and trace outside it.
            with torch.inference_mode(False), torch.no_grad():
                module = module_for(request).to(memory_format=torch.channels_last)
                example = torch.zeros(request.shape, dtype=dtype).contiguous(
                    memory_format=torch.channels_last)
                # A multi-style net's style vector is a graph input, not a frozen constant:
                # switching styles changes an input, never the package.
                extra = tuple(t.detach().clone() for t in graph_inputs(request.module))
                program = torch.export.export(module, (example, *extra))
                aoti_compile_and_package(program, package_path=str(path),
                                         inductor_configs={"freezing": True})

        package = request.cache.load_or_build(self.name, self._package_key(request),
                                              PACKAGE_SUFFIX, build, load_package)

        def run(x: torch.Tensor) -> torch.Tensor:
            # The package was compiled for channels_last strides and does not check them: a
            # plain contiguous input gives wrong pixels without an error (measured).
            return package(x.to(dtype).contiguous(memory_format=torch.channels_last),
                           *graph_inputs(request.module))

        return run

    def _build_cuda_graphs(self, request: BuildRequest) -> Runner:
        import torch

        dtype = request.dtype
        module = module_for(request).to(memory_format=torch.channels_last)
        compiled = torch.compile(module, mode="reduce-overhead", dynamic=False)

        def run(x: torch.Tensor) -> torch.Tensor:
            x = x.to(dtype).contiguous(memory_format=torch.channels_last)
            with torch.no_grad():
                y = compiled(x, *graph_inputs(request.module))
            # CUDA graphs reuse their output buffer on the next replay; copy it out.
            return y.clone()

        return run
