"""The style a batch paints with, as files a worker on any machine can load.

`--style` may name a bundled or user style, an rtstyle `.safetensors` file, or a painting for
an arbitrary-style model; a worker on another machine may have none of these. The driver
resolves the argument once, here, to the weights file (and the painting, if any). For a
cluster their bytes travel inside the bundle, which the driver puts in Ray's object store
once: every task gets a reference, and each machine fetches the bytes once, not once per task.
A worker writes them to a node-local cache named by their hash and loads them from there, as
`rtstyle video --style FILE.safetensors` would.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..images import IMAGE_SUFFIXES
from ..models.loading import split_style_argument


@dataclass(frozen=True)
class StyleFile:
    """One file of a style: its name, and its bytes (shipped) or its path (same machine)."""

    name: str
    data: bytes | None = None
    path: Path | None = None

    def materialize(self, folder: Path) -> Path:
        """A path to this file on this machine: the given path, or the bytes written once
        (atomically, so two workers on one machine never read a half-written copy)."""
        if self.data is None:
            return self.path
        target = folder / self.name
        if not target.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{self.name}.")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(self.data)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return target


@dataclass(frozen=True)
class StyleBundle:
    """What a worker needs to build the style: weights, the painting of an arbitrary-style
    model, and a label for reports. `digest` names the node-local cache of shipped bytes."""

    label: str
    weights: StyleFile
    painting: StyleFile | None
    digest: str

    def local_files(self) -> tuple[Path, Path | None]:
        folder = Path(tempfile.gettempdir()) / "rtstyle-styles" / self.digest[:16]
        painting = self.painting.materialize(folder) if self.painting is not None else None
        return self.weights.materialize(folder), painting

    @property
    def size_bytes(self) -> int:
        files = [self.weights] + ([self.painting] if self.painting is not None else [])
        return sum(len(f.data) for f in files if f.data is not None)


def bundle_style(style: str, style_image: Path | None = None, *,
                 ship: bool = False) -> StyleBundle:
    """Resolve `--style` (and `--style-image`) here; a bad name or file fails now, before any
    work starts. `ship=True` carries the bytes (for other machines), else the paths."""
    spec, painting = split_style_argument(style, style_image is not None)
    painting = painting or style_image
    files = [spec.weights] + ([Path(painting)] if painting is not None else [])
    digest = hashlib.sha256()
    blobs = []
    for path in files:
        data = Path(path).read_bytes() if ship else None
        if data is not None:
            digest.update(data)
        else:
            digest.update(str(Path(path).resolve()).encode())
        blobs.append(StyleFile(Path(path).name, data, None if ship else Path(path)))
    label = (Path(style).stem if Path(style).suffix.lower() in IMAGE_SUFFIXES
             else spec.full_name)
    return StyleBundle(label=label, weights=blobs[0],
                       painting=blobs[1] if len(blobs) > 1 else None, digest=digest.hexdigest())
