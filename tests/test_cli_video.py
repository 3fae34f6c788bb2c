"""`rtstyle video` and `rtstyle webcam` end to end, with real clips, codecs and tiny weights."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import pyvirtualcam
from typer.testing import CliRunner
from video_helpers import make_audio_only, probe, trim_clip, write_clip

from rtstyle.cli import app
from rtstyle.images import write_image

CLIPS = ["bbb_1280x720_5s_audio.mp4", "bbb_cut_640x360_10s_audio.mp4",
         "mdn_flower_960x540_5s_audio.mp4", "mdn_his_girl_friday_640x480_6s_audio.mp4",
         "opencv_vtest_pedestrians_480x360_10s.mp4"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def cli(tiny_style_file):
    def invoke(verb: str, *args: str):
        common = ["--style", str(tiny_style_file), "--backend", "eager", "--device", "cpu"]
        return CliRunner().invoke(app, [verb, *map(str, args), *common])
    return invoke


def flat(result) -> str:
    """CLI output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def assert_same_timing_and_audio(src: Path, out: Path) -> None:
    a, b = probe(src), probe(out)
    assert b.frames == a.frames
    frame_s = 1 / float(a.rate)
    assert abs(b.video_seconds - a.video_seconds) <= frame_s
    assert b.rate == a.rate
    seconds_a = [float(p * a.time_base) for p in a.pts]
    seconds_b = [float(p * b.time_base) for p in b.pts]
    assert seconds_b == pytest.approx(seconds_a, abs=1e-3)
    if a.audio_seconds is None:
        assert b.audio_seconds is None
    else:
        assert b.audio_channels == a.audio_channels
        assert b.audio_seconds == pytest.approx(a.audio_seconds, abs=0.05)


@pytest.mark.parametrize("clip", CLIPS)
def test_each_shared_clip_keeps_frames_timing_and_audio(cli, shared_data, tmp_path, clip):
    """The first second of each clip (packet copy, no re-encode), stylized at 96 px."""
    src = trim_clip(shared_data / "video" / clip, tmp_path / "in.mp4", seconds=1.0)
    out = tmp_path / "out.mp4"
    result = cli("video", src, out, "--max-side", "96")
    assert result.exit_code == 0, result.output
    assert_same_timing_and_audio(src, out)
    assert max(probe(out).width, probe(out).height) == 96


def test_full_clip_with_surround_audio(cli, shared_data, tmp_path):
    src = shared_data / "video" / "bbb_1280x720_5s_audio.mp4"
    out = tmp_path / "bbb.mp4"
    result = cli("video", src, out, "--max-side", "96", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["frames_written"] == 132 and report["frames_dropped"] == 0
    assert report["warning"] is None
    assert report["backend"].startswith("eager/fp32")
    assert_same_timing_and_audio(src, out)
    assert probe(out).audio_channels == 6


def test_variable_frame_rate_input_keeps_its_timestamps(cli, tmp_path):
    pts = [0, 512, 1024, 2048, 2560, 4096, 4608, 5000]
    src = write_clip(tmp_path / "vfr.mp4", pts=pts, time_base=Fraction(1, 12800))
    out = tmp_path / "out.mp4"
    result = cli("video", src, out)
    assert result.exit_code == 0, result.output
    written = probe(out)
    assert [float(p * written.time_base) for p in written.pts] == pytest.approx(
        [p / 12800 for p in pts], abs=1e-4)


def test_image_sequence_input(cli, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(1, 7):
        write_image(folder / f"{i:04d}.png", np.full((48, 64, 3), i * 30, np.uint8))
    out = tmp_path / "seq.mp4"
    result = cli("video", folder / "%04d.png", out)
    assert result.exit_code == 0, result.output
    assert probe(out).frames == 6 and (probe(out).width, probe(out).height) == (64, 48)


@pytest.mark.parametrize("graph,args,size", [
    ("testsrc=size=853x480:rate=25:duration=0.2", ["--size", "160x-1"], (160, 90)),
    ("testsrc=size=853x480:rate=25:duration=0.12", [], (852, 480)),
    ("testsrc=size=67x41:rate=25:duration=0.4", [], (66, 40)),
    ("testsrc=size=67x41:rate=25:duration=0.4", ["--scale", "2"], (134, 82)),
])
def test_lavfi_input_and_geometry(cli, tmp_path, graph, args, size):
    out = tmp_path / "lavfi.mp4"
    result = cli("video", f"lavfi:{graph}", out, *args)
    assert result.exit_code == 0, result.output
    result_probe = probe(out)
    assert (result_probe.width, result_probe.height) == size
    assert result_probe.frames == round(float(graph.rsplit("=", 1)[1]) * 25)


@pytest.mark.parametrize("pix_fmt,codec,suffix", [
    ("yuv444p", "libx264", "mp4"), ("yuv420p10le", "libx264", "mp4"), ("gray", "ffv1", "mkv")])
def test_unusual_input_formats(cli, tmp_path, pix_fmt, codec, suffix):
    src = write_clip(tmp_path / f"in.{suffix}", frames=8, width=66, height=40, pix_fmt=pix_fmt,
                     codec=codec)
    out = tmp_path / "out.mp4"
    result = cli("video", src, out)
    assert result.exit_code == 0, result.output
    assert probe(out).frames == 8


def test_codec_and_container_options(cli, tmp_path):
    src = write_clip(tmp_path / "in.mp4", frames=6, audio_rate=44100)
    out = tmp_path / "out.mkv"
    result = cli("video", src, out, "--codec", "libx265", "--crf", "30", "--preset", "ultrafast")
    assert result.exit_code == 0, result.output
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "hevc"
    assert probe(out).frames == 6 and probe(out).audio_codec == "aac"


def test_bad_inputs_exit_2_and_leave_nothing(cli, tmp_path):
    (tmp_path / "in").mkdir()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    not_video = tmp_path / "in" / "notes.mp4"
    not_video.write_text("hello\n" * 100)
    audio_only = make_audio_only(tmp_path / "in" / "voice.m4a")
    good = write_clip(tmp_path / "in" / "good.mp4", frames=3)
    cases = [
        (tmp_path / "in" / "missing.mp4", out_dir / "a.mp4", "not found"),
        (not_video, out_dir / "b.mp4", "cannot open"),
        (audio_only, out_dir / "c.mp4", "no video stream"),
        (good, out_dir / "d.unknownsuffix", "suffix"),
        (good, out_dir / "nested" / "e.mp4", "does not exist"),
    ]
    for source, target, message in cases:
        result = cli("video", source, target)
        assert result.exit_code == 2, result.output
        assert message in flat(result)
    assert list(out_dir.iterdir()) == []


def test_existing_output_is_kept_without_overwrite(cli, tmp_path):
    src = write_clip(tmp_path / "in.mp4", frames=3)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    result = cli("video", src, out)
    assert result.exit_code == 2 and "--overwrite" in flat(result)
    assert out.read_bytes() == b"precious"
    result = cli("video", src, out, "--overwrite")
    assert result.exit_code == 0, result.output
    assert probe(out).frames == 3


def test_truncated_copy_writes_frames_up_to_the_cut_with_a_warning(cli, shared_data, tmp_path):
    data = (shared_data / "video" / "opencv_vtest_pedestrians_480x360_10s.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 5])
    out = tmp_path / "out.mp4"
    result = cli("video", cut, out, "--max-side", "96")
    assert result.exit_code == 0, result.output
    assert "warning" in flat(result) and "truncated" in flat(result)
    written = probe(out).frames
    assert 5 < written < 100


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["ctrl-c", "sigterm"])
def test_interrupt_finalizes_a_playable_file(tiny_style_file, shared_data, tmp_path, signum,
                                             code):
    """Ctrl-C and SIGTERM (docker stop, systemd, kill) both keep what was done, and no hidden
    temporary file stays behind."""
    src = shared_data / "video" / "bbb_cut_640x360_10s_audio.mp4"
    out = tmp_path / "cut.mp4"
    partial = tmp_path / ".cut.partial.mp4"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtstyle.cli", "video", str(src), str(out), "--style",
         str(tiny_style_file), "--backend", "eager", "--device", "cpu"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not partial.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    # The hidden file appears when the sink opens, before the first frame (and the muxer
    # buffers, so its size says nothing); an interrupt before any frame rightly leaves no
    # output. The tiny net writes a frame every ~0.25 s on one thread, so give it a few.
    time.sleep(3)
    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr.decode()[-2000:]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert not partial.exists()
    result = probe(out)
    assert 0 < result.frames < 240
    assert result.audio_seconds == pytest.approx(result.video_seconds, abs=0.15)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_webcam_from_lavfi_to_udp_is_decodable(cli):
    url = f"udp://127.0.0.1:{free_udp_port()}"
    received = []

    def read_stream():
        try:
            with av.open(url, format="mpegts", options={"timeout": "3000000"},
                         timeout=20) as stream:
                for frame in stream.decode(video=0):
                    received.append((frame.width, frame.height))
        except av.error.FFmpegError:
            pass  # the sender stopped; the read timed out

    reader = threading.Thread(target=read_stream, daemon=True)
    reader.start()
    time.sleep(0.3)
    result = cli("webcam", "--camera", "lavfi:testsrc=size=96x72:rate=25", "--output", url,
                 "--max-frames", "40")
    assert result.exit_code == 0, result.output
    reader.join(30)
    assert len(received) >= 5
    assert set(received) == {(96, 72)}


class RecordingCamera:
    """pyvirtualcam backend for the test: keeps what it is sent."""

    frames: list = []
    size = None

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        RecordingCamera.size = (width, height)

    def send(self, frame):
        RecordingCamera.frames.append(frame.copy())

    def close(self):
        pass

    def device(self):
        return "test-camera"

    def native_fourcc(self):
        return None


class BrokenCamera(RecordingCamera):
    """A backend whose device is missing, as pyvirtualcam reports it."""

    def __init__(self, **kw):
        raise RuntimeError("device /dev/video9 is not a v4l2loopback device")


def test_webcam_to_virtual_camera(cli):
    pyvirtualcam.register_backend("rtstyle-cli-test", RecordingCamera)
    result = cli("webcam", "--camera", "lavfi:testsrc=size=67x41:rate=25", "--output", "vcam",
                 "--vcam-backend", "rtstyle-cli-test", "--max-frames", "10", "--mirror")
    assert result.exit_code == 0, result.output
    assert RecordingCamera.size == (66, 40)
    assert len(RecordingCamera.frames) >= 3
    assert RecordingCamera.frames[0].size == 66 * 40 * 3


def test_webcam_to_file_with_json(cli, tmp_path):
    out = tmp_path / "live.mp4"
    result = cli("webcam", "--camera", "lavfi:testsrc=size=64x48:rate=25", "--output", out,
                 "--duration", "0.6", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["frames_written"] > 0
    assert report["frames_read"] == report["frames_written"] + report["frames_dropped"]
    assert report["latency_ms_p50"] is not None
    assert probe(out).frames == report["frames_written"]


def test_webcam_missing_camera_is_exit_2(cli):
    result = cli("webcam", "--camera", "/dev/video99", "--output", "vcam")
    assert result.exit_code == 2
    said = flat(result)  # no camera at all here, or not this one
    assert "no camera found" in said or "camera /dev/video99 not found" in said, said


def test_webcam_window_without_a_display_says_what_to_use(cli, monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    result = cli("webcam", "--camera", "lavfi:testsrc=size=64x48:rate=25", "--max-frames", "2")
    assert result.exit_code == 2, result.output  # bad input, checked before the warm-up
    assert "no display" in flat(result) and "--output vcam" in flat(result)
    assert "warming up" not in result.output


def test_webcam_without_a_virtual_camera_fails_before_the_warm_up(cli):
    pyvirtualcam.register_backend("rtstyle-broken", BrokenCamera)
    result = cli("webcam", "--camera", "lavfi:testsrc=size=64x48:rate=25", "--output", "vcam",
                 "--vcam-backend", "rtstyle-broken", "--max-frames", "2")
    assert result.exit_code == 2, result.output
    assert "no virtual camera is available" in flat(result)
    assert "warming up" not in result.output


def test_file_summary_shows_wall_time_and_warm_up_and_no_live_rows(cli, tmp_path):
    result = cli("video", "lavfi:testsrc=size=64x48:rate=25:duration=0.4", tmp_path / "o.mp4")
    assert result.exit_code == 0, result.output
    assert "warm-up" in result.output and "wall time" in result.output
    assert "dropped" not in result.output and "latency" not in result.output


def test_live_summary_has_the_live_rows(cli, tmp_path):
    result = cli("webcam", "--camera", "lavfi:testsrc=size=64x48:rate=25", "--output",
                 tmp_path / "live.mp4", "--max-frames", "5")
    assert result.exit_code == 0, result.output
    assert "dropped" in result.output and "wall time" in result.output
