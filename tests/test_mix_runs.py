"""`--mix` in `video` and `webcam`: several styles painted as one (issue #12 item 3)."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from rtstyle.cli import app

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SOURCE = "lavfi:testsrc2=size=96x64:rate=25:duration=1"
COMMON = ["--backend", "eager", "--device", "cpu", "--max-frames", "4", "--no-smooth",
          "--crf", "0", "--overwrite"]


def frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as box:
        return np.stack([f.to_ndarray(format="rgb24") for f in box.decode(video=0)]).astype(int)


def video(tmp_path: Path, name: str, *styles: str, mix: str | None = None) -> np.ndarray:
    out = tmp_path / f"{name}.mp4"
    args = ["video", SOURCE, str(out), *[a for s in styles for a in ("--style", s)], *COMMON]
    result = CliRunner().invoke(app, [*args, *(["--mix", mix] if mix else [])])
    assert result.exit_code == 0, result.output
    return frames(out)


def test_video_mix_of_one_style_is_that_style_and_an_even_mix_lies_between(tmp_path):
    """Styles of two files (the lite nets): the mix blends their outputs. (Styles of one
    multi-style file blend their norms instead: tests/test_mid_multistyle.py.)"""
    monet, wave = video(tmp_path, "monet", "monet-lite"), video(tmp_path, "wave", "ukiyoe-lite")
    assert np.abs(video(tmp_path, "m10", "monet-lite", "ukiyoe-lite", mix="1,0") - monet).max() <= 1
    assert np.abs(video(tmp_path, "m01", "monet-lite", "ukiyoe-lite", mix="0,1") - wave).max() <= 1
    half = video(tmp_path, "half", "monet-lite", "ukiyoe-lite", mix="0.5,0.5")
    assert np.abs(half - (monet + wave) / 2).mean() < 3  # the outputs' blend, up to encoding
    assert min(np.abs(half - monet).mean(), np.abs(half - wave).mean()) > 3


def test_video_with_several_styles_needs_mix(tmp_path):
    result = CliRunner().invoke(app, ["video", SOURCE, str(tmp_path / "x.mp4"), "--style",
                                      "monet", "--style", "ukiyoe", *COMMON])
    assert result.exit_code == 2
    assert "--mix" in result.output and not (tmp_path / "x.mp4").exists()


def test_bad_mix_is_one_line_exit_2(tmp_path):
    result = CliRunner().invoke(app, ["video", SOURCE, str(tmp_path / "x.mp4"), "--style",
                                      "monet", "--style", "ukiyoe", "--mix", "1", *COMMON])
    assert result.exit_code == 2 and "one weight per --style" in result.output


def test_webcam_mixes_two_styles_into_one(tmp_path):
    out = tmp_path / "live.mp4"
    result = CliRunner().invoke(app, [
        "webcam", "--camera", "lavfi:testsrc2=size=96x64:rate=25", "--output", str(out),
        "--style", "monet", "--style", "ukiyoe", "--mix", "0.3,0.7", "--backend", "eager",
        "--device", "cpu", "--max-frames", "5", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert report["style"] == "monet*0.3+ukiyoe*0.7"
    assert len(frames(out)) == 5
