"""`rtstyle batch` on this machine: planning, parts and joins, the local worker pool, retries,
reruns and Ctrl-C. Real clips, codecs and tiny weights; the Ray runs are in test_batch_ray.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from typer.testing import CliRunner
from video_helpers import probe, trim_clip

from rtstyle.batch.join import join_parts
from rtstyle.batch.plan import index_frames, plan_batch, preroll_frames, split_parts
from rtstyle.batch.work import FAIL_ONCE_ENV
from rtstyle.cli import app
from rtstyle.errors import UserInputError
from rtstyle.images import read_image, write_image
from rtstyle.realtime.runs import Geometry, StyleSettings, VideoRun
from rtstyle.realtime.sources import FileSource

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FRIDAY = "mdn_his_girl_friday_640x480_6s_audio.mp4"  # keyframes every 1.17 s


def decoded(path: Path) -> tuple[list[float], list[np.ndarray], float | None]:
    """Frame times (s), YUV 4:2:0 pictures and audio seconds of a file."""
    with av.open(str(path)) as c:
        frames = [(float(f.pts * f.time_base), f.to_ndarray(format="yuv420p").astype(np.int16))
                  for f in c.decode(video=0)]
    audio = probe(path).audio_seconds
    return [t for t, _ in frames], [p for _, p in frames], audio


def assert_same_frames(a: Path, b: Path, *, max_diff: int, mean_diff: float) -> None:
    times_a, pics_a, audio_a = decoded(a)
    times_b, pics_b, audio_b = decoded(b)
    assert times_b == times_a
    assert audio_b == audio_a
    diffs = [np.abs(x - y) for x, y in zip(pics_a, pics_b, strict=True)]
    assert max(int(d.max()) for d in diffs) <= max_diff
    assert float(np.mean([d.mean() for d in diffs])) <= mean_diff


def batch_cli(style: Path, *args, max_side: int = 64) -> list[str]:
    return ["batch", *map(str, args), "--style", str(style), "--backend", "eager",
            "--device", "cpu", "--max-side", str(max_side)]


def test_plan_expands_names_and_refuses_clashes(shared_data, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("b.mp4", "a.mkv", "c.avi", "notes.txt"):
        (clips / name).write_bytes(b"")
    write_image(clips / "p.png", np.zeros((8, 8, 3), np.uint8))
    plan = plan_batch([str(clips)], tmp_path / "out", split_seconds=0)
    assert [i.target.name for i in plan.items] == ["a.mkv", "b.mp4", "c.mp4", "p.png"]
    assert [i.kind for i in plan.items] == ["video", "video", "video", "image"]
    assert all(i.problem for i in plan.items[:3])  # empty files are not videos: reported
    glob = plan_batch([str(clips / "*.png")], tmp_path / "out")
    assert [i.source.name for i in glob.items] == ["p.png"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "b.mp4").write_bytes(b"")
    with pytest.raises(UserInputError, match="both be written"):
        plan_batch([str(clips / "b.mp4"), str(tmp_path / "other" / "b.mp4")], tmp_path / "o")
    with pytest.raises(UserInputError, match="replace its input"):
        plan_batch([str(clips / "b.mp4")], clips)


def test_long_video_is_cut_at_keyframes_into_parts_that_cover_every_frame(shared_data):
    src = shared_data / "video" / FRIDAY
    index = index_frames(src)
    parts = split_parts(index, 2.0, preroll=18)
    assert len(parts) == 3
    assert sum(p.frames for p in parts) == len(index.times) == 185
    for before, after in zip(parts, parts[1:], strict=False):
        assert after.span.start == before.span.end
        assert after.span.start in index.keyframes
        warm = index.times.index(after.span.start) - index.times.index(after.span.warm_from)
        assert warm == 18
    assert parts[0].span.start is None and parts[-1].span.end is None
    assert preroll_frames(0.0) == 0 and preroll_frames(0.7) == 18
    plan = plan_batch([str(src)], Path(os.devnull).parent / "rtstyle-unused", split_seconds=60)
    assert plan.items[0].parts == () and plan.items[0].frames == 185


def test_a_span_reads_exactly_its_frames(shared_data):
    src = str(shared_data / "video" / FRIDAY)
    stop = threading.Event()
    whole = [(f.pts, int(f.rgb.sum())) for f in FileSource(src).frames(stop)]
    source = FileSource(src)
    source.set_span(Fraction(2), Fraction(4))  # between keyframes: decoding starts before 2 s
    part = [(f.pts, int(f.rgb.sum())) for f in source.frames(stop)]
    assert part == [x for x in whole if 2 <= x[0] / 3000 < 4]
    assert source.problems() is None


@pytest.mark.parametrize("crf", [0, 18], ids=["lossless", "crf18-bframes"])
def test_parts_joined_equal_the_run_in_one_piece(tiny_style_file, shared_data, tmp_path, crf):
    """Same frames and timestamps, the audio once; pixels equal but for the smoother's
    history before a part's pre-roll (tiny) and, at crf 18, the encoder's own choices."""
    src = shared_data / "video" / FRIDAY
    settings = StyleSettings(styles=(str(tiny_style_file),), device="cpu", backend="eager")
    geometry = Geometry(max_side=96)

    def run(target: Path, span=None) -> None:
        with VideoRun(src, target, settings, geometry=geometry, crf=crf, span=span) as r:
            r.warm_up()
            r.run()

    run(tmp_path / "whole.mp4")
    parts = split_parts(index_frames(src), 2.0, preroll_frames(settings.smooth))
    files = [tmp_path / f"part{p.index}.nut" for p in parts]
    for part, path in zip(parts, files, strict=True):
        run(path, part.span)
        assert probe(path).audio_seconds is None
    assert join_parts(files, src, tmp_path / "joined.mp4") == 185
    assert_same_frames(tmp_path / "whole.mp4", tmp_path / "joined.mp4",
                       max_diff=2 if crf == 0 else 8, mean_diff=0.01 if crf == 0 else 0.2)


@pytest.fixture
def clips(shared_data, tmp_path) -> Path:
    """Two short clips (one second, packets copied) and an image, in one folder."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("bbb_cut_640x360_10s_audio.mp4", FRIDAY):
        trim_clip(shared_data / "video" / name, folder / name, seconds=1.0)
    eval_photo = sorted((shared_data / "content" / "eval").glob("*.jpg"))[0]
    (folder / "photo.jpg").symlink_to(eval_photo)
    return folder


def test_local_pool_does_a_folder_and_a_rerun_skips_it(tiny_style_file, clips, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, batch_cli(tiny_style_file, clips, "-o", out,
                                               "--workers", "2", "--json"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["done"] == 3 and report["failed"] == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in clips.iterdir())
    for name in ("bbb_cut_640x360_10s_audio.mp4", FRIDAY):
        a, b = probe(clips / name), probe(out / name)
        assert (b.frames, max(b.width, b.height)) == (a.frames, 64)
        assert b.audio_seconds == pytest.approx(a.audio_seconds, abs=0.05)
    again = CliRunner().invoke(app, batch_cli(tiny_style_file, clips, "-o", out, "--json"))
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)
    assert (report["skipped"], report["done"], report["workers"]) == (3, 0, "none needed")


def test_a_task_that_fails_once_is_retried(tiny_style_file, clips, tmp_path, monkeypatch):
    flags = tmp_path / "flags"
    flags.mkdir()
    (flags / FRIDAY).touch()
    monkeypatch.setenv(FAIL_ONCE_ENV, str(flags))  # read by the worker processes
    out = tmp_path / "out"
    result = CliRunner().invoke(app, batch_cli(tiny_style_file, clips / FRIDAY, "-o", out,
                                               "--workers", "1", "--json"))
    assert result.exit_code == 0, result.output
    item = json.loads(result.stdout)["items"][0]
    assert (item["status"], item["attempts"]) == ("done", 2)
    assert not (flags / FRIDAY).exists()
    assert probe(out / FRIDAY).frames == probe(clips / FRIDAY).frames
    assert [p.name for p in out.iterdir()] == [FRIDAY]  # no scratch, no half-written file


def test_bad_input_fails_alone_without_retry_and_exits_1(tiny_style_file, clips, tmp_path):
    (clips / "broken.mp4").write_bytes(b"not a video")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, batch_cli(tiny_style_file, clips / "broken.mp4",
                                               clips / FRIDAY, "-o", out, "--json"))
    assert result.exit_code == 1, result.output
    items = {Path(i["input"]).name: i for i in json.loads(result.stdout)["items"]}
    assert items["broken.mp4"]["status"] == "failed"
    assert "broken.mp4" in items["broken.mp4"]["reason"]
    assert items[FRIDAY]["status"] == "done"
    assert sorted(p.name for p in out.iterdir()) == [FRIDAY]


def test_without_ray_installed_the_ray_option_says_how_to_get_it(tiny_style_file, clips,
                                                                tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    result = CliRunner().invoke(app, batch_cli(tiny_style_file, clips, "-o", tmp_path / "o",
                                               "--ray"))
    assert result.exit_code == 2, result.output
    assert "pip install 'rtstyle[ray]'" in " ".join(result.output.split())


def test_ctrl_c_stops_the_workers_and_leaves_no_files(tiny_style_file, shared_data, tmp_path):
    """SIGINT to the driver: workers end their runs, nothing unfinished stays, exit 130."""
    src = shared_data / "video" / "bbb_cut_640x360_10s_audio.mp4"
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtstyle.cli", *batch_cli(tiny_style_file, src, "-o", out,
                                                         "--workers", "1", max_side=360)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    writing = []
    while not writing and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
        writing = list(out.glob(".rtstyle-batch-*/.*partial*")) if out.is_dir() else []
    time.sleep(1.0)
    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr.decode()[-2000:]
    assert list(out.iterdir()) == []


def test_batch_keeps_the_photo_colours_and_runs_photoreal_like_image(shared_data, tmp_path):
    """`--preserve-color` and `--photoreal` reach the workers: a still comes out as `image`
    makes it with the same options, and differs from the plain stylization."""
    folder = tmp_path / "in"
    folder.mkdir()
    photo = sorted((shared_data / "content" / "eval").glob("*.jpg"))[0]
    (folder / "photo.png").symlink_to(photo)  # the name only sets the output's format

    def batch(out: Path, *extra: str) -> np.ndarray:
        result = CliRunner().invoke(app, batch_cli("monet", folder, "-o", out, *extra,
                                                   "--workers", "1"))
        assert result.exit_code == 0, result.output
        return read_image(out / "photo.png").astype(int)

    plain = batch(tmp_path / "plain")
    for extra in (["--preserve-color", "luminance"], ["--photoreal"]):
        alone = tmp_path / f"alone{extra[0]}.png"
        single = CliRunner().invoke(app, ["image", str(photo), "-o", str(alone), "--style",
                                          "monet", "--max-side", "64",
                                          "--device", "cpu", *extra])
        assert single.exit_code == 0, single.output
        got = batch(tmp_path / f"out{extra[0]}", *extra)
        assert np.abs(got - read_image(alone).astype(int)).max() <= 1, extra
        assert np.abs(got - plain).mean() > 2, extra
