"""Still-image I/O: read any Pillow format as RGB uint8, write atomically."""

from __future__ import annotations

import os
import tempfile
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


def write_image(path: str | Path, rgb: np.ndarray, quality: int = 95) -> Path:
    """Write via a temporary file and rename, so a failure leaves no partial output."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise MediaError(f"{path.name}: unknown image format '{path.suffix}'")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        kwargs = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
        Image.fromarray(rgb).save(tmp, format=fmt, **kwargs)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
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
