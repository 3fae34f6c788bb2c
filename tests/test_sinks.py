"""Sinks write real files (timestamps, rotation, audio), virtual cameras and key handling."""

from __future__ import annotations

import sys
import threading
from fractions import Fraction

import numpy as np
import pytest
import pyvirtualcam
import torch
from video_helpers import probe, write_clip

from rtstyle.errors import OutputExistsError, OutputUnavailableError, UserInputError
from rtstyle.images import read_image
from rtstyle.realtime.controls import KEYS, StyleCycler, ViewState, action_for, apply_key
from rtstyle.realtime.frames import Frame, VideoInfo
from rtstyle.realtime.sinks import FileSink, PreviewSink, StopRequested, VirtualCameraSink
from rtstyle.realtime.sources import FileSource


def copy_through(source_path, target, **sink_kwargs):
    """Decode a clip and write every frame unchanged through a FileSink."""
    with FileSource(str(source_path)) as source:
        sink = FileSink(target, source.info, audio_from=source.path, **sink_kwargs)
        for frame in source.frames(threading.Event()):
            sink.write(frame)
        sink.close()
    return sink


def test_variable_frame_rate_and_rotation_survive(tmp_path):
    pts = [0, 512, 1024, 2048, 2560, 4096, 4608, 5000]
    clip = write_clip(tmp_path / "vfr.mp4", pts=pts, time_base=Fraction(1, 12800), rotation=-90)
    out = tmp_path / "out.mp4"
    copy_through(clip, out)
    result = probe(out)
    assert result.frames == len(pts)
    seconds = [float(p * result.time_base) for p in result.pts]
    assert seconds == pytest.approx([p / 12800 for p in pts], abs=1e-4)
    assert result.rotation == -90


def test_audio_is_copied_when_the_container_allows(tmp_path):
    clip = write_clip(tmp_path / "a.mp4", frames=25, audio_rate=48000, audio_layout="5.1")
    out = tmp_path / "out.mkv"
    sink = copy_through(clip, out)
    assert sink.audio is not None and sink.audio.copy
    src, result = probe(clip), probe(out)
    assert result.audio_codec == "aac" and result.audio_channels == 6
    assert result.audio_seconds == pytest.approx(src.audio_seconds, abs=0.03)


def test_audio_is_reencoded_when_the_container_needs_another_codec(tmp_path):
    clip = write_clip(tmp_path / "a.mp4", frames=10, audio_rate=44100)
    out = tmp_path / "out.webm"  # WebM takes Opus/Vorbis, not AAC
    sink = copy_through(clip, out)
    assert sink.audio is not None and not sink.audio.copy
    result = probe(out)
    assert result.frames == 10 and result.audio_codec == "opus"
    assert result.audio_seconds == pytest.approx(0.4, abs=0.05)


def test_partial_file_stays_hidden_until_close(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", frames=4)
    out = tmp_path / "out.mp4"
    with FileSource(str(clip)) as source:
        sink = FileSink(out, source.info)
        for frame in source.frames(threading.Event()):
            sink.write(frame)
        assert not out.exists()  # only the hidden temporary name is ever written to
        sink.close()
    assert out.exists() and not sink.temp.exists()
    assert probe(out).frames == 4


def test_no_frames_leave_no_file(tmp_path):
    info = VideoInfo(width=64, height=48, rate=Fraction(25), time_base=Fraction(1, 25))
    out = tmp_path / "empty.mp4"
    sink = FileSink(out, info)
    sink.close()
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_overwrite(tmp_path):
    info = VideoInfo(width=64, height=48, rate=Fraction(25), time_base=Fraction(1, 25))
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError):
        FileSink(out, info)
    assert out.read_bytes() == b"keep me"


def test_unknown_suffix_and_odd_sizes_are_user_errors(tmp_path):
    info = VideoInfo(width=67, height=41, rate=Fraction(25), time_base=Fraction(1, 25))
    with pytest.raises(UserInputError, match="suffix"):
        FileSink(tmp_path / "out.notavideo", info)
    with pytest.raises(UserInputError, match="even"):
        FileSink(tmp_path / "out.mp4", info)
    assert list(tmp_path.iterdir()) == []


class RecordingCamera:
    """A pyvirtualcam backend that keeps what it is sent (registered, not mocked)."""

    instances: list = []

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc
        self.frames: list[np.ndarray] = []
        self.closed = False
        RecordingCamera.instances.append(self)

    def send(self, frame):
        self.frames.append(frame.copy())

    def close(self):
        self.closed = True

    def device(self):
        return "recorder"

    def native_fourcc(self):
        return None


class BrokenCamera(RecordingCamera):
    def __init__(self, **kw):
        raise RuntimeError("device /dev/video9 is not a v4l2loopback device")


def test_virtual_camera_receives_rgb_frames_of_the_right_size():
    pyvirtualcam.register_backend("rtstyle-test", RecordingCamera)
    sink = VirtualCameraSink(66, 40, 25.0, backend="rtstyle-test")
    rgb = np.random.default_rng(0).integers(0, 255, (40, 66, 3), np.uint8)
    for i in range(3):
        sink.write(Frame(rgb=rgb, pts=i, time_base=Fraction(1, 25), index=i, captured_at=0.0))
    sink.close()
    camera = RecordingCamera.instances[-1]
    assert (camera.width, camera.height) == (66, 40)
    assert camera.fourcc == pyvirtualcam.util.encode_fourcc(pyvirtualcam.PixelFormat.RGB.value)
    assert len(camera.frames) == 3 and camera.closed
    np.testing.assert_array_equal(camera.frames[0].reshape(40, 66, 3), rgb)  # backends get 1-D


def test_missing_virtual_camera_says_what_to_install():
    pyvirtualcam.register_backend("rtstyle-broken", BrokenCamera)
    with pytest.raises(OutputUnavailableError, match="udp://"):
        VirtualCameraSink(64, 48, 25.0, backend="rtstyle-broken")


@pytest.mark.parametrize("key,expect", [
    (ord("n"), {"style_index": 1}),
    (83, {"style_index": 1}),
    (ord("p"), {"style_index": 2}),
    (ord("-"), {"strength": 0.9}),
    (ord("+"), {}),  # already at full strength
    (ord("o"), {"side_by_side": True}),
    (ord("s"), {"snapshot_pending": True}),
    (ord(" "), {"paused": True}),
    (ord("q"), {"quit": True}),
    (27, {"quit": True}),
    (-1, {}),
    (ord("z"), {}),
])
def test_apply_key(key, expect):
    before = ViewState(style_count=3)
    after = apply_key(before, key)
    changed = {k: v for k, v in vars(after).items() if vars(before)[k] != v}
    assert changed == expect


def test_strength_steps_stay_in_range_and_keys_do_not_collide():
    state = ViewState(strength=0.05)
    assert apply_key(state, ord("-")).strength == 0.0
    state = ViewState(strength=0.0)
    for _ in range(12):
        state = apply_key(state, ord("="))
    assert state.strength == 1.0
    codes = [c for codes in KEYS.values() for c in codes]
    assert len(codes) == len(set(codes))
    assert action_for(ord("q") | 0x100000) == "quit"  # modifier bits are ignored


def test_style_cycler_switches_and_blends():
    loaded = []

    def load(name):
        loaded.append(name)
        return {"dark": lambda x: torch.zeros_like(x), "light": lambda x: torch.ones_like(x)}[name]

    cycler = StyleCycler(["dark", "light"], load)
    x = torch.full((1, 3, 4, 4), 0.5)
    assert cycler(x).max() == 0
    cycler.apply(apply_key(ViewState(style_count=2), ord("n")))
    assert cycler.name == "light" and loaded == ["dark", "light"]
    cycler.apply(ViewState(style_index=1, style_count=2, strength=0.5))
    torch.testing.assert_close(cycler(x), torch.full_like(x, 0.75))


def test_preview_without_a_display_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(OutputUnavailableError, match="no display"):
        PreviewSink(ViewState())


def test_preview_keys_switch_style_snapshot_side_by_side_and_quit(monkeypatch, tmp_path):
    """Key handling runs without a window: the window only opens with the first frame."""
    monkeypatch.setenv("DISPLAY", ":0")
    changes = []
    sink = PreviewSink(ViewState(style_count=2), on_change=changes.append, snapshot_dir=tmp_path)
    original = np.zeros((4, 6, 3), np.uint8)
    frame = Frame(rgb=np.full((4, 6, 3), 200, np.uint8), pts=0, time_base=Fraction(1, 25),
                  index=0, captured_at=0.0, original=original)
    sink.handle_key(ord("o"))
    sink._shown = sink.compose(frame)
    assert sink._shown.shape == (4, 12, 3)
    sink.handle_key(ord("s"))
    assert [p.name for p in sink.snapshots] == ["rtstyle_snapshot_001.png"]
    assert read_image(sink.snapshots[0]).shape == (4, 12, 3)
    assert not sink.state.snapshot_pending
    sink.handle_key(ord("n"))
    sink.handle_key(ord("-"))
    assert [(s.style_index, s.strength) for s in changes] == [(1, 1.0), (1, 0.9)]
    with pytest.raises(StopRequested):
        sink.handle_key(ord("q"))
    sink.close()
