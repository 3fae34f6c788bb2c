"""One stylization at a time per device, whoever asks: a still, a video job or a live frame.

Two networks sharing a GPU (or the CPU's cores) each run slower than half speed and together
need twice the memory, so the device is taken per frame: a live session and a video job
interleave frame by frame, and a still waits at most one frame.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch


class DeviceGates:
    """A lock per device (`cuda:0`, `cpu`, ...), made on first use."""

    def __init__(self):
        self._gates: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, device: torch.device | str) -> threading.Lock:
        key = str(torch.device(device))
        with self._lock:
            return self._gates.setdefault(key, threading.Lock())


class GatedProcess:
    """A run's stylize callable, taking the device's gate for each frame.

    Everything else (the current engine, its name, the style cycler's controls) reads
    through to the wrapped object, so a run sees no difference.
    """

    def __init__(self, process: Callable[[torch.Tensor], torch.Tensor], gate: threading.Lock):
        self.process = process
        self.gate = gate

    def __call__(self, x01: torch.Tensor) -> torch.Tensor:
        with self.gate:
            return self.process(x01)

    def __getattr__(self, name: str):
        return getattr(self.process, name)
