"""Real clips for the pipeline tests, written and read back with PyAV (no mocked codecs).

Pattern from PyAV `tests/test_encode.py` (`write_rgb_rotate` / `assert_rgb_rotate`): encode a
tiny clip, then decode it and compare counts, timestamps and sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def write_clip(path: Path, *, frames: int = 12, width: int = 64, height: int = 48,
               rate: int = 25, pix_fmt: str = "yuv420p", codec: str = "libx264",
               pts: list[int] | None = None, time_base: Fraction | None = None,
               rotation: int = 0, audio_rate: int | None = None, audio_layout: str = "stereo",
               audio_codec: str = "aac") -> Path:
    """A moving gradient clip; `pts` (in `time_base`) makes it variable frame rate."""
    time_base = time_base or Fraction(1, rate)
    pts = pts if pts is not None else list(range(frames))
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=rate)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.time_base = time_base
        video.codec_context.time_base = time_base
        if rotation:
            video.set_display_rotation(rotation)
        audio = None
        if audio_rate:
            audio = out.add_stream(audio_codec, rate=audio_rate)
            audio.layout = audio_layout
        y, x = np.mgrid[0:height, 0:width]
        for i, p in enumerate(pts):
            rgb = np.stack([(x * 4 + i * 9) % 256, (y * 5) % 256,
                            np.full_like(x, (i * 20) % 256)], -1).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = p, time_base
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None:
            seconds = float((pts[-1] + 1) * time_base)
            total = int(seconds * audio_rate)
            channels = av.AudioLayout(audio_layout).nb_channels
            t = np.arange(total) / audio_rate
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            samples = np.repeat(tone[None, :], channels, 0)
            for start in range(0, total, 1024):
                chunk = np.ascontiguousarray(samples[:, start:start + 1024])
                aframe = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=audio_layout)
                aframe.sample_rate = audio_rate
                aframe.pts = start
                out.mux(audio.encode(aframe))
            out.mux(audio.encode(None))
    return path


def make_audio_only(path: Path) -> Path:
    """A stereo AAC file with no video stream."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=44100)
        frame = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp",
                                           layout="stereo")
        frame.sample_rate, frame.pts = 44100, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def trim_clip(source: Path, target: Path, seconds: float) -> Path:
    """Copy the packets of the first `seconds` of a clip (video and audio), no re-encoding."""
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        mapping = {}
        for stream in inp.streams:
            if stream.type in ("video", "audio"):
                mapping[stream.index] = out.add_stream_from_template(stream)
        for packet in inp.demux(*[inp.streams[i] for i in mapping]):
            if packet.dts is None:
                continue
            if float(packet.dts * packet.time_base) >= seconds:
                continue  # by decode time, so every reference frame a kept frame needs is kept
            packet.stream = mapping[packet.stream.index]
            out.mux(packet)
    return target


@dataclass
class Probe:
    frames: int
    pts: list[int]
    time_base: Fraction
    rate: Fraction | None
    width: int
    height: int
    rotation: int
    video_seconds: float
    audio_seconds: float | None
    audio_channels: int | None
    audio_codec: str | None


def probe(path: Path) -> Probe:
    """Decode everything and measure: frames, pts, durations, audio layout."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        decoded = list(c.decode(v))
        pts = [f.pts for f in decoded]
        rate, tb = v.average_rate, v.time_base
        step = float(np.median(np.diff(pts))) if len(pts) > 1 else 0.0
        video_seconds = float((pts[-1] - pts[0] + step) * tb) if pts else 0.0
        rotation = int(decoded[0].rotation or 0) if decoded else 0
        width, height = v.codec_context.width, v.codec_context.height
    audio_seconds = channels = codec = None
    with av.open(str(path)) as c:
        if c.streams.audio:
            a = c.streams.audio[0]
            channels, codec = a.codec_context.channels, a.codec_context.name
            samples = sum(f.samples for f in c.decode(a))
            audio_seconds = samples / a.codec_context.sample_rate
    return Probe(len(pts), pts, Fraction(tb), rate, width, height, rotation, video_seconds,
                 audio_seconds, channels, codec)
