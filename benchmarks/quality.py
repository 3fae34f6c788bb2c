"""Style quality: how close a style's output is to its painting, and how much photo it keeps.

For each style, over the evaluation photos (../shared/data/content/eval, disjoint from the
training photos), at `--size` px long side:

* style loss: relative Gram loss (VGG-19 relu1_1..relu4_1, the training loss without weights)
  between the output and the style's painting, next to the same loss for the unstylized photo
  (what "no style at all" scores);
* content loss: relative relu2_2 feature loss between output and photo;
* SSIM between output and photo (structure kept; 1 = identical).

On the first `--gatys-photos` photos it also runs per-image Gatys optimisation with the same
losses (the slow reference a feed-forward net approximates) and reports both on those photos.

    python benchmarks/quality.py --style monet-lite --style ukiyoe-lite
    # prints a table, writes benchmarks/results/quality.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from rtstyle.images import image_to_tensor, read_image, resize_max_side
from rtstyle.models.loading import load_stylizer
from rtstyle.models.registry import resolve_style
from rtstyle.models.training.data import list_images, load_style_image
from rtstyle.models.training.gatys import gatys_stylize
from rtstyle.models.training.losses import (
    PerceptualLoss,
    content_loss,
    ssim,
    style_loss,
)
from rtstyle.models.vgg import load_vgg19

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def measure(criterion: PerceptualLoss, out01: torch.Tensor, photo01: torch.Tensor) -> dict:
    with torch.no_grad():
        feats = criterion.vgg(out01, criterion.layers)
        target = criterion.vgg(photo01, (criterion.content_layer,))[criterion.content_layer]
        return {
            "style": float(style_loss(feats, criterion.style_grams)),
            "content": float(content_loss(feats[criterion.content_layer], target)),
            "ssim": float(ssim(out01, photo01)),
        }


def mean_of(rows: list[dict]) -> dict:
    return {k: statistics.fmean(r[k] for r in rows) for k in rows[0]}


def evaluate_style(name: str, photos: list[Path], args, vgg) -> dict:
    spec = resolve_style(name)
    painting = args.painting or DATA / "styles" / spec.meta.get("style", {}).get("image", "")
    if not painting.is_file():
        raise SystemExit(f"{name}: painting not found ({painting}); pass --painting")
    training = spec.meta.get("training", {})
    style_size = int(training.get("style_size", 2 * args.size))
    # Gatys optimises the style's own training balance; `measure` reports unweighted terms.
    criterion = PerceptualLoss(vgg, load_style_image(painting, style_size),
                               content_weight=float(training.get("content_weight", 1.0)),
                               style_weight=float(training.get("style_weight", 1.0)))
    stylizer = load_stylizer(spec, device="cpu")

    net_rows, photo_rows = [], []
    t0 = time.perf_counter()
    for path in photos:
        x = image_to_tensor(resize_max_side(read_image(path), args.size))
        with torch.no_grad():
            y = stylizer(x)
        net_rows.append(measure(criterion, y, x))
        photo_rows.append(measure(criterion, x, x))
    net_seconds = time.perf_counter() - t0

    gatys_rows, net_small_rows = [], []
    t0 = time.perf_counter()
    for path in photos[: args.gatys_photos]:
        x = image_to_tensor(resize_max_side(read_image(path), args.gatys_size))
        ref = gatys_stylize(x, criterion, steps=args.gatys_steps)
        gatys_rows.append(measure(criterion, ref, x))
        with torch.no_grad():
            net_small_rows.append(measure(criterion, stylizer(x), x))
    gatys_seconds = time.perf_counter() - t0
    return {
        "style": spec.full_name,
        "arch": spec.arch,
        "painting": painting.name,
        "photos": len(photos),
        "size": args.size,
        "photo_unstylized": mean_of(photo_rows),
        "net": mean_of(net_rows),
        "net_seconds": round(net_seconds, 1),
        "gatys": {
            "photos": len(gatys_rows),
            "size": args.gatys_size,
            "steps": args.gatys_steps,
            "net": mean_of(net_small_rows) if net_small_rows else None,
            "gatys": mean_of(gatys_rows) if gatys_rows else None,
            "seconds": round(gatys_seconds, 1),
        },
        "training": {k: training.get(k) for k in ("steps", "size", "batch", "duration_s", "device")},
    }


def print_table(results: list[dict]) -> None:
    head = (f"{'style':<18}{'style loss photo':>17}{'net':>8}{'content':>9}{'SSIM':>7}"
            f"{'| gatys n':>10}{'style net':>10}{'gatys':>8}{'SSIM net':>9}{'gatys':>7}")
    print(head)
    for r in results:
        g = r["gatys"]
        tail = ""
        if g["gatys"]:
            tail = (f"{g['photos']:>10}{g['net']['style']:>10.3f}{g['gatys']['style']:>8.3f}"
                    f"{g['net']['ssim']:>9.3f}{g['gatys']['ssim']:>7.3f}")
        print(f"{r['style']:<18}{r['photo_unstylized']['style']:>17.3f}{r['net']['style']:>8.3f}"
              f"{r['net']['content']:>9.3f}{r['net']['ssim']:>7.3f}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", action="append", required=True, help="style name or file")
    parser.add_argument("--painting", type=Path, help="override the painting (one style only)")
    parser.add_argument("--photos", type=Path, default=DATA / "content" / "eval")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N photos")
    parser.add_argument("--size", type=int, default=256, help="long side of eval photos")
    parser.add_argument("--gatys-photos", type=int, default=2)
    parser.add_argument("--gatys-size", type=int, default=128)
    parser.add_argument("--gatys-steps", type=int, default=80)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "quality.json")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    photos = list_images(args.photos)
    if args.limit:
        photos = photos[: args.limit]
    vgg = load_vgg19()
    results = [evaluate_style(name, photos, args, vgg) for name in args.style]
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"machine": f"{platform.processor() or platform.machine()}, "
                         f"{torch.get_num_threads()} torch threads, torch {torch.__version__}",
              "results": results}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
