"""Training photos: random crops, scales and flips from a folder, reproducible by seed.

All randomness comes from one `torch.Generator`, so a seed fixes the whole sequence of batches
and a checkpoint can store the generator's state and resume the exact same sequence. Decoding
happens in the training process (no worker pool): on a CPU the networks, not JPEG decoding,
are the bottleneck. `Prefetcher` moves it to one background thread, a few batches ahead, and
keeps the generator state *of the batches handed out* for checkpoints, so the sequence and
`--resume` stay exactly those of the synchronous loader.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import UserInputError
from ...images import IMAGE_SUFFIXES, read_image


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserInputError(f"image folder not found: {folder}")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise UserInputError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    return paths


def to_tensor01(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0)


def random_crop(img: torch.Tensor, size: int, generator: torch.Generator,
                min_scale: float = 0.5) -> torch.Tensor:
    """A square crop covering `min_scale`..1 of the short side, resized to size×size, maybe flipped."""
    _, h, w = img.shape
    short = min(h, w)
    frac = min_scale + (1.0 - min_scale) * torch.rand((), generator=generator).item()
    side = max(1, round(short * frac))
    top = int(torch.randint(0, h - side + 1, (), generator=generator))
    left = int(torch.randint(0, w - side + 1, (), generator=generator))
    crop = img[:, top:top + side, left:left + side].unsqueeze(0)
    crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=side > size)
    if torch.rand((), generator=generator).item() < 0.5:
        crop = crop.flip(-1)
    return crop[0].clamp_(0, 1)


def sample_photos(data: str | Path, size: int, count: int = 4) -> torch.Tensor:
    """A fixed set of crops spread over the folder, so every sample grid of a run (and of its
    resumed continuation) shows the same photos."""
    paths = list_images(data)
    step = max(1, len(paths) // count)
    gen = torch.Generator().manual_seed(0)
    return torch.stack([random_crop(to_tensor01(read_image(p)), size, gen, 1.0)
                        for p in paths[::step][:count]])


class PhotoBatches:
    """Endless batches N×3×size×size (RGB 0..1) drawn with replacement from a photo folder."""

    def __init__(self, folder: str | Path, size: int, batch: int, seed: int = 0,
                 min_scale: float = 0.5, generator: torch.Generator | None = None):
        """`generator` (a trainer's checkpointed one) replaces a fresh one seeded with `seed`."""
        self.paths = list_images(folder)
        self.size = size
        self.batch = batch
        self.min_scale = min_scale
        self.generator = generator if generator is not None else torch.Generator().manual_seed(seed)

    def __iter__(self):
        return self

    def __next__(self) -> torch.Tensor:
        idx = torch.randint(0, len(self.paths), (self.batch,), generator=self.generator).tolist()
        crops = [random_crop(to_tensor01(read_image(self.paths[i])), self.size, self.generator,
                             self.min_scale) for i in idx]
        return torch.stack(crops)

    def get_state(self) -> torch.Tensor:
        return self.generator.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)


class Prefetcher:
    """Batches of `source` drawn by a background thread into a queue of `depth`.

    Every random draw of `source` must come from `generator` (as `PhotoBatches` does). The
    thread starts at the first `next()`, so a resume can set the generator's state after
    building; `get_state()` is the state after the last batch handed out (not after the ones
    still queued), which is what a checkpoint must store to resume the same sequence.
    """

    def __init__(self, source: Iterator[torch.Tensor], generator: torch.Generator, depth: int = 2):
        self.source = source
        self.generator = generator
        self.depth = max(1, depth)
        self._queue: queue.Queue | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state: torch.Tensor | None = None

    def _work(self) -> None:
        try:
            while not self._stop.is_set():
                item = (next(self.source), self.generator.get_state(), None)
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # handed to the training thread at its next batch
            while not self._stop.is_set():
                try:
                    self._queue.put((None, None, exc), timeout=0.1)
                    break
                except queue.Full:
                    continue

    def __iter__(self):
        return self

    def __next__(self) -> torch.Tensor:
        if self._stop.is_set():
            raise RuntimeError("Prefetcher is closed")
        if self._thread is None:
            self._queue = queue.Queue(self.depth)
            self._thread = threading.Thread(target=self._work, name="rtstyle-batches", daemon=True)
            self._thread.start()
        batch, state, exc = self._queue.get()
        if exc is not None:
            self.close()
            raise exc
        self._state = state
        return batch

    def get_state(self) -> torch.Tensor:
        return self._state if self._state is not None else self.generator.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        if self._thread is not None:
            raise RuntimeError("Prefetcher.set_state after the first batch")
        self.generator.set_state(state)

    def close(self) -> None:
        """Stop the thread (it finishes the batch it is drawing)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def load_style_image(path: str | Path, max_side: int) -> torch.Tensor:
    """1×3×H×W RGB 0..1, the painting scaled so its long side is `max_side`.

    The painting's scale relative to the training crops sets the size of the learnt brush
    strokes, so it is a training parameter (`style_size`), not a fixed preprocessing step.
    """
    img = to_tensor01(read_image(path)).unsqueeze(0)
    h, w = img.shape[-2:]
    scale = max_side / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(img, size=size, mode="bilinear", align_corners=False,
                         antialias=scale < 1).clamp_(0, 1)
