"""Sources decode real files, sequences, lavfi graphs and clips with odd formats, keeping pts."""

from __future__ import annotations

import threading
import time
from fractions import Fraction

import numpy as np
import pytest
from video_helpers import make_audio_only, write_clip

from rtstyle.errors import MediaError
from rtstyle.images import write_image
from rtstyle.realtime.sources import CameraSource, FileSource, open_source


def read_all(source) -> list:
    return list(source.frames(threading.Event()))


def test_file_source_keeps_variable_frame_rate_timestamps(tmp_path):
    pts = [0, 512, 1024, 2048, 2560, 4096, 4608]
    clip = write_clip(tmp_path / "vfr.mp4", pts=pts, time_base=Fraction(1, 12800))
    with FileSource(str(clip)) as source:
        frames = read_all(source)
        assert source.info.time_base == Fraction(1, 12800)
        assert (source.info.width, source.info.height) == (64, 48)
    assert [f.pts for f in frames] == pts
    assert [f.index for f in frames] == list(range(len(pts)))
    assert all(f.time_base == Fraction(1, 12800) for f in frames)
    assert frames[3].seconds == pytest.approx(0.16)
    assert frames[0].rgb.shape == (48, 64, 3) and frames[0].rgb.dtype == np.uint8


def test_output_size_is_applied_in_the_decoder(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", frames=3, width=64, height=48)
    with FileSource(str(clip)) as source:
        source.set_output_size(32, 24)
        assert {f.rgb.shape for f in read_all(source)} == {(24, 32, 3)}


@pytest.mark.parametrize("pix_fmt,codec,suffix", [
    ("yuv444p", "libx264", "mp4"),
    ("yuv420p10le", "libx264", "mp4"),
    ("gray", "libx264", "mkv"),
    ("gray16le", "ffv1", "mkv"),
])
def test_unusual_pixel_formats_decode_to_rgb(tmp_path, pix_fmt, codec, suffix):
    clip = write_clip(tmp_path / f"c.{suffix}", frames=4, width=67 if codec == "ffv1" else 66,
                      height=41 if codec == "ffv1" else 40, pix_fmt=pix_fmt, codec=codec)
    with FileSource(str(clip)) as source:
        frames = read_all(source)
    assert len(frames) == 4
    assert frames[0].rgb.shape[2] == 3 and frames[0].rgb.dtype == np.uint8
    if pix_fmt.startswith("gray"):
        rgb = frames[1].rgb.astype(int)
        assert np.abs(rgb[..., 0] - rgb[..., 1]).max() <= 2  # grey stays grey


def test_rotation_metadata_is_read(tmp_path):
    clip = write_clip(tmp_path / "rot.mp4", frames=2, rotation=90)
    with FileSource(str(clip)) as source:
        assert source.info.rotation == 90


def test_image_sequence(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(1, 6):
        write_image(folder / f"{i:04d}.png", np.full((41, 67, 3), i * 40, np.uint8))
    with FileSource(str(folder / "%04d.png")) as source:
        frames = read_all(source)
    assert len(frames) == 5
    assert frames[0].rgb.shape == (41, 67, 3)
    assert [f.rgb[0, 0, 0] for f in frames] == [40, 80, 120, 160, 200]
    assert frames[1].pts > frames[0].pts


def test_lavfi_graph():
    with FileSource("lavfi:testsrc=size=67x41:rate=10:duration=0.5") as source:
        frames = read_all(source)
        assert source.info.rate == 10
    assert len(frames) == 5
    assert frames[0].rgb.shape == (41, 67, 3)
    assert [float(f.seconds) for f in frames] == pytest.approx([0, 0.1, 0.2, 0.3, 0.4])


def test_live_file_is_paced_by_its_timestamps():
    with FileSource("lavfi:testsrc=size=32x24:rate=20:duration=0.5", live=True) as source:
        start = time.monotonic()
        frames = read_all(source)
        elapsed = time.monotonic() - start
    assert len(frames) == 10
    assert elapsed >= 0.4  # 10 frames at 20 fps: the last one is due at 0.45 s


def test_missing_file(tmp_path):
    with pytest.raises(MediaError, match="not found"):
        FileSource(str(tmp_path / "nope.mp4"))


def test_not_a_video(tmp_path):
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("this is not a video\n" * 50)
    with pytest.raises(MediaError, match="cannot open"):
        FileSource(str(bogus))


def test_no_video_stream(tmp_path):
    path = make_audio_only(tmp_path / "audio_only.m4a")
    with pytest.raises(MediaError, match="no video stream"):
        FileSource(str(path))


def test_truncated_clip_yields_frames_up_to_the_cut(shared_data, tmp_path):
    """vtest has its index at the front, so a cut file still opens; reading stops at the cut."""
    data = (shared_data / "video" / "opencv_vtest_pedestrians_480x360_10s.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with FileSource(str(cut)) as source:
        source.set_output_size(48, 36)
        frames = read_all(source)
        problems = source.problems()
    assert 10 < len(frames) < 100
    assert problems is not None and "of 100 frames decoded" in problems
    pts = [f.pts for f in frames]
    assert pts == sorted(pts)


def test_camera_source_through_opencv_reads_frames_with_capture_clock(tmp_path):
    """OpenCV's capture API is the same for a device and a file, which CI can provide."""
    clip = write_clip(tmp_path / "cam.mp4", frames=6, width=64, height=48)
    with CameraSource(str(clip), mjpg=False) as camera:
        camera.set_output_size(32, 24)
        frames = read_all(camera)
    assert len(frames) == 6
    assert frames[0].rgb.shape == (24, 32, 3)
    assert frames[0].time_base == Fraction(1, 1000)
    assert [f.pts for f in frames] == sorted(f.pts for f in frames)


def test_missing_camera_is_a_clear_error():
    """No such device: "no camera found" on a machine without any, else the ones it has."""
    with pytest.raises(MediaError, match="no camera found|camera /dev/video99 not found"):
        open_source("/dev/video99", live=True)


def test_open_source_routes_by_spec(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", frames=2)
    with open_source(str(clip)) as source:
        assert isinstance(source, FileSource) and source.path == clip
    with open_source("lavfi:testsrc=size=32x24:rate=5:duration=0.2") as source:
        assert isinstance(source, FileSource) and source.path is None
