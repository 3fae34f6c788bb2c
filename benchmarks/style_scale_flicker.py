"""Flicker of every style at several `--style-scale` settings: the evidence for a style file's
`video_style_scale` (issue #12's "≤3× the input's warping error with default settings").

For each style and scale: `rtstyle video` of the first `--frames` frames of a shared clip,
scaled to `--clip-width` (the near-lossless copy of `retrain_targets.py`, which both sides use),
with the default smoothing, then `../shared/tools/ewarp.py video` (pairs without cuts) and its
ratio to the input's own warping error.

    python benchmarks/style_scale_flicker.py --file paintings7.v1.safetensors --scale 1 --scale auto
    # prints a table, writes benchmarks/results/style_scale_flicker_cpu.json
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from retrain_targets import DATA, REPO, ewarp, scaled_copy, write_result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--style", action="append", default=[], help="style name or FILE#NAME")
    ap.add_argument("--file", type=Path, default=None, help="every style of a multi-style file")
    ap.add_argument("--scale", action="append", default=[], help="--style-scale values")
    ap.add_argument("--clip", default="mdn_flower_960x540_5s_audio.mp4",
                    help="clip file name in ../shared/data/video")
    ap.add_argument("--clip-width", type=int, default=480)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--out", type=Path,
                    default=REPO / "benchmarks" / "results" / "style_scale_flicker_cpu.json")
    args = ap.parse_args(argv)
    styles = list(args.style)
    if args.file:
        from rtstyle.models.weights import read_spec

        styles += [f"{args.file}#{n}" for n in read_spec(args.file).get("styles", [])]
    if not styles:
        ap.error("give --style or --file")
    scales = args.scale or ["1", "auto"]
    from rtstyle.realtime.benchmark import machine_info

    t0 = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="rtstyle-flicker-") as tmp:
        work = Path(tmp)
        clip = scaled_copy(DATA / "video" / args.clip, work, args.clip_width, args.frames)
        for style in styles:
            for scale in scales:
                out = work / "out.mp4"
                subprocess.run(["rtstyle", "video", str(clip), str(out), "--style", style,
                                "--max-frames", str(args.frames), "--overwrite",
                                "--style-scale", scale], check=True, capture_output=True)
                rows.append({"style": style, "scale": scale, **ewarp(clip, out, args.frames)})
                print(f"{style.split('#')[-1]:<12} --style-scale {scale:<5} "
                      f"warping error x{rows[-1]['ratio']:.2f} the input's", flush=True)
    result = {"machine": machine_info(), "command": "python benchmarks/style_scale_flicker.py "
              + " ".join(argv or sys.argv[1:]), "clip": args.clip, "clip_width": args.clip_width,
              "frames": args.frames, "rows": rows}
    write_result(args.out, result, t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
