"""Style quality: how close each style's output is to its painting, and how much photo it keeps.

The numbers are those of `rtstyle eval quality` (`rtstyle.metrics.quality`, the definitions
of ../shared/tools/vggmetrics.py): for each style, over the first `--limit` evaluation photos
(../shared/data/content/eval, never trained on) at their own size,

* style loss (Gram, relu1_1..relu5_1, painting at 512 px) and style_rel, next to the same
  loss for the unstylized photo (what "no style at all" scores);
* content loss (relu4_1) and SSIM (luma) and PSNR to the photo;
* VGG-FID and VGG-KID between the outputs and crops of the painting.

On the first `--gatys-photos` photos it also runs per-image Gatys optimisation
(`rtstyle.models.gatys`, the slow reference a feed-forward net approximates) at `--gatys-size`
and scores it and the net on the same downsized photos.

    python benchmarks/quality.py                               # every bundled style
    python benchmarks/quality.py --style ukiyoe-lite --limit 30 --gatys-photos 2
    # prints a table, writes benchmarks/results/quality_eval.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rtstyle.images import image_to_tensor, read_image, resize_max_side, tensor_to_image
from rtstyle.metrics.quality import QualityMeter, evaluate_quality, image_files
from rtstyle.models.gatys import GatysConfig, gatys_stylize
from rtstyle.models.registry import discover, resolve_style
from rtstyle.stills import plan_jobs, stylize_files

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
KEYS = ("style_loss", "style_rel", "content_loss", "ssim", "psnr", "photo_style_loss")


def painting_of(spec, override: Path | None) -> Path:
    painting = override or DATA / "styles" / spec.meta.get("style", {}).get("image", "")
    if not painting.is_file():
        raise SystemExit(f"{spec.full_name}: painting not found ({painting}); pass --painting")
    return painting


def gatys_reference(spec, painting: Path, photos: list[Path], args) -> dict:
    """Gatys and the net on the same downsized photos, scored with the same meter."""
    from rtstyle.models.loading import load_stylizer

    meter = QualityMeter(painting, crops=2)
    stylizer = load_stylizer(spec)
    rows = {"gatys": [], "net": []}
    start = time.perf_counter()
    for path in photos:
        rgb = resize_max_side(read_image(path), args.gatys_size)
        x = image_to_tensor(rgb)
        result = gatys_stylize(x, [image_to_tensor(read_image(painting))],
                               config=GatysConfig(steps=args.gatys_steps))
        with torch.no_grad():
            outputs = {"gatys": result.image, "net": stylizer(x)}
        for name, y in outputs.items():
            scores, _ = meter.measure(tensor_to_image(y).astype(np.float32),
                                      rgb.astype(np.float32))
            rows[name].append(scores)
    mean = {name: {k: statistics.fmean(getattr(s, k) for s in r) for k in KEYS[:4]}
            for name, r in rows.items() if r}
    return {"photos": len(photos), "size": args.gatys_size, "steps": args.gatys_steps,
            "seconds": round(time.perf_counter() - start, 1), **mean}


def evaluate_style(name: str, args) -> dict:
    from rtstyle.models.loading import load_stylizer

    spec = resolve_style(name)
    painting = painting_of(spec, args.painting)
    photos = list(image_files(args.photos).values())[: args.limit or None]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        jobs = plan_jobs(photos, Path(tmp), spec.name)
        for _ in stylize_files(load_stylizer(spec), jobs, torch.device("cpu")):
            pass
        net_seconds = time.perf_counter() - start
        report = evaluate_quality(args.photos, Path(tmp), painting, limit=args.limit or None)
    data = report.to_dict(per_image=False)
    result = {"style": spec.full_name, "arch": spec.arch, "painting": painting.name,
              "photos": data["n"], "net_seconds": round(net_seconds, 1),
              **{k: data[k]["mean"] for k in KEYS},
              "vgg_fid": data["vgg_fid"], "vgg_kid": data["vgg_kid"]}
    if args.gatys_photos:
        result["gatys_reference"] = gatys_reference(spec, painting, photos[: args.gatys_photos],
                                                    args)
    return result


def print_table(results: list[dict]) -> None:
    print(f"{'style':<20}{'style loss':>12}{'photo':>10}{'style_rel':>10}{'content':>10}"
          f"{'SSIM':>7}{'PSNR':>7}{'VGG-FID':>10}{'VGG-KID':>10}")
    for r in results:
        print(f"{r['style']:<20}{r['style_loss']:>12.0f}{r['photo_style_loss']:>10.0f}"
              f"{r['style_rel']:>10.3f}{r['content_loss']:>10.3g}{r['ssim']:>7.3f}"
              f"{r['psnr']:>7.2f}{r['vgg_fid']:>10.3g}{r['vgg_kid']:>10.3g}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", action="append",
                        help="style name or file (repeat; default: every bundled style)")
    parser.add_argument("--painting", type=Path, help="override the painting (one style only)")
    parser.add_argument("--photos", type=Path, default=DATA / "content" / "eval")
    parser.add_argument("--limit", type=int, default=10, help="the first N photos (0: all)")
    parser.add_argument("--gatys-photos", type=int, default=0)
    parser.add_argument("--gatys-size", type=int, default=256)
    parser.add_argument("--gatys-steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--out", type=Path,
                        default=REPO / "benchmarks" / "results" / "quality_eval.json")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.style or [s.full_name for s in discover().default_specs()
                           if s.origin == "bundled"]
    results = []
    for name in names:
        results.append(evaluate_style(name, args))
        print(f"{name}: done", file=sys.stderr, flush=True)
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"machine": f"{platform.processor() or platform.machine()}, "
                         f"{torch.get_num_threads()} torch threads, torch {torch.__version__}",
              "command": "python benchmarks/quality.py " + " ".join(argv or sys.argv[1:]),
              "definitions": "rtstyle eval quality (= ../shared/tools/vggmetrics.py pairs)",
              "results": results}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
