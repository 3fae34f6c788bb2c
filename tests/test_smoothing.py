"""Run-time temporal smoothing: steadier on motion, sharp on still scenes, no ghosts after cuts."""

import json

import pytest
import torch
import torch.nn.functional as F

from rtstyle.errors import UserInputError
from rtstyle.flow import lucas_kanade_flow, to_gray, warp
from rtstyle.realtime.smoothing import NoSmoothing, TemporalSmoother, make_smoother

H, W = 72, 96


def _texture(seed, h=H + 24, w=W + 24, palette=None):
    """A smooth random texture (features a few pixels wide) in 0..1."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, h // 6 + 2, w // 6 + 2, generator=g)
    img = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
    if palette is not None:
        img = img * 0.3 + torch.tensor(palette).view(1, 3, 1, 1) * 0.7
    return img


def _translated_clip(n, step=(1.5, 0.75), seed=0, h=H, w=W):
    """Frames of a texture panned by `step` px per frame, with the exact flow t -> t-1."""
    canvas = _texture(seed, h + 24, w + 24)
    frames = []
    for t in range(n):
        flow = torch.zeros(1, 2, h, w)
        flow[:, 0] += 12 + step[0] * t
        flow[:, 1] += 12 + step[1] * t
        frames.append(warp(canvas, flow)[0])
    back = torch.zeros(1, 2, h, w)
    back[:, 0], back[:, 1] = step[0], step[1]
    return frames, back


def _flicker(clean, seed, sigma=0.06):
    g = torch.Generator().manual_seed(seed)
    return (clean + sigma * torch.randn(clean.shape, generator=g)).clamp(0, 1)


def _warping_error(frames, back_flow):
    errs = []
    for prev, cur in zip(frames, frames[1:], strict=False):
        warped, inside = warp(prev, back_flow)
        errs.append((((cur - warped) ** 2).mean(1, keepdim=True) * inside).sum() / inside.sum())
    return torch.stack(errs).mean().item()


def _stylize(frame):
    """A deterministic stand-in for a style: a colour remap the smoother knows nothing about."""
    return frame[:, [2, 0, 1]] ** 0.8


def test_lucas_kanade_recovers_a_known_translation():
    frames, back = _translated_clip(2, step=(2.5, -1.25))
    flow = lucas_kanade_flow(to_gray(frames[1]), to_gray(frames[0]))
    interior = flow[..., 8:-8, 8:-8]
    assert (interior[:, 0] - back[0, 0, 0, 0]).abs().mean() < 0.15
    assert (interior[:, 1] - back[0, 1, 0, 0]).abs().mean() < 0.15


@pytest.mark.parametrize("flow_method", ["dis", "lk"])
def test_smoothing_lowers_warping_error_on_a_panning_clip(flow_method):
    frames, back = _translated_clip(10)
    stylized = [_flicker(_stylize(f), seed=i) for i, f in enumerate(frames)]
    smoother = TemporalSmoother(strength=0.7, flow_method=flow_method)
    smoothed = [smoother(s, f) for s, f in zip(stylized, frames, strict=True)]
    per_frame_error = _warping_error(stylized, back)
    smoothed_error = _warping_error(smoothed, back)
    assert smoothed_error < 0.5 * per_frame_error, (smoothed_error, per_frame_error)
    clean = [_stylize(f) for f in frames]
    # Closer to the flicker-free stylization than the per-frame output, i.e. not smeared.
    crop = (..., slice(8, -8), slice(8, -8))
    err_smoothed = F.mse_loss(smoothed[-1][crop], clean[-1][crop])
    err_per_frame = F.mse_loss(stylized[-1][crop], clean[-1][crop])
    assert err_smoothed < 0.6 * err_per_frame
    assert _blur_leak(smoothed[-1][crop], clean[-1][crop]) < 0.5
    assert smoother.cuts == 0


def _box3(x):
    return F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)


def _blur_leak(out, clean):
    """How much of a 3×3 box blur is in `out`: 1.0 for `_box3(clean)`, ~0 for noise."""
    high = clean - _box3(clean)
    return (torch.dot((clean - out).flatten(), high.flatten()) / high.pow(2).sum()).item()


def test_static_scene_is_denoised_not_smeared():
    clean_src = _texture(3)[..., :H, :W]
    clean = _stylize(clean_src)
    smoother = TemporalSmoother(strength=0.7)
    for i in range(8):
        out = smoother(_flicker(clean, seed=100 + i), clean_src)
    assert F.mse_loss(out, clean).item() < 0.3 * F.mse_loss(_flicker(clean, 99), clean).item()
    assert abs(_blur_leak(out, clean)) < 0.1, "smoothing blurred a static scene"
    assert _blur_leak(_box3(clean), clean) == pytest.approx(1.0)

    # Without flicker a still frame must come back unchanged, not resampled.
    steady = TemporalSmoother(strength=0.9)
    for _ in range(4):
        out = steady(clean, clean_src)
    torch.testing.assert_close(out, clean, atol=1e-5, rtol=0)


@pytest.mark.parametrize("resample, keeps_texture", [("bicubic", True), ("bilinear", False)])
def test_texture_is_not_smeared_by_a_slow_pan(resample, keeps_texture):
    # Sub-pixel motion makes every warp resample the carried texture; the recursion compounds
    # any softening. Bicubic keeps >= 90 % of the per-frame high-frequency energy; the cheaper
    # bilinear default does not (the known cost of the default, and proof the check can fail).
    frames, _ = _translated_clip(10, step=(0.5, 0.25))
    smoother = TemporalSmoother(strength=0.7, resample=resample)
    for f in frames:
        out = smoother(_stylize(f), f)
    crop = (..., slice(8, -8), slice(8, -8))

    def high_energy(x):
        return (x - _box3(x))[crop].pow(2).mean().item()

    kept = high_energy(out) / high_energy(_stylize(frames[-1]))
    assert (0.9 <= kept <= 1.2) == keeps_texture, kept


def test_detail_window_keeps_each_frames_own_texture():
    frames, back = _translated_clip(8)
    stylized = [_flicker(_stylize(f), seed=i) for i, f in enumerate(frames)]
    whole, detail = TemporalSmoother(strength=0.7), TemporalSmoother(strength=0.7, detail_window=5)
    for s, f in zip(stylized, frames, strict=True):
        out_whole, out_detail = whole(s, f), detail(s, f)

    def high(x):
        return x - F.avg_pool2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), 5, stride=1)

    crop = (..., slice(8, -8), slice(8, -8))
    # Fine detail (here: the flicker noise) stays the current frame's; whole-frame blending
    # replaces most of it with history.
    own = F.mse_loss(high(out_detail)[crop], high(stylized[-1])[crop]).item()
    blended = F.mse_loss(high(out_whole)[crop], high(stylized[-1])[crop]).item()
    assert own < 0.25 * blended


def _pumping(clean, seed, amount=0.08):
    """Low-frequency flicker: a smooth per-frame colour field, as instance norm produces."""
    g = torch.Generator().manual_seed(seed)
    field = F.interpolate(torch.randn(1, 3, 3, 4, generator=g), size=clean.shape[-2:],
                          mode="bilinear", align_corners=False)
    return (clean + amount * field).clamp(0, 1)


def test_lowpass_blend_steadies_colour_pumping_and_keeps_each_frames_texture():
    # big enough that flow (and so the blend) runs at 1/4.5 size, as at 1/5 of a real frame
    frames, back = _translated_clip(10, h=216, w=288)
    stylized = [_flicker(_pumping(_stylize(f), seed=i), seed=40 + i, sigma=0.03)
                for i, f in enumerate(frames)]
    lowpass = TemporalSmoother(strength=0.8, blend="lowpass")
    whole = TemporalSmoother(strength=0.8, blend="frame")
    out = [lowpass(s, f) for s, f in zip(stylized, frames, strict=True)]
    out_whole = [whole(s, f) for s, f in zip(stylized, frames, strict=True)]

    def low(x):
        return F.avg_pool2d(F.pad(x, (4, 4, 4, 4), mode="replicate"), 9, stride=1)

    def high(x):
        return x - _box3(x)

    # the colour pumping (low frequencies) is steadied along the motion ...
    low_before = _warping_error([low(s) for s in stylized], back)
    low_after = _warping_error([low(o) for o in out], back)
    assert low_after < 0.5 * low_before, (low_after, low_before)
    # ... while the fine detail (here the per-pixel noise) stays the current frame's own;
    # whole-frame blending replaces most of it with history
    crop = (..., slice(8, -8), slice(8, -8))
    own = F.mse_loss(high(out[-1])[crop], high(stylized[-1])[crop]).item()
    replaced = F.mse_loss(high(out_whole[-1])[crop], high(stylized[-1])[crop]).item()
    assert own < 0.25 * replaced, (own, replaced)
    assert lowpass.cuts == 0


def test_lowpass_blend_leaves_a_still_frame_unchanged():
    clean_src = _texture(3)[..., :H, :W]
    clean = _stylize(clean_src)
    smoother = TemporalSmoother(strength=0.9, blend="lowpass")
    for _ in range(4):
        out = smoother(clean, clean_src)
    torch.testing.assert_close(out, clean, atol=1e-5, rtol=0)


@pytest.mark.parametrize("blend", ["frame", "lowpass"])
@pytest.mark.parametrize("second_palette", [(0.9, 0.2, 0.1), None], ids=["colour", "same-palette"])
def test_no_ghost_of_the_previous_shot_after_a_hard_cut(second_palette, blend):
    shot_a = _texture(5, palette=(0.1, 0.3, 0.9))[..., :H, :W]
    shot_b = _texture(6, palette=second_palette)[..., :H, :W]
    if second_palette is None:
        shot_a = _texture(5)[..., :H, :W]
    smoother = TemporalSmoother(strength=0.9, blend=blend)
    for i in range(5):
        smoother(_flicker(_stylize(shot_a), seed=i, sigma=0.02), shot_a)
    outputs, stylized = [], []
    for i in range(4):
        s = _flicker(_stylize(shot_b), seed=50 + i, sigma=0.02)
        stylized.append(s)
        outputs.append(smoother(s, shot_b))
    assert torch.equal(outputs[0], stylized[0]), "the cut frame must be the fresh stylization"
    assert smoother.cuts == 1
    ghost_a = _stylize(shot_a)
    for out in outputs:
        residual = (out - _stylize(shot_b)).flatten()
        ghost = (ghost_a - _stylize(shot_b)).flatten()
        # How much of the A->B difference leaks back in: ~0 means no ghost.
        leak = torch.dot(residual, ghost) / torch.dot(ghost, ghost)
        assert abs(leak.item()) < 0.02


@pytest.mark.parametrize("blend", ["frame", "lowpass"])
def test_reset_and_resolution_change_pass_the_frame_through(blend):
    src = _texture(7)[..., :H, :W]
    smoother = TemporalSmoother(blend=blend)
    smoother(_stylize(src), src)
    fresh = _flicker(_stylize(src), seed=1)
    smoother.reset()
    assert torch.equal(smoother(fresh, src), fresh)
    small_src = src[..., : H // 2, : W // 2]
    small = _stylize(small_src)
    assert torch.equal(smoother(small, small_src), small)


def test_no_smoothing_and_factory():
    from rtstyle.cli.common import DEFAULT_SMOOTH
    from rtstyle.realtime.smoothing import DEFAULT_STRENGTH

    assert DEFAULT_SMOOTH == DEFAULT_STRENGTH
    x = torch.rand(1, 3, 8, 8)
    assert NoSmoothing()(x, x) is x
    assert isinstance(make_smoother(0.0), NoSmoothing)
    assert isinstance(make_smoother(None), NoSmoothing)
    assert make_smoother(0.4).strength == 0.4
    with pytest.raises(UserInputError):
        TemporalSmoother(strength=1.5)
    with pytest.raises(UserInputError):
        TemporalSmoother(flow_scale=0)
    with pytest.raises(UserInputError):
        TemporalSmoother(flow_method="raft")
    with pytest.raises(UserInputError):
        TemporalSmoother(resample="nearest")
    with pytest.raises(UserInputError, match="blend"):
        TemporalSmoother(blend="median")


def test_bench_reports_a_smoothing_row():
    from rtstyle.realtime.benchmark import run_benchmark

    net = torch.nn.Conv2d(3, 3, 1)
    report = run_benchmark(net, torch.device("cpu"), sizes=[(64, 48)], backends=["eager"],
                           frames=2, warmup=1, smooth=0.5, smooth_blend="lowpass")
    rows = {r.backend: r for r in report.rows}
    assert rows["+smooth"].status == "ok" and rows["+smooth"].median_ms > 0
    assert "0.5" in rows["+smooth"].reason and "lowpass" in rows["+smooth"].reason

    # auto resolves against the benchmarked generator, as `video` and `webcam` do
    from rtstyle.models.stylizer import Stylizer

    for temporal_weight, expected in ((0.0, "frame"), (80.0, "lowpass")):
        stylizer = Stylizer(torch.nn.Conv2d(3, 3, 1), "0_1", temporal_weight=temporal_weight)
        report = run_benchmark(stylizer, torch.device("cpu"), sizes=[(64, 48)],
                               backends=["eager"], frames=2, warmup=1, smooth=0.5)
        reason = next(r.reason for r in report.rows if r.backend == "+smooth")
        assert f"{expected} blend" in reason, reason


def test_video_verb_smooths_by_default_and_no_smooth_turns_it_off(tmp_path, tiny_style_file):
    import av
    import numpy as np
    from typer.testing import CliRunner

    from rtstyle.cli import app
    from rtstyle.metrics.temporal import evaluate_temporal, iter_frames

    rng = np.random.default_rng(0)
    canvas = (_texture(11, h=48, w=64 + 16)[0].permute(1, 2, 0).numpy() * 255)
    clip = tmp_path / "pan.mp4"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"crf": "12"}
        for t in range(10):
            noisy = canvas[:, t:t + 64] + rng.normal(0, 6, (48, 64, 3))
            frame = av.VideoFrame.from_ndarray(np.clip(noisy, 0, 255).astype(np.uint8), "rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    runner = CliRunner()
    reports = {}
    for label, extra in (("smoothed", []), ("per_frame", ["--no-smooth"])):
        target = tmp_path / f"{label}.mp4"
        result = runner.invoke(app, ["video", str(clip), str(target), "--style",
                                     str(tiny_style_file), "--json", *extra])
        assert result.exit_code == 0, result.output
        reports[label] = evaluate_temporal(iter_frames(clip), iter_frames(target))
    assert reports["smoothed"].output < 0.8 * reports["per_frame"].output

    result = runner.invoke(app, ["video", str(clip), str(tmp_path / "low.mp4"), "--style",
                                 str(tiny_style_file), "--smooth-blend", "lowpass", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["smooth_blend"] == "lowpass"
    result = runner.invoke(app, ["video", str(clip), str(tmp_path / "bad.mp4"), "--style",
                                 str(tiny_style_file), "--smooth-blend", "median"])
    assert result.exit_code == 2 and "blend must be one of auto, frame, lowpass" in result.output
    assert not (tmp_path / "bad.mp4").exists()


def test_auto_blend_follows_the_generator_and_drops_history_on_a_switch():
    frames, _ = _translated_clip(4)
    steady = {"value": False}
    smoother = TemporalSmoother(strength=0.8, blend="auto", steady=lambda: steady["value"])
    assert smoother.active_blend == "frame"
    for f in frames[:3]:
        smoother(_flicker(_stylize(f), seed=1), f)
    steady["value"] = True  # e.g. the webcam's n key switched to a temporally trained style
    assert smoother.active_blend == "lowpass"
    fresh = _flicker(_stylize(frames[3]), seed=2)
    assert torch.equal(smoother(fresh, frames[3]), fresh), "history of the other blend leaked"
    assert TemporalSmoother(blend="auto").active_blend == "frame"  # nothing says steady


def test_steady_generator_comes_from_the_training_metadata(tmp_path):
    from conftest import make_tiny_style

    from rtstyle.models.loading import load_stylizer
    from rtstyle.realtime.controls import StyleCycler
    from rtstyle.realtime.engine import InferenceEngine

    plain = make_tiny_style(tmp_path / "plain.v1.safetensors", name="plain")
    steady = make_tiny_style(tmp_path / "steady.v1.safetensors", name="steady",
                             training={"temporal_weight": 80.0, "steps": 150})
    assert not load_stylizer(str(plain)).steady_generator
    assert load_stylizer(str(steady)).steady_generator
    cycler = StyleCycler([str(plain), str(steady)],
                         lambda name: InferenceEngine(load_stylizer(name), "cpu", backend="eager"))
    assert not cycler.steady_generator
    cycler.select(1)
    assert cycler.steady_generator


def test_video_auto_blend_is_lowpass_for_a_temporally_trained_style(tmp_path, one_torch_thread):
    from conftest import make_tiny_style
    from typer.testing import CliRunner

    from rtstyle.cli import app

    clip = tmp_path / "clip.mp4"
    steady = make_tiny_style(tmp_path / "steady.v1.safetensors", name="steady",
                             training={"temporal_weight": 80.0})
    runner = CliRunner()
    result = runner.invoke(app, ["video", "lavfi:testsrc2=size=96x64:rate=10:duration=0.5",
                                 str(clip), "--style", str(steady), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["smooth_blend"] == "lowpass"
    result = runner.invoke(app, ["video", "lavfi:testsrc2=size=96x64:rate=10:duration=0.5",
                                 str(tmp_path / "off.mp4"), "--style", str(steady), "--no-smooth",
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["smooth_blend"] is None
