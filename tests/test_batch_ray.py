"""`rtstyle batch --ray` on a real local Ray cluster (2 CPUs: two tasks at a time).

One batch over three shared clips, run once for the module: two of them are long enough for
`--split-seconds 2` to cut them into parts (run as separate tasks, then joined by a join
task), one part fails once through the worker's test hook and Ray retries it. Lossless x264
(`--crf 0`) so the split clip can be compared with a run in one piece pixel for pixel.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from test_batch import FRIDAY, assert_same_frames, batch_cli
from typer.testing import CliRunner
from video_helpers import probe

from rtstyle.batch.work import FAIL_ONCE_ENV
from rtstyle.cli import app
from rtstyle.realtime.runs import Geometry, StyleSettings, VideoRun

pytest.importorskip("ray", reason="Ray is not installed (pip install 'rtstyle[ray]'); "
                                  "the cluster tests need it")

CLIPS = [FRIDAY, "mdn_flower_960x540_5s_audio.mp4", "bbb_1280x720_5s_audio.mp4"]
FLAKY = "mdn_flower_960x540_5s_audio.mp4"
OPTIONS = ("--crf", "0", "--split-seconds", "2", "--ray", "--workers", "2", "--json")


@pytest.fixture(scope="module")
def style(tmp_path_factory) -> Path:
    from conftest import make_tiny_style

    return make_tiny_style(tmp_path_factory.mktemp("style") / "tiny-ray.v1.safetensors",
                           name="tiny-ray", seed=3)


@pytest.fixture(scope="module")
def ran(shared_data, style, tmp_path_factory):
    """The batch, run once: (its JSON report, the output folder, the flag folder)."""
    root = tmp_path_factory.mktemp("ray-batch")
    flags = root / "flags"
    flags.mkdir()
    (flags / FLAKY).touch()
    sources = [shared_data / "video" / clip for clip in CLIPS]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(FAIL_ONCE_ENV, str(flags))  # the local cluster's workers inherit it
        result = CliRunner().invoke(app, batch_cli(style, *sources, "-o", root / "out",
                                                   *OPTIONS))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), root / "out", flags


def test_three_clips_keep_every_frame_their_timestamps_and_audio(ran, shared_data):
    report, out, _ = ran
    assert (report["done"], report["failed"]) == (3, 0)
    assert "local Ray cluster: 2 CPUs" in report["workers"]
    parts = {Path(i["input"]).name: i["parts"] for i in report["items"]}
    assert parts == {FRIDAY: 3, FLAKY: 2, "bbb_1280x720_5s_audio.mp4": 0}
    assert sorted(p.name for p in out.iterdir()) == sorted(CLIPS)  # no scratch left
    for clip in CLIPS:
        a, b = probe(shared_data / "video" / clip), probe(out / clip)
        assert b.frames == a.frames
        assert [float(p * b.time_base) for p in b.pts] == pytest.approx(
            [float(p * a.time_base) for p in a.pts], abs=1e-3)
        assert b.audio_seconds == pytest.approx(a.audio_seconds, abs=0.05)


def test_a_part_that_fails_once_is_retried_by_ray(ran):
    report, out, flags = ran
    attempts = {Path(i["input"]).name: i["attempts"] for i in report["items"]}
    assert attempts == {FRIDAY: 1, FLAKY: 2, "bbb_1280x720_5s_audio.mp4": 1}
    assert not (flags / FLAKY).exists()


def test_the_style_travelled_as_bytes_to_a_node_local_copy(ran, style):
    copies = list((Path(tempfile.gettempdir()) / "rtstyle-styles").glob(f"*/{style.name}"))
    assert any(c.read_bytes() == style.read_bytes() for c in copies)


def test_the_split_clip_equals_a_run_in_one_piece(ran, shared_data, style, tmp_path):
    _, out, _ = ran
    whole = tmp_path / "whole.mp4"
    settings = StyleSettings(styles=(str(style),), device="cpu", backend="eager")
    with VideoRun(shared_data / "video" / FRIDAY, whole, settings,
                  geometry=Geometry(max_side=64), crf=0) as run:
        run.warm_up()
        run.run()
    assert_same_frames(whole, out / FRIDAY, max_diff=2, mean_diff=0.01)


def test_a_rerun_skips_what_is_finished_without_starting_a_cluster(ran, shared_data, style):
    _, out, _ = ran
    sources = [shared_data / "video" / clip for clip in CLIPS]
    result = CliRunner().invoke(app, batch_cli(style, *sources, "-o", out, *OPTIONS))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["skipped"], report["done"], report["workers"]) == (3, 0, "none needed")


def test_ctrl_c_cancels_the_cluster_work_and_leaves_no_files(shared_data, style, tmp_path):
    src = shared_data / "video" / "bbb_cut_640x360_10s_audio.mp4"
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtstyle.cli",
         *batch_cli(style, src, "-o", out, "--ray", "--workers", "1", max_side=360)],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    writing = []
    while not writing and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
        writing = list(out.glob(".rtstyle-batch-*/.*partial*")) if out.is_dir() else []
    time.sleep(1.0)
    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 130, stderr.decode()[-2000:]
    assert list(out.iterdir()) == []
