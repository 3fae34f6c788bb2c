"""Temporal stability benchmark: per-frame stylization vs run-time smoothing.

For each sequence (the Sintel RAFT demo frames and a shared clip) it stylizes every frame,
runs `TemporalSmoother` over the stylized frames, and reports

* the warping error (Lai et al. 2018, DIS flow on the inputs) of the input (the floor), the
  per-frame output and the smoothed output, and the ratio smoothed / per-frame (target <= 0.5);
* the Gram style loss (VGG-19 relu1_1..relu4_1) against the style painting, per-frame vs
  smoothed (target: at most 10 % worse), because smoothing must not wash the style out;
* the cost of smoothing as a share of the stylizer's frame time at 1280x720 on this device
  (target <= 15 %), timed interleaved frame by frame so machine load hits both alike.

With no trained style installed it uses a fixed-seed untrained LiteTransformerNet: real
convolutions and instance norms, so its flicker under input changes is real, but its "style"
is noise. Pass --style NAME|FILE to use a trained one.

    python benchmarks/temporal.py                     # writes benchmarks/results/temporal_cpu.json

`--baseline-style` adds a second per-frame baseline from another style (e.g. the same painting
without the temporal training term, a `ukiyoe-lite.v1` file from git history next to
`ukiyoe-lite.v3`), so the whole system (a steadier generator plus smoothing) is compared with
plain per-frame stylization.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from rtstyle.images import image_to_tensor, read_image, resize_max_side, tensor_to_image
from rtstyle.metrics.temporal import evaluate_temporal, iter_frames
from rtstyle.models.stylizer import Stylizer
from rtstyle.models.vgg import load_vgg19
from rtstyle.realtime.smoothing import TemporalSmoother

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
DEFAULT_PAINTING = DATA / "styles" / "hokusai_great_wave.jpg"


def bundled_style() -> str | None:
    manifest = json.loads((REPO / "rtstyle" / "assets" / "manifest.json").read_text())
    styles = manifest.get("styles", [])
    return styles[0]["name"] if styles else None


def build_stylizer(style: str | None, device: torch.device) -> tuple[Stylizer, str, Path | None]:
    """The requested/bundled style, else a fixed-seed untrained lite net (range -1..1)."""
    if style:
        from rtstyle.models.loading import load_stylizer
        from rtstyle.models.registry import resolve_style

        stylizer = load_stylizer(style, device=device)
        image = resolve_style(style).meta.get("style", {}).get("image")
        painting = DATA / "styles" / Path(image).name if image else None
        if painting is not None and not painting.is_file():
            painting = None
        return stylizer, stylizer.name or style, painting
    from rtstyle.models.lite import LiteTransformerNet

    torch.manual_seed(0)
    net = LiteTransformerNet().to(device)
    return Stylizer(net, "-1_1").eval(), "untrained LiteTransformerNet (seed 0)", None


def gram(features: torch.Tensor) -> torch.Tensor:
    n, c, h, w = features.shape
    f = features.flatten(2)
    return f @ f.transpose(1, 2) / (c * h * w)


class StyleLoss:
    """Sum over relu1_1..relu4_1 of the MSE between Gram matrices of a frame and the painting."""

    def __init__(self, painting: Path, device: torch.device):
        self.vgg = load_vgg19(device=device)
        self.device = device
        style = image_to_tensor(resize_max_side(read_image(painting), 512), device)
        with torch.no_grad():
            feats = self.vgg(style, layers=STYLE_LAYERS)
        self.targets = {k: gram(v) for k, v in feats.items()}

    @torch.no_grad()
    def __call__(self, rgb: np.ndarray) -> float:
        feats = self.vgg(image_to_tensor(rgb, self.device), layers=STYLE_LAYERS)
        return sum(torch.mean((gram(feats[k]) - self.targets[k]) ** 2).item() for k in feats)


def stylize_sequence(frames, stylizer, smoother, device):
    """Per-frame and smoothed outputs (uint8) for a list of (name, rgb) frames."""
    smoother.reset()
    per_frame, smoothed = [], []
    with torch.no_grad():
        for name, rgb in frames:
            x = image_to_tensor(rgb, device)
            y = stylizer(x)
            per_frame.append((name, tensor_to_image(y)))
            smoothed.append((name, tensor_to_image(smoother(y, x))))
    return per_frame, smoothed


def time_at_720p(clip: Path, stylizer, smoother, device, frames: int) -> dict:
    """Interleaved per-frame timings of the stylizer and of the smoother on 1280x720 frames."""
    smoother.reset()
    t_style, t_smooth = [], []
    with torch.no_grad():
        for index, (_, rgb) in enumerate(iter_frames(clip, max_frames=frames + 1)):
            x = image_to_tensor(rgb, device)
            t0 = time.perf_counter()
            y = stylizer(x)
            t1 = time.perf_counter()
            smoother(y, x)
            t2 = time.perf_counter()
            if index > 0:  # the first call warms up allocations and does no flow
                t_style.append(t1 - t0)
                t_smooth.append(t2 - t1)
    style_ms = 1000 * statistics.median(t_style)
    smooth_ms = 1000 * statistics.median(t_smooth)
    return {"size": f"{rgb.shape[1]}x{rgb.shape[0]}", "frames": len(t_style),
            "stylizer_ms": style_ms, "smoother_ms": smooth_ms,
            "smoother_pct_of_frame": 100 * smooth_ms / style_ms}


def write_strip(path: Path, frames, per_frame, smoothed, start: int, tile_width: int = 320):
    """Rows: 3 consecutive frames; columns: input | per-frame | smoothed."""
    from PIL import Image

    rows = []
    for i in range(start, start + 3):
        tiles = [resize_max_side(seq[i][1], tile_width) for seq in (frames, per_frame, smoothed)]
        rows.append(np.concatenate(tiles, axis=1))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--style", default=None, help="style name or file (default: first bundled, "
                                                  "else an untrained lite net)")
    ap.add_argument("--painting", type=Path, default=None, help="painting for the Gram loss")
    ap.add_argument("--strength", type=float, default=0.7)
    ap.add_argument("--flow-scale", type=float, default=0.2)
    ap.add_argument("--detail-window", type=int, default=0,
                    help="TemporalSmoother detail_window (0 = blend whole frames)")
    ap.add_argument("--blend", choices=("auto", "frame", "lowpass"), default="auto",
                    help="TemporalSmoother blend (whole frames, or low frequencies only); auto: "
                         "what `rtstyle video` picks for this style")
    ap.add_argument("--resample", choices=("bilinear", "bicubic"), default="bilinear",
                    help="TemporalSmoother resample (how the previous output is warped)")
    ap.add_argument("--clip", type=Path, default=DATA / "video" / "bbb_cut_640x360_10s_audio.mp4")
    ap.add_argument("--clip-frames", type=int, default=36)
    ap.add_argument("--timing-clip", type=Path, default=DATA / "video" / "bbb_1280x720_5s_audio.mp4")
    ap.add_argument("--timing-frames", type=int, default=8)
    ap.add_argument("--baseline-style", default=None,
                    help="also compare with per-frame output of this style (same painting)")
    ap.add_argument("--no-timing", action="store_true", help="skip the 1280x720 timing")
    ap.add_argument("--no-strip", action="store_true", help="do not write the still strip")
    ap.add_argument("--timing-only", action="store_true", help="only the 1280x720 timing")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--json-out", type=Path, default=REPO / "benchmarks/results/temporal_cpu.json")
    ap.add_argument("--strip", type=Path, default=REPO / "docs/temporal_strip.png")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    style = args.style or bundled_style()
    stylizer, style_label, painting = build_stylizer(style, device)
    style_loss = StyleLoss(args.painting or painting or DEFAULT_PAINTING, device)
    smoother = TemporalSmoother(strength=args.strength, flow_scale=args.flow_scale,
                                detail_window=args.detail_window, resample=args.resample,
                                blend=args.blend,
                                steady=lambda: getattr(stylizer, "steady_generator", False))
    other = build_stylizer(args.baseline_style, device)[0] if args.baseline_style else None

    sequences = {} if args.timing_only else {
        "sintel_raft_demo": list(iter_frames(DATA / "flow" / "raft_demo_frames")),
        args.clip.stem: list(iter_frames(args.clip, max_frames=args.clip_frames)),
    }
    results = {"style": style_label, "device": "cpu", "threads": args.threads,
               "strength": args.strength, "flow_scale": args.flow_scale,
               "detail_window": args.detail_window, "resample": args.resample,
               "blend": smoother.active_blend,
               "baseline_style": other.name if other is not None else None,
               "command": "python " + " ".join(["benchmarks/temporal.py", *(argv or sys.argv[1:])]),
               "sequences": {}}
    for label, frames in sequences.items():
        per_frame, smoothed = stylize_sequence(frames, stylizer, smoother, device)
        base = evaluate_temporal(frames, smoothed, baseline=per_frame)
        gram_pf = statistics.mean(style_loss(f) for _, f in per_frame)
        gram_sm = statistics.mean(style_loss(f) for _, f in smoothed)
        results["sequences"][label] = {
            "frames": len(frames), "size": f"{frames[0][1].shape[1]}x{frames[0][1].shape[0]}",
            "warping_error_input": base.input, "warping_error_per_frame": base.baseline,
            "warping_error_smoothed": base.output, "warping_ratio": base.ratio_to_baseline,
            "gram_loss_per_frame": gram_pf, "gram_loss_smoothed": gram_sm,
            "gram_loss_change_pct": 100 * (gram_sm - gram_pf) / gram_pf,
            "scene_cuts": smoother.cuts,
        }
        if other is not None:
            with torch.no_grad():
                flat = [(n, tensor_to_image(other(image_to_tensor(f, device)))) for n, f in frames]
            ref = evaluate_temporal(frames, flat)
            gram_ref = statistics.mean(style_loss(f) for _, f in flat)
            results["sequences"][label]["vs_baseline_style"] = {
                "warping_error_per_frame": ref.output,
                "per_frame_ratio": base.baseline / ref.output,
                "smoothed_ratio": base.output / ref.output,
                "gram_loss_per_frame": gram_ref,
                "per_frame_gram_change_pct": 100 * (gram_pf - gram_ref) / gram_ref,
                "smoothed_gram_change_pct": 100 * (gram_sm - gram_ref) / gram_ref,
            }
        if label == "sintel_raft_demo" and not args.no_strip:
            write_strip(args.strip, frames, per_frame, smoothed, start=4)
    if not args.no_timing:
        results["timing_720p"] = time_at_720p(args.timing_clip, stylizer, smoother, device,
                                              args.timing_frames)

    print(f"style: {style_label}; strength {args.strength}, flow scale {args.flow_scale}, "
          f"{smoother.active_blend} blend, detail window {args.detail_window}, {args.resample} warp, "
          f"{args.threads} threads")
    header = f"{'sequence':28s} {'input':>9s} {'per-frame':>10s} {'smoothed':>9s} {'ratio':>6s} " \
             f"{'gram pf':>9s} {'gram sm':>9s} {'Δgram':>7s}"
    print(header)
    for label, r in results["sequences"].items():
        print(f"{label:28s} {r['warping_error_input']:9.5f} {r['warping_error_per_frame']:10.5f} "
              f"{r['warping_error_smoothed']:9.5f} {r['warping_ratio']:6.2f} "
              f"{r['gram_loss_per_frame']:9.3g} {r['gram_loss_smoothed']:9.3g} "
              f"{r['gram_loss_change_pct']:+6.1f}%")
        b = r.get("vs_baseline_style")
        if b:
            print(f"{'  vs ' + results['baseline_style']:28s} {'':9s} {b['warping_error_per_frame']:10.5f} "
                  f"{'':9s} per-frame {b['per_frame_ratio']:.2f} ({b['per_frame_gram_change_pct']:+.1f}% "
                  f"gram), smoothed {b['smoothed_ratio']:.2f} ({b['smoothed_gram_change_pct']:+.1f}% gram)")
    t = results.get("timing_720p")
    if t:
        print(f"1280x720: stylizer {t['stylizer_ms']:.0f} ms, smoother {t['smoother_ms']:.0f} ms "
              f"= {t['smoother_pct_of_frame']:.1f}% of frame time (median of {t['frames']})")
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
