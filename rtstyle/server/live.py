"""The live camera in the browser: JPEG frames over a WebSocket, through `LiveRun`, and back.

The browser's frames become a `FrameSource` and the socket back to it a `FrameSink`, so a
web session runs the same live pipeline as `rtstyle webcam`: decode, stylize and send each in
its own thread, and only the newest frame waits at each step. When the model is slower than
the camera, frames are dropped (and counted), never queued: the socket is read as fast as it
delivers, into a one-slot mailbox, and the pipeline's own queues keep only the newest frame.

Protocol on `/api/live?style=NAME[&strength=0..1][&smooth=0..1]`:

- browser → server, binary: 8 bytes little-endian float64 (the browser's clock, ms) + JPEG.
- browser → server, text: `{"type": "style", "style": NAME}` switches style without
  reconnecting; `{"type": "strength", "value": 0..1}` changes strength;
  `{"type": "preserve_color", "value": "off"|"luminance"|"histogram"}` keeps the camera's
  colours (as `--preserve-color` and the preview's `c` key).
- server → browser, binary: the same 8-byte clock reading of the frame it was painted from +
  JPEG, so the browser measures the round trip per frame.
- server → browser, text: `{"type": "ready"|"status"|"style"|"stats"|"error", ...}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import struct
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction

import anyio
import cv2
import numpy as np
from fastapi import HTTPException, WebSocket
from PIL import Image, UnidentifiedImageError

from ..errors import RtstyleError, UserInputError
from ..models.color import check_color_mode
from ..realtime.frames import RGB, Frame, FrameFormat, VideoInfo
from ..realtime.runs import Geometry, LiveRun, StyleSettings
from ..realtime.sinks import StopRequested
from .catalog import StyleCatalog
from .config import ServerConfig
from .gate import GatedProcess

log = logging.getLogger(__name__)

HEADER = struct.Struct("<d")
TIME_BASE = Fraction(1, 1_000_000)  # microseconds of the browser's clock
JPEG_QUALITY = 80
STATS_EVERY_S = 1.0
SEND_TIMEOUT_S = 10.0
CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_TRY_LATER, CLOSE_ERROR = 1008, 1009, 1013, 1011


class FrameMailbox:
    """One slot: a frame from the browser replaces one still waiting (counted in `dropped`)."""

    def __init__(self):
        self._item = None
        self._closed = False
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, item) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify_all()

    def get(self, stop: threading.Event):
        """The newest item, or None once closed or stopped. The wait wakes every 0.2 s to
        look at `stop`: the pipeline stops its stages by that event, which a condition
        cannot wait on together with its own signal."""
        with self._cond:
            while self._item is None and not self._closed and not stop.is_set():
                self._cond.wait(0.2)
            item, self._item = self._item, None
            return None if self._closed or stop.is_set() else item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the picture's header, without decoding it."""
    with Image.open(io.BytesIO(data)) as img:
        return img.size


class BrowserFrameSource:
    """Frames a browser sends, decoded in the pipeline's decode thread.

    The size is the first frame's; later frames of another size (the browser switched
    camera) are scaled to it. A frame that does not decode is skipped and counted.
    """

    spec = "browser camera"

    def __init__(self, width: int, height: int, mailbox: FrameMailbox):
        self.mailbox = mailbox
        self.info = VideoInfo(width=width, height=height, rate=Fraction(30),
                              time_base=TIME_BASE,
                              description=f"browser camera {width}x{height} JPEG")
        self.output_size = (width, height)
        self.decode_errors = 0
        self.frames_decoded = 0

    def set_output_size(self, width: int, height: int) -> None:
        self.output_size = (width, height)

    def set_frame_format(self, fmt: FrameFormat) -> None:
        """Browser frames are RGB after decoding; the pipeline converts on the device."""

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        last_pts = None
        while (item := self.mailbox.get(stop)) is not None:
            client_ms, data, received_at = item
            try:
                with Image.open(io.BytesIO(data)) as img:
                    rgb = np.array(img.convert("RGB"))  # writable, as torch wants
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
                self.decode_errors += 1
                continue
            if (rgb.shape[1], rgb.shape[0]) != self.output_size:
                shrink = self.output_size[0] < rgb.shape[1]
                rgb = cv2.resize(rgb, self.output_size,
                                 interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
            pts = round(client_ms * 1000)
            if last_pts is not None and pts <= last_pts:
                pts = last_pts + 1
            last_pts = pts
            yield Frame(rgb=np.ascontiguousarray(rgb), pts=pts, time_base=TIME_BASE,
                        index=self.frames_decoded, captured_at=received_at)
            self.frames_decoded += 1

    def problems(self) -> str | None:
        if self.decode_errors:
            return f"{self.decode_errors} frame(s) from the browser could not be decoded"
        return None

    def close(self) -> None:
        self.mailbox.close()

    def __enter__(self) -> BrowserFrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class WebSocketSink:
    """Sends each stylized frame back as JPEG, tagged with the clock reading it came with.

    `send` blocks until the bytes are handed to the socket, so a slow connection holds the
    write stage and the pipeline drops older frames rather than queueing them.
    """

    accepts = RGB

    def __init__(self, send: Callable[[bytes], None]):
        self.send = send
        self.written = 0

    def write(self, frame: Frame) -> None:
        buffer = io.BytesIO()
        buffer.write(HEADER.pack(frame.pts * float(frame.time_base) * 1000.0))
        Image.fromarray(frame.rgb).save(buffer, format="JPEG", quality=JPEG_QUALITY)
        self.send(buffer.getvalue())
        self.written += 1

    def end_of_input(self) -> None:
        pass

    def describe(self) -> str:
        return "browser (WebSocket)"

    def close(self) -> None:
        pass

    def __enter__(self) -> WebSocketSink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LiveSession:
    """One browser's live stream: the socket's reader runs in the event loop, the `LiveRun`
    in its own thread; they meet in the mailbox (frames in) and `send` (frames out)."""

    def __init__(self, ws: WebSocket, *, config: ServerConfig, catalog: StyleCatalog,
                 gate: threading.Lock, style: str, strength: float, smooth: float | None):
        self.ws = ws
        self.config = config
        self.catalog = catalog
        self.gate = gate
        first = catalog.resolve(style, live=True)
        # Every tag the socket may switch to; the run loads each on first use.
        others = [s.full_name for s in catalog.registry.specs()
                  if not s.needs_style_image and s.full_name != first.full_name]
        self.names = [first.full_name, *others]
        self.strength = strength
        self.preserve_color: str | None = None
        self.smooth = smooth
        self.mailbox = FrameMailbox()
        self.cycler = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closed = False
        self._tasks: set[asyncio.Task] = set()
        self._stats = {"at": time.monotonic(), "written": 0}

    def _send_now(self, coro) -> None:
        """Run a send on the event loop from the run's thread; a closed socket stops the run."""
        if self.closed:
            coro.close()
            raise StopRequested
        try:
            asyncio.run_coroutine_threadsafe(coro, self.loop).result(SEND_TIMEOUT_S)
        except Exception as exc:
            self.closed = True
            raise StopRequested from exc

    def _send_bytes(self, data: bytes) -> None:
        self._send_now(self.ws.send_bytes(data))

    def _send_json(self, message: dict) -> None:
        with contextlib.suppress(StopRequested):
            self._send_now(self.ws.send_text(json.dumps(message)))

    def _on_status(self, text: str) -> None:
        self._send_json({"type": "status", "message": text})

    def _on_frame(self, stats) -> None:
        now = time.monotonic()
        window = now - self._stats["at"]
        if window < STATS_EVERY_S:
            return
        recent = stats.latencies_ms[-30:]
        self._send_json({
            "type": "stats",
            "fps": round((stats.written - self._stats["written"]) / window, 2),
            "written": stats.written, "dropped": stats.dropped + self.mailbox.dropped,
            "server_ms": round(float(np.median(recent)), 1) if recent else None,
        })
        self._stats = {"at": now, "written": stats.written}
        del stats.latencies_ms[:-30]  # a session may run for hours

    def _run(self, source: BrowserFrameSource) -> None:
        settings = StyleSettings(
            styles=tuple(self.names), strength=self.strength, device=self.config.device,
            backend=self.config.backend, precision=self.config.precision,
            **({} if self.smooth is None else {"smooth": self.smooth}))
        try:
            with LiveRun(source, WebSocketSink(self._send_bytes), settings,
                         geometry=Geometry(max_side=self.config.live_max_side),
                         on_status=self._on_status) as run:
                self.cycler = run.process
                run.process = GatedProcess(run.process, self.gate)
                self._on_status(f"warming up {self.names[0]} at {run.size[0]}x{run.size[1]}")
                with self.gate:
                    backend = run.warm_up()
                self._send_json({"type": "ready", "style": self.cycler.name,
                                 "size": list(run.size), "backend": backend,
                                 "device": str(run.device)})
                self.cycler.strength = self.strength
                self.cycler.preserve_color = self.preserve_color
                run.run(on_frame=self._on_frame)
        except StopRequested:
            pass
        except RtstyleError as exc:
            self._send_json({"type": "error", "message": str(exc)})
        except Exception as exc:
            log.exception("live session failed")
            self._send_json({"type": "error", "message": f"internal error: {exc}"})
        finally:
            self.mailbox.close()

    def _select(self, name: str) -> str:
        self.cycler.select(self.names.index(name))
        return self.cycler.name

    async def _switch_style(self, name: str) -> None:
        try:
            spec = self.catalog.resolve(name, live=True)
        except HTTPException as exc:
            await self._safe_send({"type": "error", "message": exc.detail, "fatal": False})
            return
        if self.cycler is None:
            self.names.remove(spec.full_name)
            self.names.insert(0, spec.full_name)
            await self._safe_send({"type": "style", "style": spec.full_name})
            return
        await self._safe_send({"type": "status", "message": f"loading {spec.full_name}"})
        try:
            chosen = await anyio.to_thread.run_sync(self._select, spec.full_name)
        except RtstyleError as exc:
            await self._safe_send({"type": "error", "message": str(exc), "fatal": False})
            return
        await self._safe_send({"type": "style", "style": chosen})

    async def _safe_send(self, message: dict) -> None:
        with contextlib.suppress(Exception):
            await self.ws.send_text(json.dumps(message))

    async def _control(self, text: str) -> None:
        try:
            message = json.loads(text)
            kind = message.get("type")
        except (ValueError, AttributeError):
            await self._safe_send({"type": "error", "message": "control messages are JSON "
                                   "objects with a 'type'", "fatal": False})
            return
        if kind == "style":
            task = asyncio.create_task(self._switch_style(str(message.get("style", ""))))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif kind == "strength":
            try:
                value = float(message.get("value"))
            except (TypeError, ValueError):
                value = -1.0
            if not 0.0 <= value <= 1.0:  # NaN fails this too
                await self._safe_send({"type": "error", "message": "strength must be 0..1",
                                       "fatal": False})
                return
            self.strength = value
            if self.cycler is not None:
                self.cycler.strength = value
        elif kind == "preserve_color":
            try:
                mode = check_color_mode(message.get("value"))
            except UserInputError as exc:
                await self._safe_send({"type": "error", "message": str(exc), "fatal": False})
                return
            self.preserve_color = mode
            if self.cycler is not None:
                self.cycler.preserve_color = mode
        else:
            await self._safe_send({"type": "error", "message": f"unknown control {kind!r}; "
                                   "use 'style', 'strength' or 'preserve_color'",
                                   "fatal": False})

    async def _refuse(self, code: int, message: str) -> None:
        await self._safe_send({"type": "error", "message": message})
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, reason=message[:120])

    async def serve(self) -> None:
        """Read the socket until the browser goes; the run ends when its frames do."""
        self.loop = asyncio.get_running_loop()
        thread: threading.Thread | None = None
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("text") is not None:
                    await self._control(message["text"])
                    continue
                data = message.get("bytes") or b""
                if len(data) <= HEADER.size:
                    await self._safe_send({"type": "error", "fatal": False, "message":
                                           "a frame is 8 bytes of clock + a JPEG"})
                    continue
                (client_ms,) = HEADER.unpack_from(data)
                jpeg = data[HEADER.size:]
                if thread is None:
                    try:
                        width, height = jpeg_size(jpeg)
                    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
                        await self._refuse(CLOSE_POLICY, "the first frame is not a JPEG")
                        break
                    if width * height > self.config.max_pixels:
                        await self._refuse(CLOSE_TOO_BIG, f"frames of {width}x{height} are over "
                                           "the pixel limit (rtstyle serve --max-pixels)")
                        break
                    source = BrowserFrameSource(width, height, self.mailbox)
                    thread = threading.Thread(target=self._run, args=(source,),
                                              name="rtstyle-live", daemon=True)
                    thread.start()
                elif not thread.is_alive():  # the run ended (an error was sent)
                    with contextlib.suppress(Exception):
                        await self.ws.close(code=CLOSE_ERROR)
                    break
                self.mailbox.put((client_ms, jpeg, time.monotonic()))
        finally:
            self.closed = True
            self.mailbox.close()
            for task in list(self._tasks):
                task.cancel()
            if thread is not None:
                await anyio.to_thread.run_sync(thread.join)
