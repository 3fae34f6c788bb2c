"""What an upload is, checked before any work: an image or a video, within the limits.

Both probes read headers only (Pillow opens lazily; FFmpeg reads the container), so a huge or
hostile file is refused before it is decoded. Every refusal is an `HTTPException` whose message
says what was found and which option raises the limit.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from fastapi import HTTPException
from PIL import Image, UnidentifiedImageError

# Formats a still may come in (what Pillow reads reliably), and the ones a result can go out in.
READABLE_IMAGES = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "MPO")
WRITABLE_IMAGES = {"png": ("PNG", "image/png", ".png"), "jpeg": ("JPEG", "image/jpeg", ".jpg"),
                   "webp": ("WEBP", "image/webp", ".webp")}
SAME_FORMAT = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp"}
# FFmpeg demuxers that read single pictures: an image sent as a video job.
IMAGE_DEMUXERS = ("image2", "image2pipe")
VIDEO_HELP = "MP4, MOV, MKV, WebM or AVI"


def megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} MP"


def check_pixels(width: int, height: int, max_pixels: int, what: str) -> None:
    if width * height > max_pixels:
        raise HTTPException(413, f"{what} is {width}x{height} ({megapixels(width * height)}); "
                                 f"the limit is {megapixels(max_pixels)} "
                                 "(rtstyle serve --max-pixels)")


@dataclass(frozen=True)
class ImageProbe:
    width: int
    height: int
    format: str


def probe_image(path: Path, max_pixels: int) -> ImageProbe:
    try:
        with Image.open(path) as img:
            probe = ImageProbe(*img.size, img.format or "?")
    except Image.DecompressionBombError:
        raise HTTPException(413, f"the image is far larger than the limit of "
                                 f"{megapixels(max_pixels)} (rtstyle serve --max-pixels)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise HTTPException(415, "not an image this server reads (JPEG, PNG, WebP, BMP, TIFF, "
                                 "GIF); videos go to /api/jobs") from None
    if probe.format not in READABLE_IMAGES:
        raise HTTPException(415, f"{probe.format} images are not accepted; send JPEG, PNG, "
                                 "WebP, BMP, TIFF or GIF")
    check_pixels(probe.width, probe.height, max_pixels, "the image")
    return probe


def output_format(requested: str | None, input_format: str) -> tuple[str, str, str]:
    """(Pillow format, media type, suffix): `same` keeps JPEG/PNG/WebP and gives PNG otherwise."""
    key = (requested or "same").lower()
    if key == "same":
        key = SAME_FORMAT.get(input_format, "png")
    if key == "jpg":
        key = "jpeg"
    if key not in WRITABLE_IMAGES:
        raise HTTPException(400, f"format must be same, png, jpeg or webp, not '{requested}'")
    return WRITABLE_IMAGES[key]


def encode_image(rgb: np.ndarray, pil_format: str) -> bytes:
    buffer = io.BytesIO()
    options = {"quality": 95} if pil_format in ("JPEG", "WEBP") else {}
    Image.fromarray(rgb).save(buffer, format=pil_format, **options)
    return buffer.getvalue()


@dataclass(frozen=True)
class VideoProbe:
    width: int
    height: int
    seconds: float | None
    rate: float
    has_audio: bool
    description: str


def _duration(container, stream) -> float | None:
    """Seconds, from the container, else the stream, else frames/rate; None when unknown
    (some WebM recordings): the job then stops at the limit instead."""
    if container.duration:
        return container.duration / 1_000_000
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if stream.frames and stream.average_rate:
        return stream.frames / float(stream.average_rate)
    return None


def probe_video(path: Path, max_pixels: int, max_seconds: float) -> VideoProbe:
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        raise HTTPException(415, f"not a video this server reads ({VIDEO_HELP}); "
                                 "images go to /api/stylize") from None
    with container:
        if container.format.name in IMAGE_DEMUXERS or container.format.name.endswith("_pipe"):
            raise HTTPException(415, "that is a still image, not a video; images go to "
                                     "/api/stylize")
        if not container.streams.video:
            raise HTTPException(415, "the file has no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if not ctx.width or not ctx.height:
            raise HTTPException(415, "the video stream has no picture size (damaged?)")
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        probe = VideoProbe(ctx.width, ctx.height, _duration(container, stream), rate,
                           bool(container.streams.audio),
                           f"{ctx.name} {ctx.width}x{ctx.height} @ {rate:.3g} fps")
    check_pixels(probe.width, probe.height, max_pixels, "the video")
    if probe.seconds is not None and probe.seconds > max_seconds:
        raise HTTPException(413, f"the video is {probe.seconds:.1f} s long; the limit is "
                                 f"{max_seconds:g} s (rtstyle serve --max-video-seconds)")
    return probe
