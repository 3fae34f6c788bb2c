"""How well an arbitrary-style (SANet) model generalizes to paintings it never saw.

The model file records which paintings it was trained on and which were held out
(`training.data.styles` / `training.data.held_out`). For every painting in the styles folder
this stylizes the evaluation photos (../shared/data/content/eval, disjoint from the training
photos) and measures

* the relative Gram style loss of the output to that painting (VGG-19 relu1_1..relu4_1, the
  same measure as `benchmarks/quality.py`), next to the unstylized photo's;
* "gap closed" = 1 - loss(output) / loss(photo): the share of the photo's distance to the
  painting that the model removed (1 = perfect match of style statistics, 0 = no style);
* SSIM to the photo (structure kept).

It prints one row per painting, the means of the seen and the held-out group, and writes JSON.
With `--gallery` it also writes one image: photo | painting | output per held-out painting.

    python benchmarks/sanet_generalization.py --style sanet --limit 8
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from rtstyle.images import image_to_tensor, read_image, resize_max_side, tensor_to_image
from rtstyle.models.loading import load_stylizer
from rtstyle.models.registry import resolve_style
from rtstyle.models.training.data import list_images, load_style_image
from rtstyle.models.training.losses import PerceptualLoss, ssim, style_loss
from rtstyle.models.vgg import load_vgg19

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def painting_row(model: str, painting: Path, photos: list[Path], vgg, size: int) -> dict:
    """Mean style loss of outputs and of photos to one painting, and SSIM output↔photo."""
    stylizer = load_stylizer(model, style_image=painting)
    criterion = PerceptualLoss(vgg, load_style_image(painting, 2 * size))
    out_loss, photo_loss, ssims = [], [], []
    with torch.no_grad():
        for path in photos:
            x = image_to_tensor(resize_max_side(read_image(path), size))
            y = stylizer(x)
            out_loss.append(float(style_loss(vgg(y, criterion.layers), criterion.style_grams)))
            photo_loss.append(float(style_loss(vgg(x, criterion.layers), criterion.style_grams)))
            ssims.append(float(ssim(y, x)))
    out_mean, photo_mean = statistics.fmean(out_loss), statistics.fmean(photo_loss)
    return {"painting": painting.name, "style_loss_output": out_mean,
            "style_loss_photo": photo_mean, "gap_closed": 1.0 - out_mean / photo_mean,
            "ssim": statistics.fmean(ssims)}


def gallery(model: str, paintings: list[Path], photo: Path, path: Path, side: int = 256) -> None:
    """One row per painting: photo | painting | output, each `side` px square-ish."""
    from PIL import Image

    rgb = resize_max_side(read_image(photo), side)
    rows = []
    for painting in paintings:
        with torch.no_grad():
            out = tensor_to_image(load_stylizer(model, style_image=painting)(image_to_tensor(rgb)))
        art = np.asarray(Image.fromarray(read_image(painting)).resize(rgb.shape[1::-1]))
        rows.append(np.concatenate([rgb, art, out], axis=1))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(path, quality=88)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--style", default="sanet", help="SANet style name or file")
    ap.add_argument("--styles", type=Path, default=DATA / "styles", help="paintings folder")
    ap.add_argument("--photos", type=Path, default=DATA / "content" / "eval")
    ap.add_argument("--limit", type=int, default=8, help="use the first N photos (0: all)")
    ap.add_argument("--size", type=int, default=256, help="long side of the photos")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--gallery", type=Path, default=None, help="write a held-out gallery here")
    ap.add_argument("--out", type=Path,
                    default=REPO / "benchmarks" / "results" / "sanet_generalization.json")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    spec = resolve_style(args.style)
    data = spec.meta.get("training", {}).get("data", {})
    held_out = set(data.get("held_out", []))
    if not held_out:
        print(f"{spec.full_name} records no held-out paintings", file=sys.stderr)
    photos = list_images(args.photos)
    photos = photos[: args.limit] if args.limit else photos
    vgg = load_vgg19()
    t0 = time.perf_counter()
    rows = []
    for painting in list_images(args.styles):
        row = painting_row(args.style, painting, photos, vgg, args.size)
        row["group"] = "held_out" if painting.name in held_out else "seen"
        rows.append(row)
        print(f"{row['group']:>9} {row['painting']:<42} photo {row['style_loss_photo']:7.3f} "
              f"-> {row['style_loss_output']:7.3f}  gap closed {row['gap_closed']:5.2f}  "
              f"SSIM {row['ssim']:.3f}", flush=True)
    groups = {}
    for group in ("seen", "held_out"):
        members = [r for r in rows if r["group"] == group]
        if members:
            groups[group] = {k: statistics.fmean(r[k] for r in members)
                             for k in ("gap_closed", "ssim", "style_loss_output", "style_loss_photo")}
            groups[group]["paintings"] = len(members)
            print(f"{group:>9} mean over {len(members):2d} paintings: gap closed "
                  f"{groups[group]['gap_closed']:.2f}, SSIM {groups[group]['ssim']:.3f}")
    if args.gallery and held_out:
        gallery(args.style, [args.styles / n for n in sorted(held_out)], photos[0], args.gallery)
    result = {
        "model": spec.full_name, "training": spec.meta.get("training", {}),
        "photos": len(photos), "size": args.size, "groups": groups, "paintings": rows,
        "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "seconds": round(time.perf_counter() - t0, 1),
        "command": "python benchmarks/sanet_generalization.py " + " ".join(argv or sys.argv[1:]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
