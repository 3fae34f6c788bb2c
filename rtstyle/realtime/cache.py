"""On-disk cache of built engines (AOTInductor packages, ONNX graphs, TensorRT programs).

Building an engine takes seconds (ONNX export) to minutes (Inductor on a small CPU, TensorRT),
so a second run with the same style, frame size and software must not rebuild. The key holds
every input of the build, including the two that StreamDiffusion's `create_prefix` leaves out
(library versions, the processor): an engine from another TensorRT version or another GPU is at
best refused, at worst wrong, and Inductor compiles CPU code with `-march=native`, so a package
from another CPU can die on an illegal instruction. Files are written to a temporary name and
renamed, so a crash mid-build never leaves a truncated artifact; a file that still fails to
load (disk damage, a foreign file) is deleted and rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

log = logging.getLogger(__name__)

T = TypeVar("T")


def default_cache_dir() -> Path:
    """`$RTSTYLE_HOME/cache/engines`, else the platform's per-user cache directory."""
    if os.environ.get("RTSTYLE_HOME"):
        return Path(os.environ["RTSTYLE_HOME"]) / "cache" / "engines"
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home()))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "rtstyle" / "engines"


def module_fingerprint(module: nn.Module) -> str:
    """SHA-256 over the class, every tensor (buffers too: SANet's cached style features) and
    the plain attributes that change the traced graph (a `Stylizer`'s range)."""
    h = hashlib.sha256()
    h.update(type(module).__qualname__.encode())
    for name in ("input_range",):
        h.update(f"{name}={getattr(module, name, None)!r};".encode())
    tensors = dict(module.named_parameters())
    tensors.update(dict(module.named_buffers()))
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu", torch.float32).contiguous()
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


@cache
def cpu_facts() -> dict:
    """The processor as a compiled CPU kernel sees it: model, architecture, the instruction
    set PyTorch dispatches to, and every feature flag (`-march=native` may use any of them)."""
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:  # the first processor's lines win
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:  # not Linux: the model and the dispatch level still separate machines
        pass
    model = info.get("model name") or platform.processor() or platform.machine()
    flags = info.get("flags") or info.get("Features") or ""
    return {"cpu": model, "machine": platform.machine(),
            "capability": torch.backends.cpu.get_cpu_capability(),
            "flags": " ".join(sorted(flags.split()))}


def device_facts(device: torch.device) -> dict:
    """What a compiled engine depends on besides the software: the CPU's facts, and for CUDA
    the GPU's name and compute capability as well."""
    facts = {"device": device.type, **cpu_facts()}
    if device.type == "cuda":
        facts["gpu"] = torch.cuda.get_device_name(device)
        facts["capability"] = ".".join(map(str, torch.cuda.get_device_capability(device)))
    return facts


def _write_atomic(final: Path, write: Callable[[Path], None]) -> None:
    """`write(tmp)` beside `final`, then rename: readers see the old file or the whole new one."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=final.suffix,
                                    dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass
class EngineCache:
    """Artifacts under `root/<backend>/<key>.<suffix>`; counts builds, hits and rejected files
    for tests and logs, and remembers how long builds took on this machine."""

    root: Path = field(default_factory=default_cache_dir)
    builds: int = 0
    hits: int = 0
    rejected: int = 0

    @staticmethod
    def key(**facts) -> str:
        blob = json.dumps(facts, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def path(self, backend: str, key: str, suffix: str) -> Path:
        return Path(self.root) / backend / f"{key}{suffix}"

    def contains(self, backend: str, key: str, suffix: str) -> bool:
        return self.path(backend, key, suffix).is_file()

    def load_or_build(self, backend: str, key: str, suffix: str, build: Callable[[Path], None],
                      load: Callable[[Path], T]) -> T:
        """`load(path)` of the cached artifact; when it is absent or fails to load, build it with
        `build(tmp_path)` (renamed into place when complete) and load that."""
        final = self.path(backend, key, suffix)
        if final.is_file():
            try:
                loaded = load(final)
            except Exception as exc:  # whatever the loader raises on a damaged file
                self.rejected += 1
                log.warning("engine cache: %s does not load (%s: %s); rebuilding it",
                            final, type(exc).__name__, exc)
                final.unlink(missing_ok=True)
            else:
                self.hits += 1
                log.info("engine cache hit: %s", final)
                return loaded
        _write_atomic(final, build)
        self.builds += 1
        log.info("engine built and cached: %s", final)
        return load(final)

    def build_seconds(self, backend: str, device_type: str) -> float | None:
        """How long the latest build of `backend` on this kind of device took here, if known."""
        try:
            times = json.loads((Path(self.root) / backend / "build-seconds.json").read_text())
            return float(times[device_type])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def record_build_seconds(self, backend: str, device_type: str, seconds: float) -> None:
        path = Path(self.root) / backend / "build-seconds.json"
        try:
            times = json.loads(path.read_text())
        except (OSError, ValueError):
            times = {}
        if not isinstance(times, dict):
            times = {}
        times[device_type] = round(seconds, 2)
        _write_atomic(path, lambda tmp: tmp.write_text(json.dumps(times, sort_keys=True)))
