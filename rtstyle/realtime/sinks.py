"""Where stylized frames go: a file, a network stream, a virtual camera or a preview window.

Every sink is a `FrameSink`: it states once, in `accepts`, the pixels it takes (RGB, or 4:2:0
planes in its colorimetry, which the pipeline converts to on the device); `write(frame)` takes
them; `end_of_input()` says the input was read to its end (so a file gets the rest of the
audio); `close()` finalizes whatever was written (flushes the encoder, writes the trailer), so an
interrupted run still leaves a file that plays. Whoever opens a sink closes it (`with sink:`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import av
import numpy as np

from ..errors import (
    OutputExistsError,
    OutputUnavailableError,
    RtstyleError,
    Terminated,
    UserInputError,
)
from .controls import ViewState, apply_key
from .frames import RGB, Colorimetry, Frame, FrameFormat, VideoInfo
from .sources import SWS_MATRIX, url_scheme
from .yuv import tag, yuv420_to_av_frame

log = logging.getLogger(__name__)

STREAM_FORMATS = {"udp": "mpegts", "srt": "mpegts", "tcp": "mpegts", "rtp": "rtp_mpegts",
                  "rtmp": "flv", "rtmps": "flv"}
DEFAULT_CRF = 18
# veryfast, as OBS's default x264 preset: at 640×360, CRF 18, it took 3.6 ms of CPU per frame on
# the 2-core EPYC against 8–9.5 for medium (issue #12: a real-time budget of 33 ms holds the
# network too); at CRF 18 both look like the input. `--preset medium` (or slower) for archiving.
DEFAULT_PRESET = "veryfast"
X26X = ("libx264", "libx265")


class FrameSink(Protocol):
    """Where frames go; see the module docstring for the contract."""

    accepts: FrameFormat

    def write(self, frame: Frame) -> None: ...

    def end_of_input(self) -> None: ...

    def describe(self) -> str: ...

    def close(self) -> None: ...

    def __enter__(self) -> FrameSink: ...

    def __exit__(self, *exc) -> None: ...


class SinkLifetime:
    """`with sink:` closes it; `end_of_input` does nothing unless a sink cares (files do)."""

    def end_of_input(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class StopRequested(Exception):  # noqa: N818 - a request, not a failure
    """A sink asks the pipeline to stop (the preview window was closed or `q` was pressed)."""


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold back Ctrl-C and SIGTERM while a file is being finalized, then deliver them.

    A second Ctrl-C (or a `kill`) during the trailer write would otherwise leave a file without
    an index. Signals can only be handled in the main thread; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {s: signal.signal(s, lambda signum, _frame: received.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if signal.SIGTERM in received:
            raise Terminated
        if received:
            raise KeyboardInterrupt


def _video_stream(container, codec: str, info: VideoInfo, width: int, height: int,
                  options: dict[str, str], pix_fmt: str | None):
    try:
        stream = container.add_stream(codec, rate=info.rate)
    except (av.error.FFmpegError, ValueError) as exc:
        raise UserInputError(f"cannot encode with codec '{codec}': {exc}") from None
    formats = [f.name for f in (stream.codec_context.codec.video_formats or [])]
    if pix_fmt is None:
        pix_fmt = "yuv420p" if "yuv420p" in formats or not formats else formats[0]
    if pix_fmt.startswith(("yuv420", "yuv422", "nv12")) and (width % 2 or height % 2):
        raise UserInputError(f"{codec} with {pix_fmt} needs even sides, got {width}x{height}")
    stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
    # Keep the input's clock: pts are copied, so variable frame rate survives the round trip.
    stream.time_base = info.time_base
    stream.codec_context.time_base = info.time_base
    stream.codec_context.options = options
    if info.rotation:
        stream.set_display_rotation(info.rotation)
    if pix_fmt.startswith("yuv"):
        tag(stream.codec_context, output_colorimetry(info, width, height))
    return stream


def output_colorimetry(info: VideoInfo, width: int, height: int) -> Colorimetry:
    """The input's colorimetry when known (so colours and tags survive), else BT.709 for HD and
    BT.601 below, limited range, as players assume for untagged video."""
    if info.colorimetry is not None:
        return info.colorimetry
    return Colorimetry("bt709" if width >= 1280 or height >= 720 else "bt601")


def encoder_format(stream, colorimetry: Colorimetry) -> FrameFormat:
    """What an encoder stream accepts: its own 4:2:0 planes (converted on the device), else RGB
    for swscale to convert (4:4:4, 10-bit, RGB codecs)."""
    return FrameFormat(yuv420=colorimetry) if stream.pix_fmt == "yuv420p" else RGB


def encoder_picture(frame: Frame, stream, colorimetry: Colorimetry) -> av.VideoFrame:
    """A `Frame` in the format the stream accepts as the encoder's picture: planes go in as they
    are; RGB is converted by swscale with the stream's matrix and range, not its default."""
    if frame.yuv is not None:
        return yuv420_to_av_frame(frame.yuv)
    picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame.rgb), format="rgb24")
    if stream.pix_fmt.startswith("yuv"):
        picture = picture.reformat(format=stream.pix_fmt,
                                   dst_colorspace=SWS_MATRIX[colorimetry.matrix],
                                   dst_color_range="JPEG" if colorimetry.full_range else "MPEG")
        tag(picture, colorimetry)
    return picture


class AudioRemuxer:
    """Carries the input's audio into the output without going through the generator.

    Packets are copied (PyAV `examples/basics/remux.py`) when the output container accepts the
    codec, and re-encoded (AAC, or the container's own default) otherwise. They are fed in step
    with the video so the muxer can interleave, and stop where the video stopped when a run is
    cut short, so audio and video end together.
    """

    def __init__(self, source: Path, output) -> None:
        self.input = av.open(str(source))
        self.in_stream = self.input.streams.audio[0]
        codec = self.in_stream.codec_context.name
        self.copy = codec in output.supported_codecs
        if self.copy:
            self.out_stream = output.add_stream_from_template(self.in_stream)
        else:
            target = "aac" if "aac" in output.supported_codecs else output.default_audio_codec
            ctx = self.in_stream.codec_context
            rates = av.Codec(target, "w").audio_rates  # e.g. Opus: 48000 and a few lower
            rate = ctx.sample_rate if not rates or ctx.sample_rate in rates else max(rates)
            self.out_stream = output.add_stream(target, rate=rate)
            self.out_stream.layout = ctx.layout
            log.info("audio: re-encoding %s to %s for this container", codec, target)
        self.output = output
        self._packets = self.input.demux(self.in_stream)
        self._pending = None
        self.finished = False
        self.packets = 0

    def _next_packet(self):
        if self._pending is None and not self.finished:
            try:
                self._pending = next(self._packets)
            except StopIteration:
                self.finished = True
            except av.error.FFmpegError as exc:
                log.warning("audio stops early: %s", exc)
                self.finished = True
        return self._pending

    def copy_until(self, seconds: float | None) -> None:
        """Mux every audio packet that starts before `seconds` (all of them for None)."""
        while (packet := self._next_packet()) is not None:
            if packet.pts is not None and seconds is not None and \
                    float(packet.pts * packet.time_base) >= seconds:
                return
            self._pending = None
            if packet.dts is None and packet.size == 0:  # demuxer flush packet
                continue
            self._mux(packet)

    def _mux(self, packet) -> None:
        if self.copy:
            packet.stream = self.out_stream
            self.output.mux(packet)
        else:
            try:
                for frame in packet.decode():
                    frame.pts = None  # the encoder keeps its own sample clock
                    self.output.mux(self.out_stream.encode(frame))
            except av.error.FFmpegError as exc:
                log.debug("skipping an undecodable audio packet: %s", exc)
                return
        self.packets += 1

    def close(self) -> None:
        try:
            if not self.copy and self.packets:
                self.output.mux(self.out_stream.encode(None))
        finally:
            self.input.close()


def check_output(target: Path, overwrite: bool) -> None:
    """Refuse to replace a file unasked, or to write into a folder that is not there."""
    if target.is_dir():
        raise UserInputError(f"output {target} is a folder; give a file name")
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target} exists; pass --overwrite to replace it")
    if not target.parent.is_dir():
        raise UserInputError(f"output folder {target.parent} does not exist")


class FileSink(SinkLifetime):
    """Encodes frames into a file with PyAV, keeping timestamps, rotation and audio.

    The file is written beside the target under a hidden temporary name and renamed when it is
    complete, so the target is either absent, the old file, or a finished video; never half of
    one. Default codec: H.264 (libx264, yuv420p, CRF 18), which every player and editor reads.
    `exact_timestamps` writes them as they come, B-frame decode times before 0 included, where
    FFmpeg would otherwise shift a whole stream to start at 0 (for a part joined later).
    """

    def __init__(self, target: str | Path, info: VideoInfo, *, width: int | None = None,
                 height: int | None = None, codec: str | None = None, crf: int | None = None,
                 preset: str | None = None, pix_fmt: str | None = None,
                 audio_from: Path | None = None, overwrite: bool = False,
                 exact_timestamps: bool = False):
        self.target = Path(target).expanduser()
        check_output(self.target, overwrite)
        self.width, self.height = width or info.width, height or info.height
        self.temp = self.target.with_name(f".{self.target.stem}.partial{self.target.suffix}")
        try:
            self.container = av.open(str(self.temp), "w", container_options={
                "avoid_negative_ts": "disabled"} if exact_timestamps else None)
        except (ValueError, av.error.FFmpegError) as exc:
            self.temp.unlink(missing_ok=True)
            raise UserInputError(f"cannot write a video named {self.target.name}: {exc} "
                                 "(use a suffix like .mp4, .mkv, .mov or .webm)") from None
        self.written = 0
        self.retimed = 0
        self._last_pts: int | None = None
        self._end_seconds = 0.0
        self._input_ended = False
        self._closed = False
        try:
            codec = codec or ("libx264" if "libx264" in self.container.supported_codecs
                              else self.container.default_video_codec)
            options = {}
            if codec in X26X:
                options = {"crf": str(DEFAULT_CRF if crf is None else crf),
                           "preset": preset or DEFAULT_PRESET}
            elif crf is not None:
                options["crf"] = str(crf)
            self.stream = _video_stream(self.container, codec, info, self.width, self.height,
                                        options, pix_fmt)
            self.colorimetry = output_colorimetry(info, self.width, self.height)
            self.accepts = encoder_format(self.stream, self.colorimetry)
            self.audio = AudioRemuxer(audio_from, self.container) \
                if audio_from is not None and info.has_audio else None
        except BaseException:
            self.container.close()
            self.temp.unlink(missing_ok=True)
            raise

    def write(self, frame: Frame) -> None:
        try:
            self._encode(frame)
        except av.error.FFmpegError as exc:
            raise RtstyleError(f"encoding {self.target.name} failed: {exc}") from exc

    def _encode(self, frame: Frame) -> None:
        pts = frame.pts
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1  # encoders refuse repeated timestamps; shift by one tick
            self.retimed += 1
        self._last_pts = pts
        seconds = float(pts * frame.time_base)
        if self.audio is not None:
            self.audio.copy_until(seconds)
        picture = encoder_picture(frame, self.stream, self.colorimetry)
        picture.pts, picture.time_base = pts, frame.time_base
        self.container.mux(self.stream.encode(picture))
        self.written += 1
        self._end_seconds = seconds

    def end_of_input(self) -> None:
        """The input was read to its end: the audio after the last frame belongs in the file.
        Without this (Ctrl-C, `--max-frames`) the audio stops where the video stops."""
        self._input_ended = True

    def close(self) -> None:
        """Finalize: flush, add the remaining audio, write the trailer, rename into place.

        With no frame written there is nothing worth keeping, and no output is left behind.
        """
        if self._closed:
            return
        self._closed = True
        with interrupts_deferred():
            try:
                if self.written:
                    self.container.mux(self.stream.encode(None))
                    if self.audio is not None:
                        frame_s = 1.0 / float(self.stream.codec_context.framerate or 25)
                        self.audio.copy_until(None if self._input_ended else self._end_seconds + frame_s)
                if self.audio is not None:
                    self.audio.close()
                self.container.close()
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    self.container.close()
                self.temp.unlink(missing_ok=True)
                if isinstance(exc, av.error.FFmpegError):
                    raise RtstyleError(f"finishing {self.target.name} failed: {exc}") from exc
                raise
            if self.written:
                os.replace(self.temp, self.target)
            else:
                self.temp.unlink(missing_ok=True)

    def describe(self) -> str:
        return str(self.target)


class StreamSink(SinkLifetime):
    """Encodes to a live network stream: MPEG-TS over udp/srt/tcp, FLV to rtmp.

    OBS reads it as a Media Source on any OS. x264 runs with `zerolatency` and a keyframe every
    second so a viewer that joins late shows a picture within a second.
    """

    def __init__(self, url: str, info: VideoInfo, *, width: int | None = None,
                 height: int | None = None, codec: str = "libx264", preset: str = "veryfast",
                 bitrate: int | None = None):
        scheme = url_scheme(url)
        if scheme not in STREAM_FORMATS:
            raise UserInputError(f"unsupported stream URL {url}; use udp://, srt://, tcp:// "
                                 "or rtmp://")
        self.url = url
        self.width, self.height = width or info.width, height or info.height
        try:
            self.container = av.open(url, "w", format=STREAM_FORMATS[scheme])
        except (av.error.FFmpegError, OSError) as exc:
            raise UserInputError(f"cannot open the stream {url}: {exc}") from None
        gop = max(1, round(float(info.rate)))
        options = {"preset": preset, "tune": "zerolatency", "g": str(gop), "bf": "0"} \
            if codec in X26X else {"g": str(gop)}
        self.stream = _video_stream(self.container, codec, info, self.width, self.height,
                                    options, None)
        if bitrate:
            self.stream.codec_context.bit_rate = bitrate
        self.colorimetry = output_colorimetry(info, self.width, self.height)
        self.accepts = encoder_format(self.stream, self.colorimetry)
        self.written = 0
        self._last_pts: int | None = None

    def write(self, frame: Frame) -> None:
        pts = frame.pts if self._last_pts is None or frame.pts > self._last_pts \
            else self._last_pts + 1
        self._last_pts = pts
        picture = encoder_picture(frame, self.stream, self.colorimetry)
        picture.pts, picture.time_base = pts, frame.time_base
        self.container.mux(self.stream.encode(picture))
        self.written += 1

    def close(self) -> None:
        with interrupts_deferred():
            if self.written:
                self.container.mux(self.stream.encode(None))
            self.container.close()

    def describe(self) -> str:
        return self.url


VCAM_HELP = {
    "linux": "install v4l2loopback (sudo apt install v4l2loopback-dkms; "
             "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=rtstyle)",
    "win32": "install OBS Studio 26+ and click 'Start Virtual Camera' once (then stop it)",
    "darwin": "install OBS Studio 30+ and start its virtual camera once to install the plugin",
}


class VirtualCameraSink(SinkLifetime):
    """Sends frames to a virtual camera (pyvirtualcam) that Zoom, Meet or OBS can pick.

    Backends: OBS Virtual Camera on Windows and macOS, v4l2loopback on Linux. Frames go out at
    the pipeline's pace; pyvirtualcam's own sleep would only add latency.
    """

    def __init__(self, width: int, height: int, fps: float, *, backend: str | None = None,
                 device: str | None = None):
        try:
            import pyvirtualcam
        except ImportError:
            raise OutputUnavailableError(
                "the virtual camera needs pyvirtualcam: pip install 'rtstyle[vcam]'") from None
        try:
            self.camera = pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.RGB,
                                              backend=backend, device=device)
        except (RuntimeError, KeyError) as exc:
            hint = VCAM_HELP.get(sys.platform, VCAM_HELP["linux"])
            detail = str(exc).strip().replace("\n", "; ") or type(exc).__name__
            raise OutputUnavailableError(
                f"no virtual camera is available ({detail}); {hint}, or stream to OBS "
                "instead with --output udp://127.0.0.1:9999") from None
        self.width, self.height = width, height
        self.accepts = RGB
        self.written = 0

    def write(self, frame: Frame) -> None:
        self.camera.send(np.ascontiguousarray(frame.rgb))
        self.written += 1

    def close(self) -> None:
        self.camera.close()

    def describe(self) -> str:
        return f"virtual camera {self.camera.device} ({self.camera.backend})"


def display_problem() -> str | None:
    """Why no window can open here, or None. Checked first because Qt aborts the process."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY and WAYLAND_DISPLAY are unset)"
    return None


class PreviewSink(SinkLifetime):
    """An OpenCV window showing the stylized video, driven by single keys (see `controls`).

    Runs in the main thread, where every OS lets a GUI toolkit draw. `on_change` receives the
    new `ViewState` after a key changes style, strength or colour preservation, so the caller
    can switch models.
    The window opens with the first frame.
    """

    WINDOW = "rtstyle"

    def __init__(self, state: ViewState, *, on_change: Callable[[ViewState], None] | None = None,
                 snapshot_dir: Path | None = None, title: str = WINDOW):
        problem = display_problem()
        if problem is not None:
            raise OutputUnavailableError(
                f"cannot open a preview window: {problem}; use --output vcam, "
                "--output udp://127.0.0.1:9999 or --output FILE instead")
        import cv2

        self.cv2 = cv2
        self.state = state
        self.on_change = on_change
        self.snapshot_dir = snapshot_dir or Path.cwd()
        self.title = title
        self.accepts = RGB
        self.written = 0
        self.snapshots: list[Path] = []
        self._shown: np.ndarray | None = None
        self._window_open = False

    def _open_window(self) -> None:
        cv2 = self.cv2
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise OutputUnavailableError(
                f"cannot open a preview window ({str(exc).strip()}); this OpenCV may be the "
                "headless build; use --output vcam, --output udp://… or --output FILE") from None
        self._window_open = True

    def compose(self, frame: Frame) -> np.ndarray:
        """What the window shows: the stylized frame, or original | stylized side by side."""
        if self.state.side_by_side and frame.original is not None \
                and frame.original.shape == frame.rgb.shape:
            return np.hstack([frame.original, frame.rgb])
        return frame.rgb

    def write(self, frame: Frame) -> None:
        cv2 = self.cv2
        if not self._window_open:
            self._open_window()
        if not self.state.paused:
            self._shown = self.compose(frame)
            cv2.imshow(self.title, cv2.cvtColor(self._shown, cv2.COLOR_RGB2BGR))
        self.written += 1
        key = cv2.waitKey(1)
        visible = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE)
        if visible < 1:
            raise StopRequested
        self.handle_key(key)

    def handle_key(self, key: int) -> None:
        new = apply_key(self.state, key)
        if new.snapshot_pending:
            self._save_snapshot()
            new = new.consumed_snapshot()
        watched = ("style_index", "strength", "preserve_color")
        changed = any(getattr(new, k) != getattr(self.state, k) for k in watched)
        self.state = new
        if changed and self.on_change is not None:
            self.on_change(new)
        if new.quit:
            raise StopRequested

    def _save_snapshot(self) -> None:
        from ..images import write_image

        shown = self._shown
        if shown is None:
            return
        number = len(self.snapshots) + 1
        while (path := self.snapshot_dir / f"rtstyle_snapshot_{number:03d}.png").exists():
            number += 1
        write_image(path, shown)
        self.snapshots.append(path)
        log.info("snapshot saved to %s", path)

    def close(self) -> None:
        if self._window_open:
            self.cv2.destroyWindow(self.title)
            self.cv2.waitKey(1)

    def describe(self) -> str:
        return "preview window"



def is_stream_url(output: str) -> bool:
    return url_scheme(output) in STREAM_FORMATS

