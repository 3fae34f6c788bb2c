"""Animated before/after of temporal stability on a shared clip, for the README.

Panels, left to right: the input, per-frame stylization by a net trained without the temporal
term (what every per-frame tool shows), and rtstyle's default (the temporally trained net with
the smoothing `rtstyle video` picks for it). Flicker does not show in a still; it does here.

    python benchmarks/temporal_gif.py --style ukiyoe --baseline-style ukiyoe-lite.v3

The nets trained without any temporal term (`*-lite.v1`) left the package with the v4 release;
git history keeps them, and a file path works as a style:

    git show 1fcc0d6:rtstyle/assets/ukiyoe-lite.v1.safetensors > /tmp/ukiyoe-lite.v1.safetensors
    python benchmarks/temporal_gif.py --baseline-style /tmp/ukiyoe-lite.v1.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from rtstyle.images import image_to_tensor, resize_max_side, tensor_to_image
from rtstyle.metrics.temporal import iter_frames
from rtstyle.models.loading import load_stylizer
from rtstyle.realtime.smoothing import DEFAULT_STRENGTH, TemporalSmoother

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def labelled(tile: np.ndarray, text: str) -> np.ndarray:
    """The tile with `text` on a dark band at the top (PIL's built-in bitmap font)."""
    image = Image.fromarray(tile)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, image.width, 12), fill=(0, 0, 0))
    draw.text((3, 1), text, fill=(255, 255, 255))
    return np.asarray(image)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--style", default="ukiyoe", help="rtstyle's style (default tag)")
    ap.add_argument("--baseline-style", default="ukiyoe-lite.v3",
                    help="per-frame baseline: another net for the same painting (a name or a "
                         "file; see above for one without the temporal term)")
    ap.add_argument("--clip", type=Path, default=DATA / "video" / "bbb_cut_640x360_10s_audio.mp4")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--tile-width", type=int, default=200)
    ap.add_argument("--fps", type=float, default=12.0)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "temporal_before_after.gif")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    ours, base = load_stylizer(args.style), load_stylizer(args.baseline_style)
    smoother = TemporalSmoother(strength=DEFAULT_STRENGTH, blend="auto",
                                steady=lambda: ours.steady_generator)
    titles = ("input", f"{base.name}, per frame", f"{ours.name} + smoothing")
    panels = []
    with torch.no_grad():
        for _, rgb in iter_frames(args.clip, max_frames=args.frames):
            x = image_to_tensor(rgb, torch.device("cpu"))
            outputs = (rgb, tensor_to_image(base(x)), tensor_to_image(smoother(ours(x), x)))
            tiles = [labelled(resize_max_side(o, args.tile_width), t)
                     for o, t in zip(outputs, titles, strict=True)]
            panels.append(Image.fromarray(np.concatenate(tiles, axis=1)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    panels[0].save(args.out, save_all=True, append_images=panels[1:], loop=0, optimize=True,
                   duration=round(1000 / args.fps))
    print(f"{args.out}: {len(panels)} frames, {args.out.stat().st_size // 1024} KB "
          f"({', '.join(titles)}; {smoother.active_blend} blend)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
