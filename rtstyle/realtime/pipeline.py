"""The frame pipeline: decode, stylize and write run at the same time in their own threads.

    source ─decode─▶ [inbox] ─stylize─▶ [outbox] ─write (main thread)─▶ sink

Both queues are bounded and share one policy, chosen by the mode:
`Backpressure` for files (a full queue blocks the producer, nothing is lost) and `LatestOnly`
for live sources (a one-slot mailbox that keeps only the newest frame, so a slow model shows
the present instead of a growing backlog). Writing happens in the main thread because preview
windows must draw there and Ctrl-C is delivered there.

The pipeline decides the frame format in one place: it asks the source for the pixels the sink
`accepts` (4:2:0 planes for an encoder, RGB otherwise) and converts the stylized frame to the
same on the device. It opens nothing, so it closes nothing: whoever opened the source and the
sink closes them (`with source, sink:`), which finalizes the file on every path, Ctrl-C included.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import torch

from .convert import DeviceUploader, frame_to_device, to_uint8, to_yuv420
from .sinks import FrameSink, StopRequested
from .sources import FrameSource

log = logging.getLogger(__name__)

END = object()
"""End of stream: the only item after the last frame."""

JOIN_TIMEOUT_S = 10.0


class Closed(Exception):  # noqa: N818 - a state, not a failure
    """The channel was closed because the pipeline is stopping."""


class Backpressure:
    """Bounded FIFO for files: `put` waits while the queue is full, so no frame is ever dropped."""

    def __init__(self, maxsize: int = 8):
        self.maxsize = maxsize
        self._items: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0
        self.max_depth = 0

    def put(self, item) -> None:
        with self._cond:
            while len(self._items) >= self.maxsize and not self._closed:
                self._cond.wait()
            if self._closed:
                raise Closed
            self._items.append(item)
            self.max_depth = max(self.max_depth, len(self._items))
            self._cond.notify_all()

    def get(self):
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait()
            if self._closed:
                raise Closed
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """Wake every waiter; later `put`/`get` raise `Closed`."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._items)


class LatestOnly(Backpressure):
    """One-slot mailbox for live sources: a new frame replaces a waiting one, counted as dropped.

    The producer never waits, so the camera is always read at its own rate and the consumer
    always gets the newest frame. The end-of-stream marker queues behind the last frame
    instead of replacing it, so a recording ends with the newest frame.
    """

    def __init__(self):
        super().__init__(maxsize=1)

    def put(self, item) -> None:
        with self._cond:
            if self._closed:
                raise Closed
            if self._items and item is not END:
                self._items.clear()
                self.dropped += 1
            self._items.append(item)
            if item is not END:
                self.max_depth = max(self.max_depth, len(self._items))
            self._cond.notify_all()


@dataclass
class PipelineStats:
    """Counters of one run; `latencies_ms` are capture→output times of written frames."""

    read: int = 0
    processed: int = 0
    dropped: int = 0
    written: int = 0
    started_at: float = field(default_factory=time.monotonic)
    first_written_at: float | None = None
    finished_at: float | None = None
    interrupted: bool = False
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def elapsed_s(self) -> float:
        return (self.finished_at or time.monotonic()) - self.started_at

    @property
    def fps(self) -> float:
        elapsed = self.elapsed_s
        return self.written / elapsed if elapsed > 0 else 0.0

    @property
    def first_frame_s(self) -> float | None:
        """Seconds from the start of the run to the first written frame."""
        if self.first_written_at is None:
            return None
        return self.first_written_at - self.started_at

    def latency_ms(self, q: float, last: int | None = None) -> float | None:
        """Latency percentile `q` (0..100) over all frames, or over the `last` N."""
        values = self.latencies_ms[-last:] if last else self.latencies_ms
        return float(np.percentile(values, q)) if values else None

    def as_dict(self) -> dict:
        p50, p99 = self.latency_ms(50), self.latency_ms(99)
        return {
            "frames_read": self.read, "frames_processed": self.processed,
            "frames_dropped": self.dropped, "frames_written": self.written,
            "seconds": round(self.elapsed_s, 3), "fps": round(self.fps, 2),
            "latency_ms_p50": None if p50 is None else round(p50, 1),
            "latency_ms_p99": None if p99 is None else round(p99, 1),
            "first_frame_s": None if self.first_frame_s is None else round(self.first_frame_s, 3),
            "interrupted": self.interrupted,
        }


Process = Callable[[torch.Tensor], torch.Tensor]


class Pipeline:
    """Runs source → stylize → sink until the source ends, a limit is hit or it is stopped.

    The source and the sink must be open; the pipeline tells the source the frame format the
    sink accepts, and calls `sink.end_of_input()` when the source was read to its end.
    `process` maps a 1×3×H×W float tensor in 0..1 to the same (an `InferenceEngine`).
    `smoother(stylized, source) -> stylized`, if given, runs right after it and is `reset()`
    at the start. `on_frame(stats)` is called in the main thread after each written frame.
    `max_frames` and `max_seconds` end the run as if the input had ended there.
    Frames before `write_from` (seconds) are stylized but not written: a pre-roll that brings
    the smoother to where a run over the whole input would have it (a part of a long file).
    `finish(frame, source) -> frame`, if given, runs last, after smoothing (the photoreal step
    and the mask, `rtstyle.realtime.finishing` says why there), and is `reset()` at the start.
    """

    def __init__(self, source: FrameSource, process: Process, sink: FrameSink, *,
                 device: torch.device,
                 live: bool = False, smoother=None, queue_size: int = 8, mirror: bool = False,
                 max_frames: int | None = None, max_seconds: float | None = None,
                 on_frame: Callable[[PipelineStats], None] | None = None,
                 write_from: Fraction | None = None, finish=None):
        self.source = source
        self.process = process
        self.sink = sink
        self.device = device
        self.live = live
        self.smoother = smoother
        self.mirror = mirror
        self.max_frames = max_frames
        self.max_seconds = max_seconds
        self.on_frame = on_frame
        self.write_from = write_from
        self.finish = finish
        self.sink_colorimetry = sink.accepts.yuv420
        source.set_frame_format(sink.accepts)
        self.uploader = DeviceUploader(device)
        self.inbox = LatestOnly() if live else Backpressure(queue_size)
        self.outbox = LatestOnly() if live else Backpressure(queue_size)
        self.stop_event = threading.Event()
        self.stats = PipelineStats()
        self._errors: list[BaseException] = []
        self.source_exhausted = False
        self._threads = [
            threading.Thread(target=self._guard, args=(self._read, None, self.inbox),
                             name="rtstyle-decode", daemon=True),
            threading.Thread(target=self._guard, args=(self._stylize, self.inbox, self.outbox),
                             name="rtstyle-stylize", daemon=True),
        ]

    def _guard(self, work: Callable[[], None], upstream, downstream) -> None:
        """Run a stage; on failure remember the exception and end the stream there.

        Upstream stages are stopped, while frames already past the failed stage still reach
        the sink, so the output keeps everything finished before the error.
        """
        try:
            work()
        except Closed:
            pass
        except BaseException as exc:  # re-raised in the main thread by `run`
            self._errors.append(exc)
            self.stop_event.set()
            if upstream is not None:
                upstream.close()
            try:
                downstream.put(END)
            except Closed:
                pass

    def _read(self) -> None:
        stats = self.stats
        deadline = None if self.max_seconds is None else stats.started_at + self.max_seconds
        for frame in self.source.frames(self.stop_event):
            if self.mirror:
                frame = frame.mirrored()
            self.inbox.put(frame)
            stats.read += 1
            if self.max_frames is not None and stats.read >= self.max_frames:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
        else:
            self.source_exhausted = not self.stop_event.is_set()
        self.inbox.put(END)

    @torch.inference_mode()
    def _stylize(self) -> None:
        while (frame := self.inbox.get()) is not END:
            x = frame_to_device(frame, self.device, upload=self.uploader.upload)
            y = self.process(x)
            if self.smoother is not None:
                y = self.smoother(y, x)
            if self.finish is not None:
                y = self.finish(y, x)
            if self.write_from is None or frame.pts * frame.time_base >= self.write_from:
                self.outbox.put(self._output(frame, y))
            self.stats.processed += 1
        self.outbox.put(END)

    def _output(self, frame, y: torch.Tensor):
        if self.sink_colorimetry is not None:
            return frame.with_yuv(to_yuv420(y, self.sink_colorimetry))
        return frame.with_pixels(to_uint8(y), keep_original=True)

    def _write(self) -> None:
        stats = self.stats
        while (frame := self.outbox.get()) is not END:
            self.sink.write(frame)
            stats.written += 1
            if stats.first_written_at is None:
                stats.first_written_at = time.monotonic()
            stats.latencies_ms.append((time.monotonic() - frame.captured_at) * 1000.0)
            stats.dropped = self.inbox.dropped + self.outbox.dropped
            if self.on_frame is not None:
                self.on_frame(stats)

    def stop(self) -> None:
        """Ask every stage to end now; blocked `put`/`get` calls return at once."""
        self.stop_event.set()
        self.inbox.close()
        self.outbox.close()

    def _join(self) -> None:
        for thread in self._threads:
            thread.join(JOIN_TIMEOUT_S)
            if thread.is_alive():
                log.warning("%s did not stop within %.0f s", thread.name, JOIN_TIMEOUT_S)

    def run(self) -> PipelineStats:
        """Run to the end, a limit, a stop request or an error (re-raised here); the threads
        are stopped and joined on every path, so the caller can close the source and sink."""
        if self.smoother is not None and hasattr(self.smoother, "reset"):
            self.smoother.reset()
        if self.finish is not None:
            self.finish.reset()
        self.stats = PipelineStats()
        try:
            for thread in self._threads:
                thread.start()
            try:
                self._write()
            except (Closed, StopRequested):
                pass
            except KeyboardInterrupt:
                self.stats.interrupted = True
                raise
        finally:
            self.stop()
            self._join()
            self.stats.dropped = self.inbox.dropped + self.outbox.dropped
            self.stats.finished_at = time.monotonic()
        if self._errors:
            raise self._errors[0]
        if self.source_exhausted:
            self.sink.end_of_input()
        return self.stats
