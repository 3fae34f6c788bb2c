"""On-disk cache of built engines (ONNX graphs, TensorRT programs).

Building an engine takes seconds (ONNX export) to minutes (TensorRT), so a second run with the
same style, frame size and software must not rebuild. The key holds every input of the build,
including the two that StreamDiffusion's `create_prefix` leaves out (library versions, GPU name):
an engine from another TensorRT version or another GPU is at best refused, at worst wrong.
Files are written to a temporary name and renamed, so a crash mid-build never leaves a
truncated artifact that a later run would load.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)


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
    the plain attributes that change the traced graph (a `Stylizer`'s strength and range)."""
    h = hashlib.sha256()
    h.update(type(module).__qualname__.encode())
    for name in ("input_range", "strength", "feature_strength"):
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


@dataclass
class EngineCache:
    """Artifacts under `root/<backend>/<key>.<suffix>`; counts builds and hits for tests/logs."""

    root: Path = field(default_factory=default_cache_dir)
    builds: int = 0
    hits: int = 0

    @staticmethod
    def key(**facts) -> str:
        blob = json.dumps(facts, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def path(self, backend: str, key: str, suffix: str) -> Path:
        return Path(self.root) / backend / f"{key}{suffix}"

    def get_or_build(self, backend: str, key: str, suffix: str,
                     build: Callable[[Path], None]) -> Path:
        """Return the cached artifact, building it with `build(tmp_path)` when absent."""
        final = self.path(backend, key, suffix)
        if final.exists():
            self.hits += 1
            log.info("engine cache hit: %s", final)
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{key}.", suffix=suffix, dir=final.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            build(tmp)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        self.builds += 1
        log.info("engine built and cached: %s", final)
        return final
