"""A network stream that vanishes: a clear account without --reconnect, a resumed run with it.

The sender is a real MPEG-TS encoder listening on a loopback TCP port (FFmpeg's `?listen`),
so the source sees exactly what it would see from OBS or a camera that goes away.
"""

import socket
import subprocess
import sys
import threading
import time

import pytest

from rtstyle.errors import MediaError
from rtstyle.realtime.sources import FileSource


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SENDER = """
import sys
import av
import numpy as np

port = int(sys.argv[1])
for n in map(int, sys.argv[2:]):
    with av.open(f"tcp://127.0.0.1:{port}?listen=1", mode="w", format="mpegts") as out:
        stream = out.add_stream("mpeg2video", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(n):
            rgb = np.full((48, 64, 3), (i * 7) % 256, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
"""


@pytest.fixture
def serve_segments():
    """Start a sender in its own process (FFmpeg's listen blocks holding the GIL): one client
    per segment, that many frames each, then hang up. Killed after the test whatever happens."""
    procs = []

    def start(port: int, frames_per_segment: list[int]) -> subprocess.Popen:
        procs.append(subprocess.Popen([sys.executable, "-c", SENDER, str(port),
                                       *map(str, frames_per_segment)]))
        return procs[-1]

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def connect(url: str, **kwargs) -> FileSource:
    deadline = time.monotonic() + 10
    while True:
        try:
            return FileSource(url, live=True, open_timeout_s=5, **kwargs)
        except MediaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.timeout(60)
def test_stream_end_is_reported_without_reconnect(serve_segments):
    port = free_tcp_port()
    sender = serve_segments(port, [30])
    source = connect(f"tcp://127.0.0.1:{port}")
    frames = list(source.frames(threading.Event()))
    source.close()
    sender.wait(10)
    assert 20 <= len(frames) <= 30
    assert "ended" in source.problems() and "--reconnect" in source.problems()


@pytest.mark.timeout(60)
def test_reconnect_resumes_with_increasing_timestamps(serve_segments):
    port = free_tcp_port()
    sender = serve_segments(port, [20, 20])
    source = connect(f"tcp://127.0.0.1:{port}", reconnect=True)
    stop = threading.Event()
    frames = []
    for frame in source.frames(stop):
        frames.append(frame)
        if len(frames) >= 30:  # only reachable through the second connection
            stop.set()
            break
    source.close()
    sender.wait(10)
    assert source.reconnects == 1
    seconds = [f.pts * f.time_base for f in frames]
    assert all(b > a for a, b in zip(seconds, seconds[1:], strict=False))
