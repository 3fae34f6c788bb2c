"""Inference engine: runs a `Stylizer` on a device with the fastest backend that is correct.

Backends behave like the module they replace (RGB 0..1 N×3×H×W in, float32 same shape out),
so the pipeline never branches on which one is active. The engine adds what every backend
needs and none should repeat:

- **selection**: `backend="auto"` tries the registered backends fastest first for the device
  and logs why each skipped one was skipped; an explicit backend that cannot run raises
  `BackendUnavailableError`.
- **build cost**: a build can cost more than it saves. Given `expected_frames` (how many frames
  the run will process; None for a live or unknown-length input, taken as long), `auto` skips a
  build that is not cached on disk when the time it would save (frames × eager time per frame ×
  (1 − 1/the backend's conservative speed-up)) is smaller than the time it takes (measured on
  this machine, else the backend's declared estimate). A cached build only costs a load, so it
  is always taken. Every decision is announced with its numbers.
- **shape buckets**: frames are reflect-padded up to a multiple of `bucket` and cropped back, so
  a compiled backend builds once per bucket, not once per frame size.
- **precision guard**: each build is compared with FP32 eager on the first real frame of its
  bucket; over `guard_threshold` relative error it is dropped and the next candidate is tried,
  with a warning. A broken FP16/BF16 build (or a bad cached one) never reaches the user.
- **warm-up** happens on the first frame (or an explicit `warmup(frame)`), announced through
  logging and the optional `on_status` callback that the CLI prints.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import BackendUnavailableError, UserInputError
from ..models.padding import pad_to_multiple, unpad
from .backends import Backend, BuildRequest, Runner, backend_names, get_backend
from .backends import resolve_backend_name as _resolve_registered
from .backends.onnx import stride_multiple
from .cache import EngineCache, module_fingerprint

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# 8 divides the common video heights (360, 480, 720, 1080), so those run unpadded, while
# arbitrary sizes still share a build per 8-pixel step.
DEFAULT_BUCKET = 8
DEFAULT_GUARD_THRESHOLD = 0.03
# Below this many pixels `auto` runs eager: a compiled build (about half a minute on 2 CPU cores)
# cannot pay for itself on thumbnails, where per-frame time is milliseconds anyway.
AUTO_MIN_BUILD_PIXELS = 128 * 128


def precision_name(dtype: torch.dtype) -> str:
    return {v: k for k, v in PRECISIONS.items()}[dtype]


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"


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


@dataclass
class _EagerProbe:
    """FP32 eager on a bucket's first frame: the guard's reference, and its timings for the
    build-cost estimate (the first call includes one-time set-up, so it overestimates)."""

    reference: torch.Tensor | None = None
    seconds: list[float] = field(default_factory=list)


class InferenceEngine:
    """`engine(x01)` -> stylized x01 (float32), built lazily for each shape bucket.

    `expected_frames`: how many frames this engine will process (a file run's frame count);
    None for live or unknown length. Only `backend="auto"` uses it, to skip builds that cannot
    pay for themselves. `backends`: name -> backend to choose from, tried in its own order
    (tests); by default every registered backend in the device's speed order.
    """

    def __init__(self, stylizer: nn.Module, device: torch.device | str, backend: str = "auto",
                 precision: str = "auto", *, bucket: int | None = None,
                 cache: EngineCache | None = None,
                 guard_threshold: float = DEFAULT_GUARD_THRESHOLD,
                 on_status: Callable[[str], None] | None = None,
                 backends: Mapping[str, Backend] | None = None,
                 expected_frames: int | None = None):
        self.device = torch.device(device)
        self.module = stylizer.to(device=self.device, dtype=torch.float32).eval()
        if backends is None:
            backends = {n: get_backend(n) for n in backend_names(self.device.type)}
        self.backends = dict(backends)
        self.cache = cache if cache is not None else EngineCache()
        self.guard_threshold = guard_threshold
        self.on_status = on_status
        self.expected_frames = expected_frames
        multiple = stride_multiple(self.module)
        self.bucket = math.lcm(bucket or DEFAULT_BUCKET, multiple)
        self.requested_backend = self._resolve(backend)
        self.skipped: dict[str, str] = {}
        self.candidates = self._plan(precision)
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
    def n_styles(self) -> int:
        """Styles the network holds (1 unless it is a multi-style net)."""
        return int(getattr(self.module, "n_styles", 1))

    def set_style_weights(self, weights) -> None:
        """Paint another style of a multi-style net (an index) or a blend (one weight per
        style). Every backend reads the live style vector at each call, as a graph input:
        nothing is rebuilt, reloaded or recompiled."""
        self.module.set_style_weights(weights)

    @property
    def dtype(self) -> torch.dtype:
        return self.active.dtype

    def _status(self, message: str, level: int = logging.INFO) -> None:
        log.log(level, message)
        if self.on_status is not None:
            self.on_status(message)

    def _resolve(self, backend: str) -> str:
        """"auto" or a name in `self.backends`; aliases resolve through the registry."""
        if backend == "auto" or backend in self.backends:
            return backend
        name = _resolve_registered(backend)  # raises, listing the registered names
        if name not in self.backends:
            raise UserInputError(f"unknown backend '{backend}'; choose from: "
                                 + ", ".join(["auto", *self.backends]))
        return name

    def _plan(self, precision: str) -> list[Candidate]:
        """Ordered (backend, precision) pairs to try; records why others were skipped."""
        backend = self.requested_backend
        if precision != "auto" and precision not in PRECISIONS:
            raise UserInputError(f"unknown precision '{precision}'; choose from: auto, "
                                 + ", ".join(PRECISIONS))
        # Under auto every backend is listed, so the log says why each one was skipped.
        names = list(self.backends) if backend == "auto" else [backend]
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

    def _eager_fp32(self) -> Candidate:
        return Candidate(self.backends.get("eager") or get_backend("eager"), torch.float32)

    def _probe_eager(self, padded: torch.Tensor, probe: _EagerProbe) -> float:
        """Run FP32 eager once more on `padded`; returns its fastest time so far."""
        start = time.perf_counter()
        with torch.no_grad():
            probe.reference = self.module(padded).float()
        probe.seconds.append(time.perf_counter() - start)
        return min(probe.seconds)

    def _build_cost(self, backend: Backend) -> tuple[float, float]:
        """(seconds a cold build takes, conservative speed-up over FP32 eager) on this device:
        the build time measured here last time if any, else the backend's declared facts."""
        info = getattr(backend, "info", None)
        kind = self.device.type
        declared = info.build_seconds.get(kind, 0.0) if info is not None else 0.0
        if not declared:
            return 0.0, 1.0
        measured = self.cache.build_seconds(backend.name, kind)
        return (measured or declared), (info.speedup.get(kind, 1.0) if info else 1.0)

    def _auto_verdict(self, candidate: Candidate, request: BuildRequest, padded: torch.Tensor,
                      probe: _EagerProbe) -> tuple[bool, str]:
        """Whether `auto` should build `candidate` for this bucket, and why."""
        build_s, speedup = self._build_cost(candidate.backend)
        if not build_s:
            return True, "nothing to build"
        if candidate.backend.cached(request):
            return True, "cached on disk: loading it"
        frames = self.expected_frames
        if frames is None:
            return True, (f"not cached; live or unknown length, so building it "
                          f"(~{_seconds(build_s)}, cached for later runs)")

        def saving(eager_s: float) -> float:
            return frames * eager_s * (1.0 - 1.0 / speedup)

        # The first eager call includes one-time set-up: an upper bound on the per-frame time.
        # If even that cannot pay for the build, it is decided; else time a steady call.
        eager_s = self._probe_eager(padded, probe) if not probe.seconds else min(probe.seconds)
        if saving(eager_s) >= build_s and len(probe.seconds) < 2:
            eager_s = self._probe_eager(padded, probe)
        numbers = (f"~{_seconds(build_s)} to build, ~{_seconds(saving(eager_s))} saved over "
                   f"{frames} frames at {eager_s * 1e3:.0f} ms/frame eager and ≥{speedup:g}× "
                   "faster")
        if saving(eager_s) >= build_s:
            return True, f"not cached; building it pays off ({numbers})"
        return False, f"not cached and the run is too short to pay for a build ({numbers})"

    def _choose(self, shape: tuple[int, ...], padded: torch.Tensor,
                probe: _EagerProbe) -> tuple[Candidate, str]:
        """The candidate to build for this bucket and why: the first one in order, except that
        `auto` runs eager on thumbnails and skips builds that cannot pay for themselves."""
        where = f"{shape[3]}×{shape[2]}"
        if self.requested_backend != "auto":
            return self.candidates[0], "requested"
        if shape[2] * shape[3] < AUTO_MIN_BUILD_PIXELS and self.candidates[0].backend.name \
                != "eager":
            eager = self._eager_fp32()
            return eager, (f"{where} is under {AUTO_MIN_BUILD_PIXELS} px, {eager.label} for it "
                           f"instead of {self.candidates[0].label}")
        for candidate in self.candidates:
            request = self._request(candidate, shape)
            take, why = self._auto_verdict(candidate, request, padded, probe)
            if take:
                self.skipped.pop(candidate.label, None)
                return candidate, f"{candidate.label} for {where}: {why}"
            self.skipped[candidate.label] = why
            self._status(f"auto: {candidate.label} for {where} skipped: {why}")
        eager = self._eager_fp32()
        return eager, f"{eager.label} for {where}: every build was skipped"

    def _request(self, candidate: Candidate, shape: tuple[int, ...]) -> BuildRequest:
        return BuildRequest(self.module, self.device, candidate.dtype, shape, self.cache,
                            self._fingerprint)

    def _runner(self, padded: torch.Tensor) -> Runner:
        shape = tuple(padded.shape)
        runner = self._runners.get(shape)
        if runner is not None:
            return runner
        if self._fingerprint is None:
            self._fingerprint = module_fingerprint(self.module)
        probe = _EagerProbe()
        start = time.perf_counter()
        while True:
            candidate, why = self._choose(shape, padded, probe)
            if self.requested_backend == "auto":
                self._status(f"auto: {why}")
            label = f"{candidate.label} for {shape[3]}×{shape[2]}"
            request = self._request(candidate, shape)
            self._status(f"warming up {label} ("
                         + ("loading its cached build)" if candidate.backend.cached(request)
                            else "first frame of this size builds the engine)"))
            builds_before = self.cache.builds
            build_start = time.perf_counter()
            try:
                runner = candidate.backend.build(request)
                y = runner(padded)
                self.builds += 1
            except Exception as exc:  # any build failure: log it, fall back
                self._drop(candidate, f"build failed: {type(exc).__name__}: {exc}")
                continue
            if self.cache.builds > builds_before:
                self.cache.record_build_seconds(candidate.backend.name, self.device.type,
                                                time.perf_counter() - build_start)
            if candidate.backend.name == "eager" and candidate.dtype == torch.float32:
                break
            if probe.reference is None:
                self._probe_eager(padded, probe)
            error = relative_error(y, probe.reference)
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
        remaining = [c for c in self.candidates if c != candidate]
        if candidate.backend.name == "eager" and candidate.dtype == torch.float32:
            raise BackendUnavailableError(f"{candidate.label}: {reason}")
        if not remaining:
            if self.requested_backend != "auto":
                raise BackendUnavailableError(f"{candidate.label}: {reason}")
            remaining = [self._eager_fp32()]
        self._status(f"{candidate.label} rejected ({reason}); falling back to "
                     f"{remaining[0].label}", logging.WARNING)
        self.candidates = remaining
        self._runners.clear()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, torch.float32)
        padded, size = pad_to_multiple(x, self.bucket)
        y = self._runner(padded)(padded)
        return unpad(y, size).to(self.device, torch.float32)
