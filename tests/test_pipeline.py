"""Queues, threads and stop paths of the pipeline: no loss in files, latest-frame when live."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from video_helpers import probe

from rtstyle.realtime.frames import RGB
from rtstyle.realtime.pipeline import END, Backpressure, Closed, LatestOnly, Pipeline
from rtstyle.realtime.sinks import FileSink, StopRequested
from rtstyle.realtime.sources import FileSource

CPU = torch.device("cpu")


class RecordingSink:
    """Keeps written frames in memory; optionally raises on the Nth write."""

    accepts = RGB

    def __init__(self, raise_on: int | None = None, exc: type[BaseException] = StopRequested):
        self.frames = []
        self.input_ended = False
        self.closed = False
        self.raise_on = raise_on
        self.exc = exc

    def write(self, frame):
        if self.raise_on is not None and len(self.frames) == self.raise_on:
            raise self.exc
        self.frames.append(frame)

    def end_of_input(self):
        self.input_ended = True

    def close(self):
        self.closed = True


class CountingSmoother:
    def __init__(self):
        self.calls = 0
        self.resets = 0

    def __call__(self, stylized, source):
        self.calls += 1
        assert stylized.shape == source.shape
        return stylized

    def reset(self):
        self.resets += 1


def invert(x):
    return 1.0 - x


def lavfi(frames: int, rate: int = 25, size: str = "32x24", live: bool = False) -> FileSource:
    return FileSource(f"lavfi:testsrc=size={size}:rate={rate}:duration={frames / rate}",
                      live=live)


def test_backpressure_blocks_instead_of_dropping():
    channel = Backpressure(maxsize=2)
    received = []

    def consume():
        while (item := channel.get()) is not END:
            time.sleep(0.001)
            received.append(item)

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(100):
        channel.put(i)
    channel.put(END)
    consumer.join(5)
    assert received == list(range(100))
    assert channel.dropped == 0 and channel.max_depth <= 2


def test_latest_only_keeps_the_newest_and_counts_the_rest():
    mailbox = LatestOnly()
    for i in range(5):
        mailbox.put(i)
    assert mailbox.get() == 4
    assert mailbox.dropped == 4 and mailbox.max_depth == 1 and len(mailbox) == 0


def test_end_of_stream_queues_behind_the_last_frame():
    mailbox = LatestOnly()
    mailbox.put("old")
    mailbox.put("newest")
    mailbox.put(END)
    assert mailbox.get() == "newest" and mailbox.get() is END
    assert mailbox.dropped == 1 and mailbox.max_depth == 1


def test_close_wakes_blocked_waiters():
    channel = Backpressure(maxsize=1)
    outcome = []

    def wait_for_item():
        try:
            channel.get()
        except Closed:
            outcome.append("closed")

    waiter = threading.Thread(target=wait_for_item)
    waiter.start()
    time.sleep(0.05)
    channel.close()
    waiter.join(2)
    assert outcome == ["closed"]
    with pytest.raises(Closed):
        channel.put(1)


def test_file_mode_keeps_every_frame_in_order(tmp_path):
    smoother = CountingSmoother()
    with lavfi(40, size="66x40") as source, FileSink(tmp_path / "out.mp4", source.info) as sink:
        stats = Pipeline(source, invert, sink, device=CPU, smoother=smoother, queue_size=2).run()
    assert (stats.read, stats.processed, stats.written, stats.dropped) == (40, 40, 40, 0)
    assert smoother.calls == 40 and smoother.resets == 1
    result = probe(tmp_path / "out.mp4")
    assert result.frames == 40
    assert [float(p * result.time_base) for p in result.pts] == pytest.approx(
        [i / 25 for i in range(40)])


def test_live_mode_with_a_slow_model_drops_stale_frames_and_bounds_latency():
    """50 fps in, ~16 fps of model: frames are dropped, never queued, so latency stays flat."""
    source = lavfi(75, rate=50, live=True)
    sink = RecordingSink(raise_on=None)

    def slow(x):
        time.sleep(0.06)
        return x

    pipeline = Pipeline(source, slow, sink, device=CPU, live=True)
    stats = pipeline.run()
    assert stats.read == 75
    assert stats.dropped > 20 and stats.written < 40
    assert stats.read == stats.written + stats.dropped
    assert pipeline.inbox.max_depth == 1 and pipeline.outbox.max_depth == 1
    # A queue of everything would reach ~1 s of backlog by the end; latest-only stays near
    # one model call plus at most one frame of waiting.
    assert stats.latency_ms(99) < 400
    indices = [f.index for f in sink.frames]
    assert indices == sorted(indices) and indices[-1] == 74  # the newest frame ends the run


def test_the_pipeline_closes_nothing_it_did_not_open():
    source, sink = lavfi(5), RecordingSink()
    stats = Pipeline(source, invert, sink, device=CPU).run()
    assert stats.written == 5 and sink.input_ended and not sink.closed
    source.close()


def test_worker_exception_is_raised_in_the_caller_and_the_input_is_not_marked_ended():
    source = lavfi(20)
    sink = RecordingSink()
    calls = []

    def failing(x):
        calls.append(1)
        if len(calls) == 5:
            raise ValueError("model blew up")
        return x

    with pytest.raises(ValueError, match="blew up"):
        Pipeline(source, failing, sink, device=CPU).run()
    assert len(sink.frames) == 4 and not sink.input_ended and not sink.closed


def test_sink_can_stop_the_run():
    sink = RecordingSink(raise_on=3)
    pipeline = Pipeline(lavfi(50), invert, sink, device=CPU, queue_size=2)
    stats = pipeline.run()
    assert stats.written == 3 and not sink.input_ended
    assert not any(t.is_alive() for t in pipeline._threads)


def test_ctrl_c_in_the_main_thread_finalizes_and_reraises(tmp_path):
    """KeyboardInterrupt arrives where the sink runs; the file is still complete and playable."""

    class InterruptingSink(FileSink):
        def write(self, frame):
            if self.written == 6:
                raise KeyboardInterrupt
            super().write(frame)

    with lavfi(50) as source, InterruptingSink(tmp_path / "cut.mp4", source.info) as sink:
        pipeline = Pipeline(source, invert, sink, device=CPU)
        with pytest.raises(KeyboardInterrupt):
            pipeline.run()
    assert pipeline.stats.interrupted and pipeline.stats.written == 6
    assert probe(tmp_path / "cut.mp4").frames == 6


def test_max_frames_and_mirror():
    sink = RecordingSink()
    source = lavfi(10, size="32x24")
    stats = Pipeline(source, lambda x: x, sink, device=CPU, mirror=True, max_frames=4).run()
    assert stats.written == 4 and not sink.input_ended
    first = sink.frames[0]
    assert (first.original == first.rgb).all()
    plain = next(lavfi(1, size="32x24").frames(threading.Event())).rgb
    assert (first.rgb == plain[:, ::-1]).all()
