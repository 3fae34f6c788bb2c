"""An arbitrary-style model (AdaIN, SANet) on paintings it never saw, by issue #12's bar.

For each painting of ../shared/data/styles it stylizes the first `--photos` evaluation photos
with `rtstyle image --style MODEL --style-image PAINTING` (default settings, full strength) and
scores them with `../shared/tools/vggmetrics.py pairs` against that painting. "Gap closed" is
`1 - style_rel(output) / style_rel(photo)`: the share of the photos' relative Gram distance to
the painting that the model removed. The model ships when, on the held-out paintings (the
model file's `training.data.held_out`), it closes ≥ 50 % at SSIM ≥ 0.35 (mean over paintings).

    python benchmarks/arbitrary_heldout.py --model adain.v1.safetensors --photos 10
    # prints a row per painting and the two group means,
    # writes benchmarks/results/arbitrary_heldout_cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from retrain_targets import write_result

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
GAP_TARGET, SSIM_TARGET = 0.5, 0.35


def vggmetrics(content: Path, stylized: Path, painting: Path) -> dict:
    out = subprocess.run([sys.executable, str(SHARED / "tools" / "vggmetrics.py"), "pairs",
                          "--content", str(content), "--stylized", str(stylized),
                          "--style", str(painting), "--json"],
                         check=True, capture_output=True, text=True)
    d = json.loads(out.stdout)
    return {k: d[k]["mean"] for k in ("style_loss", "content_loss", "ssim", "style_rel")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="arbitrary-style model: name or file")
    ap.add_argument("--photos", type=int, default=10, help="first N evaluation photos")
    ap.add_argument("--only-held-out", action="store_true", help="skip the seen paintings")
    ap.add_argument("--extra", default="", help="more `rtstyle image` options")
    ap.add_argument("--out", type=Path,
                    default=REPO / "benchmarks" / "results" / "arbitrary_heldout_cpu.json")
    args = ap.parse_args(argv)

    from rtstyle.models.registry import resolve_style
    from rtstyle.realtime.benchmark import machine_info

    spec = resolve_style(args.model)
    held_out = set(spec.meta.get("training", {}).get("data", {}).get("held_out", []))
    if not held_out:
        print(f"{spec.full_name} records no held-out paintings", file=sys.stderr)
    t0 = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="rtstyle-heldout-") as tmp:
        photos = Path(tmp) / "photos"
        photos.mkdir()
        for p in sorted((DATA / "content" / "eval").glob("*.jpg"))[: args.photos]:
            (photos / p.name).symlink_to(p)
        # the photos' own distance to each painting: the "no style" end of the gap
        for painting in sorted((DATA / "styles").glob("*.jpg")):
            group = "held_out" if painting.name in held_out else "seen"
            if args.only_held_out and group == "seen":
                continue
            out = Path(tmp) / painting.stem
            subprocess.run(["rtstyle", "image", str(photos), "-o", str(out), "--style",
                            args.model, "--style-image", str(painting), *args.extra.split()],
                           check=True, capture_output=True, text=True)
            styled = vggmetrics(photos, out, painting)
            photo = vggmetrics(photos, photos, painting)
            row = {"painting": painting.name, "group": group, **styled,
                   "photo_style_rel": photo["style_rel"],
                   "gap_closed": 1.0 - styled["style_rel"] / photo["style_rel"]}
            rows.append(row)
            print(f"{group:>9} {painting.name:<42} style_rel {photo['style_rel']:.3f} -> "
                  f"{styled['style_rel']:.3f}  gap closed {row['gap_closed']:5.2f}  "
                  f"SSIM {styled['ssim']:.3f}", flush=True)
    groups = {}
    for group in ("seen", "held_out"):
        members = [r for r in rows if r["group"] == group]
        if members:
            groups[group] = {k: statistics.fmean(r[k] for r in members)
                             for k in ("gap_closed", "ssim", "style_rel", "photo_style_rel")}
            groups[group]["paintings"] = len(members)
            print(f"{group:>9} mean over {len(members):2d}: gap closed "
                  f"{groups[group]['gap_closed']:.2f}, SSIM {groups[group]['ssim']:.3f}")
    bar = groups.get("held_out")
    verdict = bool(bar and bar["gap_closed"] >= GAP_TARGET and bar["ssim"] >= SSIM_TARGET)
    print(f"ships (held-out gap closed >= {GAP_TARGET}, SSIM >= {SSIM_TARGET}): {verdict}")
    result = {"model": spec.full_name, "training": spec.meta.get("training", {}),
              "photos": args.photos, "groups": groups, "ships": verdict, "paintings": rows,
              "machine": machine_info(),
              "command": "python benchmarks/arbitrary_heldout.py " + " ".join(argv or sys.argv[1:])}
    write_result(args.out, result, t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
