"""The front door: what a new user meets first (no camera, style names, file modes, --help,
stray log lines, the `image IN OUT` form, a cut MP4), end to end through the CLI.

Checks of native stderr (OpenCV, torch's exporter) run the CLI in a subprocess: CliRunner only
sees what Python writes, and the noise came from C++ and from warnings printed at exit.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import upstream_reference as ref
from conftest import make_tiny_style
from PIL import Image
from typer.testing import CliRunner
from video_helpers import write_clip

from rtstyle.cli import app
from rtstyle.errors import MediaError, UnknownStyleError, WeightsError
from rtstyle.models.registry import StyleRegistry, discover, resolve_style, spec_from_file
from rtstyle.realtime import cameras
from rtstyle.realtime.sources import CameraSource

runner = CliRunner(env={"COLUMNS": "300"})  # long tmp paths stay on one line
REPO = Path(__file__).resolve().parents[1]
OPENCV_NOISE = re.compile(r"WARN|ERROR|VIDEOIO|OpenCV|cap_v4l|obsensor|video4linux|v4l2")


def _run_cli(*args: str, home: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_LOG_LEVEL"}
    env |= {"RTSTYLE_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "rtstyle.cli", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=timeout)


def _photo(path: Path, w: int = 67, h: int = 41, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


needs_no_camera = pytest.mark.skipif(
    not sys.platform.startswith("linux") or bool(cameras.linux_video_nodes()),
    reason="needs a Linux machine without any camera")


# 6. No camera -------------------------------------------------------------------------------

@needs_no_camera
@pytest.mark.parametrize("camera", ["0", "/dev/video3"])
def test_webcam_without_camera_says_so_in_one_line(tmp_path, camera):
    result = _run_cli("webcam", "--style", "monet", "--camera", camera,
                      "--output", str(tmp_path / "live.mp4"), home=tmp_path)
    assert result.returncode == 2, result.stderr
    said = " ".join(result.stderr.split())
    assert said == f"error: {cameras.no_camera_message()}", result.stderr
    assert "no camera found" in said and "using it" not in said
    assert not OPENCV_NOISE.search(result.stderr), result.stderr
    assert not (tmp_path / "live.mp4").exists()


@needs_no_camera
def test_probing_indices_is_quiet(tmp_path):
    """The Windows/macOS path (every OpenCV back-end tries each index) prints nothing either."""
    code = ("import rtstyle.realtime.cameras as c\n"
            "c._is_linux = lambda: False\n"
            "assert c.list_cameras(probe=3) == []\n"
            "try:\n    c.open_camera(0)\nexcept c.NoCameraError as e:\n    print(e)\n")
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("no camera found: none of the camera indices"), done.stdout
    assert done.stderr == "", done.stderr


@needs_no_camera
def test_busy_hint_only_when_the_device_exists():
    with pytest.raises(cameras.NoCameraError, match="no camera found") as missing:
        CameraSource(0)
    assert "using it" not in str(missing.value)
    with pytest.raises(MediaError, match="exists but could not be opened: another program "
                                         "may be using it") as busy:
        CameraSource("/dev/null")  # exists, but is no capture device
    assert not isinstance(busy.value, cameras.NoCameraError)


@needs_no_camera
def test_cameras_verb_with_no_camera(tmp_path):
    result = runner.invoke(app, ["cameras"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "no camera found"
    listing = runner.invoke(app, ["cameras", "--json"])
    assert listing.exit_code == 0, listing.output
    assert json.loads(listing.stdout) == {"cameras": [], "platform": sys.platform}
    native = _run_cli("cameras", "--json", home=tmp_path)
    assert native.returncode == 0 and native.stderr == "", native.stderr
    assert json.loads(native.stdout)["cameras"] == []


def test_v4l2_ctl_listing_is_parsed():
    text = """ioctl: VIDIOC_ENUM_FMT
	Type: Video Capture

	[0]: 'MJPG' (Motion-JPEG, compressed)
		Size: Discrete 1280x720
			Interval: Discrete 0.033s (30.000 fps)
			Interval: Discrete 0.067s (15.000 fps)
		Size: Discrete 640x480
			Interval: Discrete 0.033s (30.000 fps)
	[1]: 'YUYV' (YUYV 4:2:2)
		Size: Stepwise 16x16 - 1920x1080 with step 1/1
		Size: Discrete 640x480
			Interval: Discrete 0.033s (30.000 fps)
"""
    modes = cameras.parse_v4l2_formats(text)
    assert modes == [cameras.CameraMode(1280, 720, (30.0, 15.0), "MJPG"),
                     cameras.CameraMode(640, 480, (30.0,), "MJPG"),
                     cameras.CameraMode(640, 480, (30.0,), "YUYV")]
    assert modes[0].label() == "1280x720@30/15"


# 8. Style names ------------------------------------------------------------------------------

def _two_tag_style(home: Path, name: str = "ink") -> None:
    base = {"lr": 0.001, "steps": 100, "duration_s": 1.0}
    make_tiny_style(home / "styles" / f"{name}.v1.safetensors", name=name, tag="v1", seed=1,
                    training={**base, "temporal_weight": 0.0})
    make_tiny_style(home / "styles" / f"{name}.v2.safetensors", name=name, tag="v2", seed=2,
                    training={**base, "temporal_weight": 20.0, "duration_s": 9.0})


def test_styles_lists_one_row_per_style_and_all_tags_with_differences(rtstyle_home,
                                                                       no_bundled):
    _two_tag_style(rtstyle_home)
    make_tiny_style(rtstyle_home / "styles" / "solo.v1.safetensors", name="solo")
    listing = runner.invoke(app, ["styles", "--json"])
    assert listing.exit_code == 0, listing.output
    rows = json.loads(listing.stdout)["styles"]
    assert [(r["name"], r["tag"], r["tags"]) for r in rows] == [("ink", "v1", ["v1", "v2"]),
                                                               ("solo", "v1", ["v1"])]
    text = runner.invoke(app, ["styles"]).stdout
    assert len(re.findall(r"│ ink ", text)) == 1 and "v2" in text  # v2 shown as another tag

    every = runner.invoke(app, ["styles", "--all", "--json"])
    assert every.exit_code == 0, every.output
    rows = {r["full_name"]: r for r in json.loads(every.stdout)["styles"]}
    assert sorted(rows) == ["ink.v1", "ink.v2", "solo.v1"]
    # Settings that differ, not the ones shared, and not run facts such as the duration.
    assert rows["ink.v1"]["differs"] == {"training.temporal_weight": 0.0}
    assert rows["ink.v2"]["differs"] == {"training.temporal_weight": 20.0}
    assert rows["solo.v1"]["differs"] == {}
    assert rows["ink.v1"]["default"] is True and rows["ink.v2"]["default"] is False
    text = runner.invoke(app, ["styles", "--all"]).stdout
    assert "temporal_weight=20" in text and "duration" not in text


def test_bundled_styles_list_their_default_tag_once(rtstyle_home):
    specs = [s for s in discover().specs() if s.origin == "bundled"]
    if not specs:
        pytest.skip("no bundled styles in this build")
    rows = json.loads(runner.invoke(app, ["styles", "--json"]).stdout)["styles"]
    names = [r["name"] for r in rows]
    assert len(names) == len(set(names)) == len({s.name for s in specs})
    assert all(r["full_name"] == resolve_style(r["name"]).full_name for r in rows)
    every = json.loads(runner.invoke(app, ["styles", "--all", "--json"]).stdout)["styles"]
    assert len(every) == len(specs)


def test_style_names_are_case_insensitive(tmp_path, rtstyle_home, no_bundled):
    _two_tag_style(rtstyle_home)
    assert resolve_style("INK").full_name == "ink.v1"
    assert resolve_style("Ink.V2").full_name == "ink.v2"
    src = _photo(tmp_path / "p.png")
    out = tmp_path / "o.png"
    result = runner.invoke(app, ["image", str(src), "--style", "Ink", "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["style"] == "ink.v1" and out.is_file()


def test_aliases_and_their_tags_are_case_insensitive(tmp_path):
    reg = StyleRegistry()
    for tag in ("v1", "v2"):
        reg.register(spec_from_file(make_tiny_style(tmp_path / f"{tag}.safetensors",
                                                    name="monet-lite", tag=tag)))
    reg.add_alias("monet", "monet-lite.v2")
    assert reg.get("Monet").full_name == "monet-lite.v2"
    assert reg.get("MONET.v1").full_name == "monet-lite.v1"
    with pytest.raises(WeightsError, match="defined twice"):
        reg.register(spec_from_file(make_tiny_style(tmp_path / "x.safetensors",
                                                    name="Monet-Lite", tag="V1")))


def test_unknown_style_suggests_close_names(tmp_path, rtstyle_home, no_bundled):
    _two_tag_style(rtstyle_home, "mosaic")
    src = _photo(tmp_path / "p.png")
    result = runner.invoke(app, ["image", str(src), "--style", "mosiac"])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.replace("│", " ").split())  # Typer boxes a bad parameter
    assert "unknown style 'mosiac'; did you mean 'mosaic'? choose from: mosaic" in said
    with pytest.raises(UnknownStyleError) as info:
        resolve_style("mosaic.v9")
    assert info.value.suggestions == ["mosaic.v1", "mosaic.v2"]
    with pytest.raises(UnknownStyleError) as info:
        resolve_style("zzz")
    assert info.value.suggestions == [] and "did you mean" not in str(info.value)


# 9. File modes -------------------------------------------------------------------------------

@pytest.fixture
def umask_022():
    before = os.umask(0o022)
    yield
    os.umask(before)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_outputs_get_the_umask_mode(tmp_path, rtstyle_home, tiny_style_file, umask_022):
    src = _photo(tmp_path / "p.png")
    for out in (tmp_path / "o.png", tmp_path / "o.jpg"):
        result = runner.invoke(app, ["image", str(src), "--style", str(tiny_style_file),
                                     "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert out.stat().st_mode & 0o777 == 0o644, out
    torch.save(ref.TransformerNet().state_dict(), tmp_path / "net.pth")
    result = runner.invoke(app, ["styles", "import", str(tmp_path / "net.pth"), "--name", "net",
                                 "--json"])
    assert result.exit_code == 0, result.output
    written = Path(json.loads(result.stdout)["weights"])
    assert written.stat().st_mode & 0o777 == 0o644
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]  # no temp files left


# 10. --help and stray log lines --------------------------------------------------------------

@pytest.mark.parametrize("verb", [["video"], ["webcam"], ["image"], ["styles"], ["cameras"],
                                  ["bench"], ["export", "onnx"]])
def test_help_shows_flags_without_a_type(verb):
    result = runner.invoke(app, [*verb, "--help"])
    assert result.exit_code == 0, result.output
    assert "--json" in result.output
    assert "<bool>" not in result.output, result.output


def test_onnx_export_prints_only_its_own_line(tmp_path, tiny_style_file):
    out = tmp_path / "tiny.onnx"
    result = _run_cli("export", "onnx", str(out), "--style", str(tiny_style_file), home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.is_file()
    assert "FutureWarning" not in result.stderr, result.stderr
    assert "torchvision" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("wrote "), result.stderr


# 11. `rtstyle image IN OUT` ----------------------------------------------------------------

def test_second_path_that_is_a_new_image_is_the_output(tmp_path, rtstyle_home, tiny_style_file):
    src = _photo(tmp_path / "in.jpg")
    out = tmp_path / "out.jpg"
    result = runner.invoke(app, ["image", str(src), str(out), "--style", str(tiny_style_file),
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outputs"] == [str(out)]
    with Image.open(out) as img:
        assert img.size == (67, 41)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".jpg") == ["in.jpg",
                                                                                "out.jpg"]


@pytest.mark.parametrize("extra", [["b.jpg", "new.jpg"], ["newdir"]])
def test_ambiguous_missing_path_says_how_to_name_the_output(tmp_path, rtstyle_home,
                                                             tiny_style_file, extra):
    _photo(tmp_path / "a.jpg")
    _photo(tmp_path / "b.jpg", seed=1)
    args = ["image", str(tmp_path / "a.jpg"), *[str(tmp_path / e) for e in extra]]
    result = runner.invoke(app, [*args, "--style", str(tiny_style_file)])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert f"input not found: {tmp_path / extra[-1]}; to name the output, use -o" in said
    assert sorted(p.name for p in tmp_path.glob("*.jpg")) == ["a.jpg", "b.jpg"]


def test_missing_first_input_is_reported_as_such(tmp_path, rtstyle_home, tiny_style_file):
    result = runner.invoke(app, ["image", str(tmp_path / "typo.jpg"), str(tmp_path / "o.jpg"),
                                 "--style", str(tiny_style_file)])
    assert result.exit_code == 2, result.output
    assert "input not found" in result.output and "typo.jpg" in result.output


# 12. An MP4 cut before its index was written ------------------------------------------------

_KILLED_WRITER = """
import os, sys
import av, numpy as np
out = av.open(sys.argv[1], "w")
video = out.add_stream("libx264", rate=25)
video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
rng = np.random.default_rng(0)
for _ in range(120):
    frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8),
                                       format="rgb24")
    out.mux(video.encode(frame))
os._exit(0)  # killed while recording: the muxer never writes its index
"""


@pytest.mark.parametrize("how", ["cut_in_half", "writer_killed"])
def test_mp4_without_index_is_called_incomplete(tmp_path, rtstyle_home, tiny_style_file, how):
    clip = tmp_path / "cut.mp4"
    if how == "cut_in_half":
        full = write_clip(tmp_path / "full.mp4", frames=25)  # moov last: no faststart
        data = full.read_bytes()
        assert data.rfind(b"moov") > data.find(b"mdat") > 0
        clip.write_bytes(data[:len(data) // 2])
    else:
        subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(clip)], check=True,
                       timeout=120)
        assert b"moov" not in clip.read_bytes()
    out = tmp_path / "out.mp4"
    result = runner.invoke(app, ["video", str(clip), str(out), "--style", str(tiny_style_file)])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert f"{clip} is incomplete: the recording was cut before it was finalized " \
           "(no moov index)" in said
    assert "Invalid data" not in said
    assert not out.exists() and not list(tmp_path.glob(".out*"))
