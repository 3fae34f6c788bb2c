"""`rtstyle bench`: time each backend on uint8 frames against the naive loop, in one run.

The naive baseline is what a pytorch/examples `fast_neural_style` user writes: convert the
frame to float on the host, copy it, run the FP32 module eagerly, copy back and convert on the
host, every frame. Backends are timed end to end on the same frames with uint8 in and out
(`to_device_tensor` → engine → `to_uint8`), so the speed-up includes data movement.
"""

from __future__ import annotations

import logging
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from ..errors import RtstyleError
from .cache import EngineCache, device_name
from .convert import to_device_tensor, to_uint8
from .engine import InferenceEngine

log = logging.getLogger(__name__)


@dataclass
class BenchRow:
    size: str
    backend: str
    precision: str = ""
    padded_to: str = ""              # the shape bucket the backend actually ran
    status: str = "ok"               # ok | skipped | failed
    reason: str = ""
    warmup_s: float | None = None
    frames: int = 0
    median_ms: float | None = None
    p99_ms: float | None = None
    # Process CPU time per frame (all threads). Unlike wall time it barely moves when other
    # processes share the machine; at 1 thread it is the uncontended single-core latency.
    cpu_ms: float | None = None
    fps: float | None = None
    peak_mem_mb: float | None = None
    speedup_vs_naive: float | None = None


@dataclass
class BenchReport:
    machine: dict
    device: str
    versions: dict
    model: dict
    threads: int
    rows: list[BenchRow] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rows"] = [asdict(r) for r in self.rows]
        return d


def library_versions() -> dict:
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for name in ("onnxruntime", "onnx", "onnxscript", "torch_tensorrt", "av", "numpy"):
        module = sys.modules.get(name)
        if module is None:
            try:
                module = __import__(name)
            except ImportError:
                continue
        versions[name] = getattr(module, "__version__", "?")
    if torch.cuda.is_available():
        versions["cuda"] = torch.version.cuda
        versions["cudnn"] = torch.backends.cudnn.version()
    return versions


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"platform": platform.platform(), "cpu": cpu, "logical_cpus": _cpu_count()}


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def synthetic_frame(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A deterministic H×W×3 uint8 frame with smooth gradients, edges and texture, so the
    precision guard sees image-like statistics rather than uniform noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 0.5 + 0.5 * np.sin(xx / max(width, 1) * 6.0 + yy / max(height, 1) * 2.0)
    g = (xx / max(width - 1, 1)) * 0.7 + 0.15
    b = ((xx // max(width // 8, 1) + yy // max(height // 6, 1)) % 2) * 0.5 + 0.25
    img = np.stack([r, g, b], -1) + rng.normal(0, 0.03, (height, width, 3))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def _peak_mem_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    # Process peak RSS: cumulative over the run (ru_maxrss is KiB on Linux, bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_frames(step: Callable[[np.ndarray], np.ndarray], frame: np.ndarray, frames: int,
                 warmup: int, device: torch.device) -> tuple[list[float], list[float]]:
    """Wall and process-CPU seconds per frame."""
    for _ in range(warmup):
        step(frame)
    _sync(device)
    wall, cpu = [], []
    for _ in range(frames):
        start, start_cpu = time.perf_counter(), time.process_time()
        step(frame)
        _sync(device)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def _fill(row: BenchRow, timing: tuple[list[float], list[float]], device: torch.device) -> None:
    times, cpu = timing
    row.cpu_ms = round(statistics.median(cpu) * 1000, 2)
    ordered = sorted(times)
    row.frames = len(times)
    row.median_ms = round(statistics.median(ordered) * 1000, 2)
    row.p99_ms = round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000, 2)
    row.fps = round(1000.0 / row.median_ms, 2)
    row.peak_mem_mb = round(_peak_mem_mb(device), 1)


def naive_step(stylizer: nn.Module, device: torch.device) -> Callable[[np.ndarray], np.ndarray]:
    """pytorch/examples style: host float conversion, FP32 eager, host conversion back."""

    def step(frame_hwc_u8: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(frame_hwc_u8.transpose(2, 0, 1).astype(np.float32) / 255.0)
        with torch.no_grad():
            y = stylizer(x.unsqueeze(0).to(device)).cpu()
        return (y[0].numpy().transpose(1, 2, 0).clip(0, 1) * 255.0).astype(np.uint8)

    return step


def engine_step(engine: InferenceEngine, device: torch.device) -> Callable[[np.ndarray], np.ndarray]:
    def step(frame_hwc_u8: np.ndarray) -> np.ndarray:
        return to_uint8(engine(to_device_tensor(frame_hwc_u8, device)))

    return step


def smoothing_step(smoother, frame: np.ndarray,
                   device: torch.device) -> Callable[[np.ndarray], None]:
    """Temporal smoothing alone, on a frame panned 2 px per call so the flow is not trivial."""
    moves = [to_device_tensor(np.roll(frame, 2 * k, axis=1), device) for k in range(2)]
    calls = iter(range(1 << 62))

    def step(_frame: np.ndarray) -> None:
        x = moves[next(calls) % 2]
        smoother(x, x)

    return step


def run_benchmark(stylizer: nn.Module, device: torch.device, *, sizes: list[tuple[int, int]],
                  backends: list[str], precision: str = "auto", frames: int = 30,
                  warmup: int = 3, model_info: dict | None = None, smooth: float | None = None,
                  smooth_blend: str = "auto",
                  cache: EngineCache | None = None,
                  on_status: Callable[[str], None] | None = None) -> BenchReport:
    """Time the naive loop and each backend at each (width, height); never raises per backend."""
    stylizer = stylizer.to(device).eval()
    report = BenchReport(machine=machine_info(), device=device_name(device),
                         versions=library_versions(), model=model_info or {},
                         threads=torch.get_num_threads())
    say = on_status or (lambda message: None)
    for width, height in sizes:
        size = f"{width}x{height}"
        frame = synthetic_frame(width, height)
        say(f"{size}: naive FP32 eager loop")
        naive = BenchRow(size=size, backend="naive", precision="fp32")
        _fill(naive, _time_frames(naive_step(stylizer, device), frame, frames, warmup, device),
              device)
        naive.speedup_vs_naive = 1.0
        report.rows.append(naive)
        for name in backends:
            row = BenchRow(size=size, backend=name)
            report.rows.append(row)
            try:
                engine = InferenceEngine(stylizer, device, backend=name, precision=precision,
                                         cache=cache, on_status=say)
                start = time.perf_counter()
                engine.warmup(to_device_tensor(frame, device))
                row.warmup_s = round(time.perf_counter() - start, 2)
                row.backend, row.precision = engine.backend, engine.precision
                _, _, bucket_h, bucket_w = engine.bucket_shape((1, 3, height, width))
                row.padded_to = f"{bucket_w}x{bucket_h}"
                if name != "auto" and engine.backend != name:
                    row.reason = f"fell back from {name}: {engine.skipped}"
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                times = _time_frames(engine_step(engine, device), frame, frames, warmup, device)
            except RtstyleError as exc:
                row.status, row.reason = "skipped", str(exc)
                log.info("bench %s %s skipped: %s", size, name, exc)
                continue
            except Exception as exc:  # a broken backend must not end the whole benchmark
                row.status, row.reason = "failed", f"{type(exc).__name__}: {exc}"
                log.warning("bench %s %s failed: %s", size, name, row.reason)
                continue
            _fill(row, times, device)
            row.speedup_vs_naive = float(f"{naive.median_ms / row.median_ms:.3g}")  # >0 stays >0
        if smooth:
            from .smoothing import TemporalSmoother

            # "auto" resolves as in `video`/`webcam`: against this generator
            smoother = TemporalSmoother(strength=smooth, blend=smooth_blend,
                                        steady=lambda: getattr(stylizer, "steady_generator", False))
            blend = smoother.active_blend
            say(f"{size}: temporal smoothing {smooth:g} ({blend} blend)")
            row = BenchRow(size=size, backend="+smooth", precision="fp32",
                           reason=f"strength {smooth:g}, {blend} blend; add to a backend "
                                  "row's frame time")
            _fill(row, _time_frames(smoothing_step(smoother, frame, device), frame,
                                    frames, warmup, device), device)
            report.rows.append(row)
    return report
