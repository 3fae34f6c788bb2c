"""Warping-error metric, `.flo` reading, occlusion masks and `rtstyle eval temporal`."""

import json

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from rtstyle.cli import app
from rtstyle.errors import MediaError, UserInputError
from rtstyle.flow import consistency_mask, read_flo, write_flo
from rtstyle.images import write_image
from rtstyle.metrics.temporal import (
    FlowPair,
    evaluate_temporal,
    iter_frames,
    pair_warping_error,
    read_flow_pair,
)


def _textured_frames(n, h=41, w=67, shift=2, seed=0):
    """Frames of a random texture panned right by `shift` px per frame (uint8 RGB)."""
    rng = np.random.default_rng(seed)
    canvas = rng.integers(0, 256, (h, w + shift * n, 3), dtype=np.uint8)
    canvas = np.ascontiguousarray(np.repeat(np.repeat(canvas[::3, ::3], 3, 0), 3, 1)[:h])
    return [(f"f{t:03d}", np.ascontiguousarray(canvas[:, shift * t: shift * t + w]))
            for t in range(n)]


def test_identical_frames_score_zero():
    frames = _textured_frames(1) * 4
    report = evaluate_temporal(frames, frames, baseline=frames)
    assert report.pairs == 3
    assert report.output < 1e-10 and report.input < 1e-10 and report.baseline < 1e-10


def test_known_translation_warps_to_zero_and_flicker_scores_above_it():
    frames = _textured_frames(3, shift=2)
    # frame t at x equals frame t+1 at x - 2: flow t -> t+1 is (-2, 0).
    flow = np.zeros((41, 67, 2), np.float32)
    flow[..., 0] = -2
    pair = FlowPair(flow, np.ones((41, 67), bool))
    assert pair_warping_error(frames[0][1], frames[1][1], pair) < 1e-10
    moved = pair_warping_error(frames[0][1], frames[1][1], FlowPair(np.zeros_like(flow),
                                                                   pair.valid))
    assert moved > 0.01
    rng = np.random.default_rng(1)
    flicker = [(n, np.clip(f.astype(int) + rng.integers(-20, 21, f.shape), 0, 255).astype(np.uint8))
               for n, f in frames]
    report = evaluate_temporal(frames, flicker)
    assert report.input < 1e-3 < report.output


def test_ground_truth_flow_lowers_the_error_on_sintel(shared_data):
    for seq in ("sintel_alley_1", "sintel_market_5"):
        root = shared_data / "flow" / seq
        pair = read_flow_pair(root / "gt", "frame_0002")
        assert pair.flow.shape == (436, 1024, 2)
        assert 0.5 < pair.valid.mean() < 1.0, "occlusion mask not applied"
        frames = dict(iter_frames(root / "final"))
        a, b = frames["frame_0002"], frames["frame_0003"]
        no_warp = FlowPair(np.zeros_like(pair.flow), pair.valid)
        assert pair_warping_error(a, b, pair) < 0.4 * pair_warping_error(a, b, no_warp)


def test_flow_folder_scores_only_pairs_with_ground_truth(shared_data):
    root = shared_data / "flow" / "sintel_alley_1"
    report = evaluate_temporal(iter_frames(root / "final"), iter_frames(root / "clean"),
                               flow_dir=root / "gt")
    assert report.pairs == 1 and report.flow == "ground truth"
    assert 0 < report.input < report.output


def test_flo_round_trip_and_magic_check(tmp_path):
    flow = np.random.default_rng(0).normal(size=(5, 7, 2)).astype(np.float32)
    np.testing.assert_array_equal(read_flo(write_flo(tmp_path / "a.flo", flow)), flow)
    bad = tmp_path / "bad.flo"
    bad.write_bytes(b"HEIP" + (tmp_path / "a.flo").read_bytes()[4:])
    with pytest.raises(MediaError, match="magic"):
        read_flo(bad)
    short = tmp_path / "short.flo"
    short.write_bytes((tmp_path / "a.flo").read_bytes()[:-4])
    with pytest.raises(MediaError, match="bytes"):
        read_flo(short)


def test_forward_backward_check_flags_inconsistent_and_outgoing_pixels():
    fwd = np.zeros((20, 30, 2), np.float32)
    fwd[..., 0] = 3
    bwd = -fwd
    valid = consistency_mask(fwd, bwd)
    assert valid[:, :27].all() and not valid[:, 27:].any(), "pixels leaving the frame"
    broken = bwd.copy()
    broken[5:10, 5:15] = 4.0
    valid = consistency_mask(fwd, broken)
    assert not valid[5:10, 3:11].any() and valid[12:, :20].all()


def test_different_frame_counts_are_rejected():
    frames = _textured_frames(3)
    with pytest.raises(UserInputError, match="frame counts"):
        evaluate_temporal(frames, frames[:2])


def _write_clip(path, frames, fps=10):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "10"}
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    return path


def test_cli_scores_a_video_against_folders(tmp_path):
    frames = _textured_frames(5, h=48, w=64, shift=1)
    clip = _write_clip(tmp_path / "in.mp4", [f for _, f in frames])
    styled, flat = tmp_path / "styled", tmp_path / "flat"
    rng = np.random.default_rng(2)
    for name, rgb in frames:
        write_image(styled / f"{name}.png", 255 - rgb)
        noisy = np.clip(255 - rgb.astype(int) + rng.integers(-40, 41, rgb.shape), 0, 255)
        write_image(flat / f"{name}.png", noisy.astype(np.uint8))
    result = CliRunner().invoke(app, ["eval", "temporal", "--input", str(clip), "--output",
                                      str(styled), "--baseline", str(flat), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["pairs"] == 4 and report["flow"] == "DIS medium"
    assert report["output"] < report["baseline"] and report["ratio_to_baseline"] < 1

    result = CliRunner().invoke(app, ["eval", "temporal", "--input", str(clip),
                                      "--output", str(tmp_path / "missing")])
    assert result.exit_code == 2, result.output
