"""Inference engine: runs a `Stylizer` on a device with the fastest backend that is correct.

Backends behave like the module they replace (RGB 0..1 N×3×H×W in, float32 same shape out),
so the pipeline never branches on which one is active. The engine adds what every backend
needs and none should repeat:

- **selection**: `backend="auto"` tries backends fastest first for the device and logs why each
  skipped one was skipped; an explicit backend that cannot run raises `BackendUnavailableError`.
- **shape buckets**: frames are reflect-padded up to a multiple of `bucket` and cropped back, so
  a compiled backend builds once per bucket, not once per frame size.
- **precision guard**: each build is compared with FP32 eager on the first real frame of its
  bucket; over `guard_threshold` relative error it is dropped and the next candidate is tried,
  with a warning. A broken FP16/BF16 build never reaches the user.
- **warm-up** happens on the first frame (or an explicit `warmup(frame)`), announced through
  logging and the optional `on_status` callback that the CLI prints.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import BackendUnavailableError, UserInputError
from ..models.padding import pad_to_multiple, unpad
from .backends import BACKENDS, Backend, BuildRequest, Runner, preference
from .backends.onnx import stride_multiple
from .cache import EngineCache, module_fingerprint

log = logging.getLogger(__name__)

BACKEND_ALIASES = {"onnx": "onnxruntime", "ort": "onnxruntime", "trt": "tensorrt"}
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# 8 divides the common video heights (360, 480, 720, 1080), so those run unpadded, while
# arbitrary sizes still share a build per 8-pixel step.
DEFAULT_BUCKET = 8
DEFAULT_GUARD_THRESHOLD = 0.03
# Below this many pixels `auto` runs eager: a compiled build (about a minute on 2 CPU cores)
# cannot pay for itself on thumbnails, where per-frame time is milliseconds anyway.
AUTO_MIN_BUILD_PIXELS = 128 * 128


def precision_name(dtype: torch.dtype) -> str:
    return {v: k for k, v in PRECISIONS.items()}[dtype]


def relative_error(y: torch.Tensor, reference: torch.Tensor) -> float:
    """‖y − ref‖₂ / ‖ref‖₂, with the reference's RMS floored at 0.05 (in 0..1 units) so that a
    nearly black reference frame does not turn rounding noise into a huge ratio."""
    diff = (y.float() - reference.float()).pow(2).mean().sqrt()
    scale = reference.float().pow(2).mean().sqrt().clamp_min(0.05)
    return float(diff / scale)


@dataclass(frozen=True)
class Candidate:
    backend: Backend
    dtype: torch.dtype

    @property
    def label(self) -> str:
        return f"{self.backend.name}/{precision_name(self.dtype)}"


class InferenceEngine:
    """`engine(x01)` -> stylized x01 (float32), built lazily for each shape bucket."""

    def __init__(self, stylizer: nn.Module, device: torch.device | str, backend: str = "auto",
                 precision: str = "auto", *, bucket: int | None = None,
                 cache: EngineCache | None = None,
                 guard_threshold: float = DEFAULT_GUARD_THRESHOLD,
                 on_status: Callable[[str], None] | None = None,
                 backends: dict[str, Backend] | None = None):
        self.device = torch.device(device)
        self.module = stylizer.to(device=self.device, dtype=torch.float32).eval()
        self.backends = backends if backends is not None else BACKENDS
        self.cache = cache if cache is not None else EngineCache()
        self.guard_threshold = guard_threshold
        self.on_status = on_status
        multiple = stride_multiple(self.module)
        self.bucket = math.lcm(bucket or DEFAULT_BUCKET, multiple)
        self.requested_backend = backend
        self.skipped: dict[str, str] = {}
        self.candidates = self._plan(backend, precision)
        self._fingerprint: str | None = None
        self._runners: dict[tuple[int, ...], Runner] = {}
        self.builds = 0
        self._active: Candidate | None = None
        self.warmup_seconds: dict[tuple[int, ...], float] = {}

    @property
    def active(self) -> Candidate:
        """What ran the latest new shape (before any frame: the first candidate)."""
        return self._active or self.candidates[0]

    @property
    def backend(self) -> str:
        return self.active.backend.name

    @property
    def steady_generator(self) -> bool:
        """The wrapped generator was trained for temporal stability (see `Stylizer`)."""
        return bool(getattr(self.module, "steady_generator", False))

    @property
    def precision(self) -> str:
        return precision_name(self.active.dtype)

    @property
    def dtype(self) -> torch.dtype:
        return self.active.dtype

    def _status(self, message: str, level: int = logging.INFO) -> None:
        log.log(level, message)
        if self.on_status is not None:
            self.on_status(message)

    def _plan(self, backend: str, precision: str) -> list[Candidate]:
        """Ordered (backend, precision) pairs to try; records why others were skipped."""
        backend = BACKEND_ALIASES.get(backend, backend)
        if precision != "auto" and precision not in PRECISIONS:
            raise UserInputError(f"unknown precision '{precision}'; choose from: auto, "
                                 + ", ".join(PRECISIONS))
        if backend == "auto":
            # Fastest first for this device; the rest are listed too, so the log says why each
            # was skipped. A caller-supplied mapping (tests) is tried in its own order.
            order = preference(self.device) if self.backends is BACKENDS else []
            names = [n for n in order if n in self.backends]
            names += [n for n in self.backends if n not in names]
        elif backend in self.backends:
            names = [backend]
        else:
            raise UserInputError(f"unknown backend '{backend}'; choose from: auto, "
                                 + ", ".join(self.backends))
        candidates: list[Candidate] = []
        for name in names:
            impl = self.backends[name]
            reason = impl.unavailable_reason(self.device)
            if reason is None:
                supported = impl.precisions(self.device)
                if precision == "auto":
                    dtypes = supported
                elif PRECISIONS[precision] in supported:
                    # The requested precision first; FP32 stays as the guard's fallback.
                    dtypes = [PRECISIONS[precision]] + [d for d in supported
                                                        if d == torch.float32
                                                        and d != PRECISIONS[precision]]
                else:
                    dtypes = []
                    reason = (f"no {precision} on {self.device.type} (supports "
                              + ", ".join(precision_name(d) for d in supported) + ")")
                candidates += [Candidate(impl, d) for d in dtypes]
            if reason is not None:
                self.skipped[name] = reason
                if backend == "auto":
                    log.info("backend %s skipped: %s", name, reason)
        if not candidates:
            raise BackendUnavailableError(f"backend '{backend}' cannot run on "
                                          f"{self.device.type}: " + "; ".join(
                                              f"{k}: {v}" for k, v in self.skipped.items()))
        log.info("backend candidates on %s: %s", self.device,
                 ", ".join(c.label for c in candidates))
        return candidates

    def bucket_shape(self, shape: torch.Size | tuple[int, ...]) -> tuple[int, int, int, int]:
        n, c, h, w = shape
        b = self.bucket
        return (n, c, -(-h // b) * b, -(-w // b) * b)

    def warmup(self, x: torch.Tensor) -> None:
        """Build (or load) the runner for `x`'s bucket now and check it on `x`."""
        self._runner(pad_to_multiple(x.to(self.device, torch.float32), self.bucket)[0])

    def _reference(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.module(x).float()

    def _runner(self, padded: torch.Tensor) -> Runner:
        shape = tuple(padded.shape)
        runner = self._runners.get(shape)
        if runner is not None:
            return runner
        if self._fingerprint is None:
            self._fingerprint = module_fingerprint(self.module)
        reference = None
        while True:
            candidate = self.candidates[0]
            if (self.requested_backend == "auto" and shape[2] * shape[3] < AUTO_MIN_BUILD_PIXELS
                    and candidate.backend.name != "eager"):
                log.info("auto: %d×%d is under %d px, eager/fp32 for it instead of %s",
                         shape[3], shape[2], AUTO_MIN_BUILD_PIXELS, candidate.label)
                candidate = Candidate(self.backends.get("eager") or BACKENDS["eager"],
                                      torch.float32)
            label = f"{candidate.label} for {shape[3]}×{shape[2]}"
            self._status(f"warming up {label} (first frame of this size builds the engine)")
            start = time.perf_counter()
            request = BuildRequest(self.module, self.device, candidate.dtype, shape,
                                   self.cache, self._fingerprint)
            try:
                runner = candidate.backend.build(request)
                y = runner(padded)
                self.builds += 1
            except Exception as exc:  # any build failure: log it, fall back
                self._drop(candidate, f"build failed: {type(exc).__name__}: {exc}")
                continue
            if candidate.backend.name == "eager" and candidate.dtype == torch.float32:
                break
            if reference is None:
                reference = self._reference(padded)
            error = relative_error(y, reference)
            if error <= self.guard_threshold:
                log.info("%s agrees with FP32 eager: relative error %.4f", label, error)
                break
            self._drop(candidate, f"relative error {error:.4f} vs FP32 eager exceeds "
                                  f"{self.guard_threshold}")
        seconds = time.perf_counter() - start
        self.warmup_seconds[shape] = seconds
        self._status(f"ready: {label} in {seconds:.1f} s")
        self._runners[shape] = runner
        self._active = candidate
        return runner

    def _drop(self, candidate: Candidate, reason: str) -> None:
        """Remove a failed candidate; the next one (ultimately FP32 eager) takes over."""
        self.skipped[candidate.label] = reason
        remaining = self.candidates[1:]
        if candidate.backend.name == "eager" and candidate.dtype == torch.float32:
            raise BackendUnavailableError(f"{candidate.label}: {reason}")
        if not remaining:
            if self.requested_backend != "auto":
                raise BackendUnavailableError(f"{candidate.label}: {reason}")
            remaining = [Candidate(self.backends.get("eager") or BACKENDS["eager"],
                                   torch.float32)]
        self._status(f"{candidate.label} rejected ({reason}); falling back to "
                     f"{remaining[0].label}", logging.WARNING)
        self.candidates = remaining
        self._runners.clear()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, torch.float32)
        padded, size = pad_to_multiple(x, self.bucket)
        y = self._runner(padded)(padded)
        return unpad(y, size).to(self.device, torch.float32)
