"""Where frames come from: files, image sequences, network streams, lavfi graphs and cameras.

Every source yields `Frame`s that carry their own timestamp. `FileSource` decodes with PyAV
(FFmpeg), which reads files, `frames/%04d.png` sequences, rtsp/http/udp/srt URLs and `lavfi:`
filter graphs alike. `CameraSource` uses OpenCV, whose capture back-ends (V4L2, AVFoundation,
Media Foundation) negotiate size, rate and MJPG with the camera on every OS.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import cv2
import numpy as np

from ..errors import MediaError
from .frames import Frame, FrameFormat, VideoInfo, Yuv420
from .yuv import colorimetry_of, frame_yuv420_planes

log = logging.getLogger(__name__)

NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt", "rtp")
_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
RECONNECT_DELAYS_S = (0.5, 1.0, 2.0, 4.0)
CAMERA_TIME_BASE = Fraction(1, 1000)
YUV420_8BIT = ("yuv420p", "yuvj420p")
SWS_MATRIX = {"bt601": "ITU601", "bt709": "ITU709"}


def reconnect_delays() -> Iterator[float]:
    """Back off quickly to a steady retry every few seconds, for as long as the user waits."""
    return itertools.chain(RECONNECT_DELAYS_S, itertools.repeat(RECONNECT_DELAYS_S[-1]))


def url_scheme(spec: str) -> str | None:
    match = _URL.match(spec)
    return match.group(1).lower() if match else None


def _interpolation(src: tuple[int, int], dst: tuple[int, int]) -> str:
    """Area averaging when shrinking (no aliasing), bicubic when enlarging."""
    return "AREA" if dst[0] * dst[1] < src[0] * src[1] else "BICUBIC"


class FrameSource(Protocol):
    """Where frames come from. Whoever opens a source closes it (`with source:`); a pipeline
    only reads it, after telling it the size and pixel format the frames should have."""

    spec: str
    info: VideoInfo

    def set_output_size(self, width: int, height: int) -> None: ...

    def set_frame_format(self, fmt: FrameFormat) -> None: ...

    def frames(self, stop: threading.Event) -> Iterator[Frame]: ...

    def problems(self) -> str | None:
        """A one-line account of what could not be read, or None."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> FrameSource: ...

    def __exit__(self, *exc) -> None: ...


class FileSource:
    """Decodes the first video stream of anything FFmpeg can open.

    The container is opened in the constructor so that a missing file, a file that is not a
    video or a video without a picture fails before any output exists. A packet that fails to
    decode in the middle is skipped and counted in `decode_errors`; a read error ends the stream
    early and sets `truncated`. With `live=True`, files and lavfi graphs are paced to their
    timestamps so that they behave like a camera; network streams are already real time.
    """

    def __init__(self, spec: str, *, live: bool = False, reconnect: bool = False,
                 open_timeout_s: float = 10.0):
        self.spec = spec
        self.live = live
        self.reconnect = reconnect
        self.open_timeout_s = open_timeout_s
        self.scheme = url_scheme(spec)
        self.is_lavfi = spec.startswith("lavfi:")
        self.is_network = self.scheme in NETWORK_SCHEMES
        self.path = None if (self.is_lavfi or self.is_network) else Path(spec).expanduser()
        self.output_size: tuple[int, int] | None = None
        self._planes_wanted = False
        self.frames_as_yuv = 0
        self.decode_errors = 0
        self.frames_decoded = 0
        self.truncated = False
        self.reached_end = False
        self.reconnects = 0
        self.span: tuple[Fraction | None, Fraction | None] | None = None
        self._container = self._open()
        self.info = self._describe(self._container)

    def _open(self) -> av.container.InputContainer:
        if self.path is not None and "%" not in self.path.name:
            if not self.path.exists():
                raise MediaError(f"input not found: {self.path}")
            if self.path.is_dir():
                raise MediaError(f"input is a folder, not a video: {self.path} "
                                 "(for an image sequence give a pattern like frames/%04d.png)")
        try:
            if self.is_lavfi:
                return av.open(self.spec[len("lavfi:"):], format="lavfi")
            if self.is_network:
                options = {"rtsp_transport": "tcp"} if self.scheme in ("rtsp", "rtsps") else {}
                return av.open(self.spec, options=options,
                               timeout=(self.open_timeout_s, self.open_timeout_s))
            return av.open(str(self.path))
        except av.error.FileNotFoundError:
            raise MediaError(f"input not found: {self.spec} (for an image sequence, the first "
                             "file of the pattern must exist)") from None
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            if self.path is not None and self._mp4_index_missing(self.path):
                raise MediaError(
                    f"{self.path} is incomplete: the recording was cut before it was finalized "
                    "(no moov index), so its frames cannot be located; record again (MKV "
                    "survives interruptions), or try an MP4 repair tool such as untrunc with "
                    "a good file from the same camera") from None
            kind = "stream" if self.is_network else "filter graph" if self.is_lavfi else "file"
            raise MediaError(f"cannot open {self.spec} as a video {kind}: {exc}") from None

    @staticmethod
    def _mp4_index_missing(path: Path) -> bool:
        """An MP4/MOV whose top-level boxes hold media (`mdat`) but no index (`moov`).

        The muxer writes `moov` last, after all the media, unless told to move it to the front
        (faststart); a recording killed before it closed the file has none. Asked only after
        FFmpeg has refused the file, whose own words ("Invalid data found") do not say this.
        """
        seen = []
        try:
            total = path.stat().st_size
            with path.open("rb") as f:
                pos = 0
                while pos + 8 <= total and len(seen) < 1000:
                    f.seek(pos)
                    header = f.read(16)
                    size, kind = int.from_bytes(header[:4], "big"), header[4:8]
                    if size == 1 and len(header) == 16:  # 64-bit size follows
                        size = int.from_bytes(header[8:16], "big")
                    elif size == 0:  # box runs to the end of the file
                        size = total - pos
                    if size < 8:
                        break
                    seen.append(kind)
                    pos += size
        except OSError:
            return False
        starts_like_mp4 = bool(seen) and seen[0] in (b"ftyp", b"wide", b"free", b"skip", b"mdat")
        return starts_like_mp4 and b"mdat" in seen and b"moov" not in seen

    def _describe(self, container) -> VideoInfo:
        if not container.streams.video:
            container.close()
            raise MediaError(f"{self.spec} has no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if not ctx.width or not ctx.height:
            container.close()
            raise MediaError(f"{self.spec}: the video stream has no picture size "
                             "(not a video, or damaged)")
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(25)
        time_base = stream.time_base or (1 / Fraction(rate))
        pix_fmt = ctx.format.name if ctx.format else "?"
        return VideoInfo(
            width=ctx.width, height=ctx.height, rate=Fraction(rate), time_base=Fraction(time_base),
            rotation=self._probe_rotation(), frames=stream.frames or 0,
            has_audio=bool(container.streams.audio) and self.path is not None,
            description=f"{'lavfi' if self.is_lavfi else ctx.name} {ctx.width}x{ctx.height} "
                        f"{pix_fmt} @ {float(rate):.3g} fps",
            colorimetry=colorimetry_of(ctx, ctx.width, ctx.height),
        )

    def _probe_rotation(self) -> int:
        """Rotation side data rides on decoded frames, so peek at the first one in a fresh handle.

        A fresh handle keeps the main one at the start, which matters for pipes and streams.
        """
        if self.path is None:
            return 0
        try:
            with av.open(str(self.path)) as probe:
                for frame in probe.decode(video=0):
                    return int(frame.rotation or 0)
        except (av.error.FFmpegError, OSError):
            return 0
        return 0

    def set_output_size(self, width: int, height: int) -> None:
        """Frames come out at this size: an odd last row or column is cropped off (4:2:0 needs
        even sides), any other change is a resize by swscale in the decode thread."""
        self.output_size = (width, height)
        if self._crops(self.info.width, self.info.height) and (width, height) != (
                self.info.width, self.info.height):
            log.warning("%s is %dx%d; 4:2:0 video needs even sides, so the last %s cropped "
                        "(output %dx%d)", self.spec, self.info.width, self.info.height,
                        "row and column are" if self.info.width % 2 and self.info.height % 2
                        else "row is" if self.info.height % 2 else "column is", width, height)

    def set_span(self, start: Fraction | None, end: Fraction | None) -> None:
        """Read only the frames whose time (seconds) is in [start, end); None is the file's own
        start or end. Decoding starts at the keyframe before `start` (a part of a long file)."""
        if self.path is None:
            raise MediaError(f"{self.spec}: only a file can be read from a given time")
        self.span = (start, end)

    def set_frame_format(self, fmt: FrameFormat) -> None:
        """When the frames end in a 4:2:0 encoder, 8-bit 4:2:0 pictures travel on as planes
        (`Frame.yuv`) and are converted on the device; otherwise swscale gives RGB."""
        self._planes_wanted = fmt.yuv420 is not None

    def _crops(self, width: int, height: int) -> bool:
        """True when the output size is the input's, or it less one row and/or column."""
        w, h = self.output_size or (width, height)
        return 0 <= width - w <= 1 and 0 <= height - h <= 1

    def _pixels(self, av_frame: av.VideoFrame) -> dict:
        """`Frame` pixel fields: YUV planes when they can go to the device as they are (8-bit
        4:2:0 kept at its size), else RGB from swscale (10-bit, 4:4:4, gray, resized)."""
        w, h = self.output_size or (av_frame.width, av_frame.height)
        colorimetry = colorimetry_of(av_frame, av_frame.width, av_frame.height)
        crop = self._crops(av_frame.width, av_frame.height)
        if crop and self._planes_wanted and av_frame.format.name in YUV420_8BIT:
            y, u, v = frame_yuv420_planes(av_frame)
            cw, ch = (w + 1) // 2, (h + 1) // 2
            self.frames_as_yuv += 1
            return {"rgb": None, "yuv": Yuv420(
                np.ascontiguousarray(y[:h, :w]), np.ascontiguousarray(u[:ch, :cw]),
                np.ascontiguousarray(v[:ch, :cw]), colorimetry)}
        # swscale assumes BT.601 limited unless told; tell it what the frame says.
        matrix = {"src_colorspace": SWS_MATRIX[colorimetry.matrix],
                  "src_color_range": "JPEG" if colorimetry.full_range else "MPEG"} \
            if av_frame.format.name.startswith("yuv") else {}
        if crop:
            return {"rgb": av_frame.to_ndarray(format="rgb24", **matrix)[:h, :w]}
        return {"rgb": av_frame.to_ndarray(
            width=w, height=h, format="rgb24", **matrix,
            interpolation=_interpolation((av_frame.width, av_frame.height), (w, h)))}

    def _decoded(self, container) -> Iterator[av.VideoFrame]:
        """Decoded pictures of one container; skips bad packets, stops at a read error."""
        stream = container.streams.video[0]
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as exc:
                log.warning("reading %s stopped early: %s", self.spec, exc)
                self.truncated = True
                return
            try:
                pictures = packet.decode()
            except av.error.FFmpegError as exc:
                self.decode_errors += 1
                log.debug("skipping undecodable packet at pts %s: %s", packet.pts, exc)
                continue
            yield from pictures

    def _decoded_from(self, container, start: Fraction | None) -> Iterator[av.VideoFrame]:
        """Decoded pictures from the keyframe at or before `start` seconds (None: the beginning).

        Some indexes hold decode times, so a seek can land on a keyframe just after `start`;
        then it seeks again, further back, until the first picture is not late.
        """
        if not start:
            yield from self._decoded(container)
            return
        stream = container.streams.video[0]
        back = Fraction(0)
        while True:
            target = max(start - back, Fraction(0))
            container.seek(int(target / stream.time_base), stream=stream, backward=True)
            pictures = self._decoded(container)
            first = next(pictures, None)
            if first is None or first.pts is None or target == 0 \
                    or first.pts * Fraction(first.time_base) <= start:
                if first is not None:
                    yield first
                yield from pictures
                return
            back = back * 2 or Fraction(1)

    def _containers(self, stop: threading.Event) -> Iterator:
        """The open container, then fresh ones while `--reconnect` keeps a stream alive."""
        container = self._container
        while True:
            yield container
            container.close()
            if not (self.reconnect and self.is_network) or stop.is_set():
                return
            for delay in reconnect_delays():
                if stop.wait(delay):
                    return
                try:
                    container = self._open()
                    self._describe(container)
                    break
                except MediaError as exc:
                    log.info("reconnect to %s failed: %s", self.spec, exc)
            self.reconnects += 1
            log.warning("reconnected to %s", self.spec)

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        info = self.info
        pace = self.live and not self.is_network
        clock_start = first_seconds = None
        last_pts = None
        for container in self._containers(stop):
            offset = None  # a reconnected stream may restart its clock; keep ours increasing
            start, end = self.span or (None, None)
            for av_frame in self._decoded_from(container, start):
                if stop.is_set():
                    return
                time_base = Fraction(av_frame.time_base or info.time_base)
                pts = av_frame.pts
                if pts is None:  # raw inputs without timestamps: derive them from the index
                    pts = round(self.frames_decoded / info.rate / time_base)
                if offset is None:
                    offset = last_pts + 1 - pts if last_pts is not None and pts <= last_pts else 0
                pts += offset
                if start is not None and pts * time_base < start:
                    continue  # decoded from the keyframe before the span, not part of it
                if end is not None and pts * time_base >= end:
                    break
                last_pts = pts
                if pace:
                    seconds = float(pts * time_base)
                    if clock_start is None:
                        clock_start, first_seconds = time.monotonic(), seconds
                    delay = clock_start + (seconds - first_seconds) - time.monotonic()
                    if delay > 0 and stop.wait(delay):
                        return
                yield Frame(**self._pixels(av_frame), pts=pts, time_base=time_base, index=self.frames_decoded,
                            captured_at=time.monotonic())
                self.frames_decoded += 1
        self.reached_end = True

    def problems(self) -> str | None:
        """A one-line account of what could not be read, or None when the input was clean."""
        parts = []
        if self.decode_errors:
            parts.append(f"{self.decode_errors} undecodable packet(s) skipped")
        if self.is_network and self.reached_end and not self.reconnect:
            parts.append(f"the stream {self.spec} ended (sender stopped or network lost); "
                         "use --reconnect to wait for it")
        elif self.truncated:
            parts.append("the input ended early (truncated or corrupt)")
        declared = self.info.frames
        if declared and self.reached_end and self.span is None and self.frames_decoded < declared:
            # The container declared more frames than could be read: cut off or damaged.
            parts.append(f"{self.frames_decoded} of {declared} frames decoded "
                         "(the file looks truncated or damaged)")
        return "; ".join(parts) or None

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CameraSource:
    """A local camera through OpenCV, by index (`0`) or device path (`/dev/video2`).

    Size, rate and MJPG are requests: the driver picks the nearest mode it has, and `info`
    reports what was actually negotiated. MJPG matters because most USB cameras deliver only
    low rates for raw YUYV at 720p and above. Timestamps are the capture clock in milliseconds.
    """

    def __init__(self, device: int | str, *, width: int | None = None, height: int | None = None,
                 fps: float | None = None, mjpg: bool = True, reconnect: bool = False):
        self.device = device
        self.spec = str(device)
        self.request = (width, height, fps, mjpg)
        self.reconnect = reconnect
        self.output_size: tuple[int, int] | None = None
        self.frames_decoded = 0
        self.decode_errors = 0
        self.truncated = False
        self.reconnects = 0
        self.lost = False
        self.path = None
        self._capture = self._open()
        self.info = self._describe()

    def _open(self) -> cv2.VideoCapture:
        from .cameras import open_camera

        capture = open_camera(self.device)
        width, height, fps, mjpg = self.request
        if mjpg:
            capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
        if width:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if fps:
            capture.set(cv2.CAP_PROP_FPS, fps)
        return capture

    def _describe(self) -> VideoInfo:
        cap = self._capture
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC))
        codec = "".join(chr((fourcc >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00 ")
        if not width or not height:
            raise MediaError(f"camera {self.device} reports no picture size")
        return VideoInfo(width=width, height=height,
                         rate=Fraction(fps).limit_denominator(1001), time_base=CAMERA_TIME_BASE,
                         description=f"camera {self.device} {codec or '?'} {width}x{height} "
                                     f"@ {fps:.3g} fps")

    def set_output_size(self, width: int, height: int) -> None:
        self.output_size = (width, height)

    def set_frame_format(self, fmt: FrameFormat) -> None:
        """Cameras deliver RGB (OpenCV converts in its capture back-end); the pipeline converts
        to what the sink accepts on the device."""

    def _reopen(self, stop: threading.Event) -> bool:
        self._capture.release()
        for delay in reconnect_delays():
            if stop.wait(delay):
                return False
            try:
                self._capture = self._open()
                self.reconnects += 1
                log.warning("camera %s is back", self.device)
                return True
            except MediaError as exc:
                log.info("camera %s not back yet: %s", self.device, exc)
        return False

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        clock_start = time.monotonic()
        while not stop.is_set():
            ok, bgr = self._capture.read()
            captured_at = time.monotonic()
            if not ok:
                if self.reconnect and self._reopen(stop):
                    continue
                self.lost = not stop.is_set()
                return
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if self.output_size is not None and self.output_size != (rgb.shape[1], rgb.shape[0]):
                shrink = self.output_size[0] < rgb.shape[1]
                rgb = cv2.resize(rgb, self.output_size,
                                 interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
            pts = round((captured_at - clock_start) * 1000)
            yield Frame(rgb=rgb, pts=pts, time_base=CAMERA_TIME_BASE, index=self.frames_decoded,
                        captured_at=captured_at)
            self.frames_decoded += 1

    def problems(self) -> str | None:
        if self.lost:
            return f"camera {self.device} stopped delivering frames (unplugged?); " \
                   "use --reconnect to wait for it"
        return None

    def close(self) -> None:
        self._capture.release()

    def __enter__(self) -> CameraSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_source(spec: str | int, *, live: bool = False, reconnect: bool = False,
                capture_size: tuple[int, int] | None = None,
                capture_fps: float | None = None) -> FrameSource:
    """`0` or `/dev/videoN` -> camera; anything else (file, pattern, URL, `lavfi:`) -> PyAV.

    `capture_size`/`capture_fps` are requests to a camera; they do not apply to files.
    """
    text = str(spec)
    if isinstance(spec, int) or text.isdigit() or text.startswith("/dev/video"):
        device: int | str = int(text) if text.isdigit() else text
        width, height = capture_size if capture_size else (None, None)
        return CameraSource(device, width=width if width and width > 0 else None,
                            height=height if height and height > 0 else None,
                            fps=capture_fps, reconnect=reconnect)
    return FileSource(text, live=live, reconnect=reconnect)
