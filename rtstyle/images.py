"""Still-image I/O: read any Pillow format as RGB uint8, write atomically."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import MediaError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def read_image(path: str | Path) -> np.ndarray:
    """H×W×3 uint8 RGB, EXIF orientation applied (phones store portraits rotated)."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"image not found: {path}")
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            return np.asarray(img.convert("RGB")).copy()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise MediaError(f"{path.name}: not a readable image ({exc})") from None


@contextlib.contextmanager
def atomic_output(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a new temporary path beside `path`; on success it is renamed over `path`, on any
    failure removed, so a crash never leaves half a file behind.

    The result gets the mode of any new file (0666 less the umask: 0644 under umask 022), not
    `mkstemp`'s 0600. The temp file is created that way (O_EXCL, random name) and its mode is
    put back after writing, because some writers replace the file (safetensors writes 0600).
    A private output surprises whoever shares the folder, serves it or backs it up.
    """
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"no free temporary name beside {path}")
    try:
        mode = tmp.stat().st_mode & 0o777
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_image(path: str | Path, rgb: np.ndarray, quality: int = 95) -> Path:
    """Write atomically (see `atomic_output`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise MediaError(f"{path.name}: unknown image format '{path.suffix}'")
    kwargs = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    with atomic_output(path, suffix=path.suffix) as tmp:
        Image.fromarray(rgb).save(tmp, format=fmt, **kwargs)
    return path


def resize_max_side(rgb: np.ndarray, max_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return rgb
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))


def image_to_tensor(rgb: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """1×3×H×W float in 0..1; the uint8 → float conversion happens on `device`."""
    if not rgb.flags.writeable:  # e.g. np.asarray(PIL image); torch wants a writable buffer
        rgb = rgb.copy()
    t = torch.from_numpy(np.ascontiguousarray(rgb)).to(device)
    return t.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def tensor_to_image(x: torch.Tensor) -> np.ndarray:
    """First image of an N×3×H×W 0..1 tensor as H×W×3 uint8."""
    y = x[0].detach().float().clamp(0, 1).mul(255.0).round().to(torch.uint8)
    return y.permute(1, 2, 0).cpu().numpy()
