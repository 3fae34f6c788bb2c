"""`rtstyle serve` under load, over real sockets: a uvicorn server in a thread on a free port,
many clients at once. Every accepted request completes, the others are told to come back
(503 with Retry-After), uploads stream to disk, and memory stays bounded."""

from __future__ import annotations

import io
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import make_tiny_style
from PIL import Image
from video_helpers import write_clip

httpx = pytest.importorskip("httpx", reason="the load test needs httpx (the dev extra)")
pytest.importorskip("uvicorn", reason="the web app needs the serve extra: pip install -e .[serve]")

from rtstyle.server import ServerConfig, create_app  # noqa: E402
from rtstyle.server.background import BackgroundServer  # noqa: E402

MB = 1024 * 1024


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class PeakMemory:
    """Samples this process's resident memory in a thread while the block runs."""

    def __enter__(self):
        self.start = self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return self.peak - self.start


def photo_png(w: int, h: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def status_line(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        return sock.recv(4096).split(b"\r\n", 1)[0]


@pytest.fixture
def server(tmp_path, rtstyle_home, no_bundled, one_torch_thread):
    make_tiny_style(rtstyle_home / "styles" / "tiny.v1.safetensors", name="tiny")
    parent = tmp_path / "server-tmp"
    parent.mkdir()
    config = ServerConfig(device="cpu", backend="eager", temp_parent=parent, max_jobs=2,
                          max_pending_stills=3, max_upload_bytes=48 * MB)
    with BackgroundServer(create_app(config)) as running:
        yield running
    assert list(parent.iterdir()) == [], "the server's temp dir outlived it"


def test_many_clients_at_once_are_served_or_told_to_wait(server, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", frames=10, audio_rate=44100)
    photos = [photo_png(320, 240, seed) for seed in range(16)]

    def post_image(data: bytes):
        with httpx.Client(base_url=server.url, timeout=60) as client:
            return client.post("/api/stylize", data={"style": "tiny"},
                               files={"file": ("p.png", data, "image/png")})

    def post_job(_):
        with httpx.Client(base_url=server.url, timeout=60) as client:
            return client.post("/api/jobs", data={"style": "tiny", "smooth": "0"},
                               files={"file": ("c.mp4", clip.read_bytes(), "video/mp4")})

    # The device is held while the jobs arrive, so the two accepted ones are still waiting
    # when the others ask: on a slow machine a finished job would free its place in the queue.
    gate = server.server.config.app.state.server.gate
    with PeakMemory() as memory, ThreadPoolExecutor(max_workers=12) as pool:
        with gate:
            jobs = list(pool.map(post_job, range(6)))
        stills = list(pool.map(post_image, photos))
    assert {r.status_code for r in stills} <= {200, 503}
    assert {r.status_code for r in jobs} <= {202, 503}
    for response in stills + jobs:
        if response.status_code == 503:
            assert response.headers["retry-after"] and "try again" in response.json()["detail"]
    done = [r for r in stills if r.status_code == 200]
    assert done, "no still was accepted"
    for response in done:
        assert Image.open(io.BytesIO(response.content)).size == (320, 240)
    accepted = [r.json()["id"] for r in jobs if r.status_code == 202]
    assert len(accepted) == 2
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for job_id in accepted:
            deadline = time.monotonic() + 60
            while (status := client.get(f"/api/jobs/{job_id}").json())["state"] not in (
                    "done", "failed"):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert status["state"] == "done", status
            result = client.get(status["result_url"])
            with av.open(io.BytesIO(result.content)) as container:
                assert sum(1 for _ in container.decode(video=0)) == 10
                assert container.streams.audio
    assert memory.growth_mb < 200, f"memory grew by {memory.growth_mb:.0f} MB"


def test_uploads_stream_to_disk_and_oversize_is_refused_before_the_body(server):
    declared = status_line(server.url, (
        b"POST /api/stylize HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=x\r\n"
        b"Content-Length: 10000000000\r\n\r\n"))  # no body follows: refused on the header
    assert declared.startswith(b"HTTP/1.1 413"), declared

    chunk = bytes(range(256)) * 4096  # 1 MB, reused: the client holds almost nothing

    def body(total_mb: int):
        yield (b'--x\r\nContent-Disposition: form-data; name="style"\r\n\r\ntiny\r\n'
               b'--x\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n')
        for _ in range(total_mb):
            yield chunk
        yield b"\r\n--x--\r\n"

    headers = {"content-type": "multipart/form-data; boundary=x"}
    with httpx.Client(base_url=server.url, timeout=60) as client, PeakMemory() as memory:
        inside = client.post("/api/jobs", content=body(40), headers=headers)
        assert inside.status_code == 415, inside.text  # read in full, found not to be a video
    assert memory.growth_mb < 25, f"a 40 MB upload grew memory by {memory.growth_mb:.0f} MB"
    with httpx.Client(base_url=server.url, timeout=60) as client:
        try:
            over = client.post("/api/jobs", content=body(80), headers=headers)
            assert over.status_code == 413 and "--max-upload-mb" in over.json()["detail"]
        except httpx.WriteError:
            pass  # the server answered 413 and closed while the client was still sending
        assert client.get("/api/info").status_code == 200
