"""The run objects every app uses: one data path, checks before the warm-up, one `--strength`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner
from video_helpers import probe

from rtstyle.cli import app
from rtstyle.errors import MediaError, OutputExistsError, UnknownStyleError
from rtstyle.images import read_image, write_image
from rtstyle.realtime.runs import Geometry, LiveRun, StyleSettings, VideoRun

pytestmark = pytest.mark.usefixtures("one_torch_thread")
LAVFI = "lavfi:testsrc=size=64x48:rate=25:duration=0.4"


def settings(style, **kw) -> StyleSettings:
    return StyleSettings(styles=(str(style),), device="cpu", backend="eager", **kw)


def test_video_run_is_the_whole_data_path(tiny_style_file, tmp_path):
    target = tmp_path / "out.mp4"
    with VideoRun(LAVFI, target, settings(tiny_style_file), geometry=Geometry(scale=0.5),
                  max_frames=8) as run:
        assert run.total_frames == 8  # lavfi declares no length; the limit is the length
        assert run.warm_up().startswith("eager/fp32")
        report = run.run()
    assert report.size == (32, 24) and report.stats.written == 8
    assert report.first_frame_s is not None and report.wall_s >= report.warmup_s
    assert probe(target).frames == 8
    data = report.to_dict()
    assert data["frames_written"] == 8 and data["backend"].startswith("eager")


@pytest.mark.parametrize("problem", ["missing input", "existing output", "unknown style"])
def test_bad_input_fails_on_entry_before_any_model_or_file(tiny_style_file, tmp_path, problem):
    target = tmp_path / "out.mp4"
    source, style = LAVFI, str(tiny_style_file)
    expected = {"missing input": MediaError, "existing output": OutputExistsError,
                "unknown style": UnknownStyleError}[problem]
    if problem == "missing input":
        source = str(tmp_path / "nope.mp4")
    elif problem == "existing output":
        target.write_bytes(b"keep me")
    else:
        style = "no-such-style"
    run = VideoRun(source, target, settings(style))
    with pytest.raises(expected):
        with run:
            pytest.fail("entered a run with bad input")
    assert run.process is None or problem == "unknown style"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "tiny.v1.safetensors") == (
        ["out.mp4"] if problem == "existing output" else [])


def test_live_run_opens_its_sink_before_loading_the_style(tmp_path, monkeypatch):
    """A missing display is found before anything slow: the style is never even loaded."""
    import sys

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    run = LiveRun("lavfi:testsrc=size=64x48:rate=25", "window",
                  settings("no-such-style-would-fail-later"))
    with pytest.raises(Exception, match="no display"):
        with run:
            pass
    assert run.process is None


def test_strength_means_the_same_in_image_and_video(tiny_style_file, tmp_path):
    """--strength 0.5 is half way between the input and the full style, in every verb."""
    rng = np.random.default_rng(0)
    photo = tmp_path / "p.png"
    write_image(photo, rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    outputs = {}
    for strength in ("1", "0.5"):
        out = tmp_path / f"s{strength}.png"
        result = CliRunner().invoke(app, ["image", str(photo), "-o", str(out), "--style",
                                          str(tiny_style_file), "--strength", strength,
                                          "--device", "cpu"])
        assert result.exit_code == 0, result.output
        outputs[strength] = read_image(out).astype(float)
    halfway = (read_image(photo).astype(float) + outputs["1"]) / 2
    assert np.abs(outputs["0.5"] - halfway).max() <= 1.0

    import torch

    from rtstyle.realtime.controls import StyleCycler
    from rtstyle.stills import stylize_rgb

    rgb = read_image(photo)
    with VideoRun(LAVFI, tmp_path / "v.mp4", settings(tiny_style_file, strength=0.5)) as run:
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
        video_half = (run.process(x)[0].permute(1, 2, 0).clamp(0, 1) * 255).round().numpy()
    assert isinstance(run.process, StyleCycler)
    image_half = stylize_rgb(run.process.engine.module, rgb, torch.device("cpu"), strength=0.5)
    assert np.abs(video_half - image_half.astype(float)).max() <= 1.0


def test_bench_times_the_default_bundled_style_unless_told(tmp_path):
    result = CliRunner().invoke(app, ["bench", "--device", "cpu", "--size", "64x48",
                                      "--backend", "eager", "--frames", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"]["style"].startswith("monet") and report["model"]["weights"] == "trained"


def test_bench_refuses_style_and_arch_together(tiny_style_file):
    result = CliRunner().invoke(app, ["bench", "--style", str(tiny_style_file), "--arch",
                                      "johnson-lite", "--device", "cpu"])
    assert result.exit_code == 2, result.output


def test_live_run_leaves_objects_it_did_not_open_to_their_opener(tiny_style_file):
    """An app (the web server) may hand in its own source and sink; the run closes neither."""
    from rtstyle.realtime.frames import RGB
    from rtstyle.realtime.sources import FileSource

    class MemorySink:
        accepts = RGB

        def __init__(self):
            self.frames, self.closed = [], False

        def write(self, frame):
            self.frames.append(frame)

        def end_of_input(self):
            pass

        def describe(self):
            return "memory"

        def close(self):
            self.closed = True

    class CountingSource(FileSource):
        closes = 0

        def close(self):
            CountingSource.closes += 1
            super().close()

    sink = MemorySink()
    with CountingSource("lavfi:testsrc=size=64x48:rate=50:duration=0.2", live=True) as source:
        with LiveRun(source, sink, settings(tiny_style_file)) as run:
            report = run.run()
        assert CountingSource.closes == 0 and not sink.closed
        assert report.stats.written == len(sink.frames) > 0 and report.output == "memory"


def test_a_short_file_run_does_not_pay_for_a_compile(tiny_style_file, tmp_path, monkeypatch):
    """The run tells `auto` how many frames it will process; with nothing cached, a build that
    cannot pay for itself over 3 frames is skipped, and the reason is in the backend label."""
    monkeypatch.setenv("RTSTYLE_HOME", str(tmp_path / "home"))
    s = StyleSettings(styles=(str(tiny_style_file),), device="cpu", backend="auto")
    with VideoRun("lavfi:testsrc=size=192x144:rate=25:duration=1", tmp_path / "o.mp4", s,
                  max_frames=3) as run:
        label = run.warm_up()
        report = run.run()
    assert label.startswith("eager/"), label
    assert "compile" in label  # says why compile was not built
    assert report.stats.written == 3


def test_video_and_webcam_take_the_styles_default_strength_unless_given(tmp_path, rtstyle_home,
                                                                          no_bundled):
    from rtstyle.cli.run import _style_settings
    from rtstyle.models.loading import default_strength
    from rtstyle.models.weights import read_spec, read_tensors, write_style_file
    from tests.conftest import make_tiny_style

    made = make_tiny_style(tmp_path / "made.v1.safetensors", name="soft")
    write_style_file(rtstyle_home / "styles" / "soft.v1.safetensors", read_tensors(made),
                     {**read_spec(made), "default_strength": 0.6}, dtype=None)
    make_tiny_style(rtstyle_home / "styles" / "hard.v1.safetensors", name="hard")
    assert default_strength(["hard"]) == 1.0 and default_strength(["soft", "hard"]) == 0.6
    options = {"style": ["soft"], "style_image": None, "mix": None, "preserve_color": None,
               "no_smooth": False, "smooth": 0.7, "style_scale": "1", "strength": None}
    assert _style_settings(options).strength == 0.6
    assert _style_settings({**options, "strength": 1.0}).strength == 1.0
    assert _style_settings({**options, "style": ["hard"]}).strength == 1.0
