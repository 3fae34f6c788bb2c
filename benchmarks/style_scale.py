"""`--style-scale`: engine speed with and without it, edge sharpness, and the README's strip.

    python3 benchmarks/style_scale.py                              # eager + compile, 1280x720
    python3 benchmarks/style_scale.py --backends eager --threads 1 --strip docs/style_scale.jpg

For each backend, one `InferenceEngine` of the style runs real 1280×720 frames of the shared
Big Buck Bunny clip (float RGB on the device in and out, as the pipeline calls it) plain
(S = 1) and wrapped in `ScaledStylizer` at each `--scales` value: median wall time per frame
over `--frames` calls after a warm-up, process CPU time per frame, and the guided-upsampling
step alone. The machine is shared, so the load average is recorded before and after each
row, and CPU time is the steadier number.

Edge sharpness: mean gradient magnitude of the output over the input's strongest edges (its
top 2% of gradient magnitude), for S = 1, S = 0.5 guided and S = 0.5 upsampled bilinearly.

Writes JSON to benchmarks/results/style_scale_cpu.json (CPU model, flags, load, versions).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from rtstyle.models.guided import downsample, guided_upsample
from rtstyle.models.loading import load_stylizer
from rtstyle.models.style_scale import ScaledStylizer, describe
from rtstyle.realtime.cache import cpu_facts
from rtstyle.realtime.engine import InferenceEngine

HERE = Path(__file__).resolve().parent
VIDEO = HERE.parent.parent / "shared" / "data" / "video"
CLIP = VIDEO / "bbb_1280x720_5s_audio.mp4"
PEOPLE = VIDEO / "mdn_his_girl_friday_640x480_6s_audio.mp4"


def frames(path: Path, first: int, count: int) -> list[np.ndarray]:
    out = []
    with av.open(str(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i >= first:
                out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == count:
                break
    return out


def tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div_(255.0)


def load() -> float:
    return os.getloadavg()[0]


def timed(fn, inputs: list[torch.Tensor], warmup: int = 2) -> dict:
    with torch.inference_mode():
        for x in inputs[:warmup]:
            fn(x)
        walls = []
        cpu0 = time.process_time()
        for x in inputs:
            start = time.perf_counter()
            fn(x)
            walls.append(time.perf_counter() - start)
        cpu = (time.process_time() - cpu0) / len(inputs)
    median = statistics.median(walls)
    return {"ms_median": round(median * 1e3, 1), "fps": round(1.0 / median, 2),
            "ms_min": round(min(walls) * 1e3, 1), "cpu_ms_per_frame": round(cpu * 1e3, 1)}


def edge_sharpness(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean gradient magnitude of `y` where the input's gradient is in its top 2%."""
    def grad(t):
        gx = F.pad(t[..., 1:] - t[..., :-1], (0, 1))
        gy = F.pad(t[..., 1:, :] - t[..., :-1, :], (0, 0, 0, 1))
        return (gx.pow(2) + gy.pow(2)).sum(1).sqrt()

    gx = grad(x)
    mask = gx >= torch.quantile(gx.flatten()[::7], 0.98)
    return float(grad(y)[mask].mean())


def variants(stylizer, x: torch.Tensor, scale: float = 0.5) -> dict[str, torch.Tensor]:
    """S = 1, S guided, S bilinear: the three outputs the strip and the sharpness compare."""
    with torch.inference_mode():
        h, w = x.shape[-2:]
        small = downsample(x, (round(h * scale), round(w * scale)))
        y_small = stylizer(small)
        return {"S=1": stylizer(x),
                f"S={scale:g} guided": guided_upsample(x, small, y_small).clamp(0, 1),
                f"S={scale:g} bilinear": F.interpolate(y_small, size=(h, w), mode="bilinear",
                                                       align_corners=False).clamp(0, 1)}


def strip(stylizer, path: Path, scale: float = 0.5) -> None:
    """Rows of crops at 1:1 (a 1280×720 frame and a 640×480 one with faces), columns:
    input | S=1 | S guided | S bilinear, each labelled."""
    from PIL import Image, ImageDraw

    rows = []
    for clip, index, box in ((CLIP, 60, (540, 200, 860, 440)),
                             (PEOPLE, 60, (200, 40, 520, 280))):
        x = tensor(frames(clip, index, 1)[0])
        outs = {"input": x, **variants(stylizer, x, scale)}
        tiles = []
        for label, y in outs.items():
            rgb = (y[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()
            tile = Image.fromarray(rgb).crop(box)
            draw = ImageDraw.Draw(tile)
            draw.rectangle((0, 0, 8 + 7 * len(label), 16), fill=(0, 0, 0))
            draw.text((4, 3), label, fill=(255, 255, 255))
            tiles.append(tile)
        rows.append(tiles)
    w, h = rows[0][0].size
    sheet = Image.new("RGB", (w * 4 + 6 * 3, h * len(rows) + 6 * (len(rows) - 1)), "white")
    for r, tiles in enumerate(rows):
        for c, tile in enumerate(tiles):
            sheet.paste(tile, (c * (w + 6), r * (h + 6)))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, quality=90)
    print(f"wrote {path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--style", default="monet")
    p.add_argument("--backends", nargs="+", default=["eager", "compile"])
    p.add_argument("--scales", nargs="+", default=["0.5", "auto"])
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--strip", type=Path, default=None, help="also write the comparison strip")
    p.add_argument("--out", type=Path, default=HERE / "results" / "style_scale_cpu.json")
    args = p.parse_args()

    stylizer = load_stylizer(args.style)
    inputs = [tensor(f) for f in frames(CLIP, 30, args.frames)]
    h, w = inputs[0].shape[-2:]
    result = {"style": stylizer.name, "train_size": stylizer.train_size, "size": f"{w}x{h}",
              "frames": args.frames, "clip": CLIP.name, **cpu_facts(),
              "nproc": os.cpu_count(), "torch": torch.__version__,
              "python": platform.python_version(), "load_before": os.getloadavg(), "rows": []}
    flags = set(result.pop("flags").split())  # the ones that decide the kernels, not all
    result["flags_of_note"] = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
                               if f in flags]

    sharp = {k: round(edge_sharpness(inputs[0], v), 4)
             for k, v in variants(stylizer, inputs[0]).items()}
    result["edge_sharpness"] = {"input": round(edge_sharpness(inputs[0], inputs[0]), 4), **sharp}
    print("edge sharpness", result["edge_sharpness"])

    with torch.inference_mode():
        y_small = stylizer(downsample(inputs[0], (h // 2, w // 2)))
    for threads in args.threads:
        torch.set_num_threads(threads)
        row = {"backend": "guided upsampling alone (S=0.5: downsample + guide + apply)",
               "threads": threads, "load": load(),
               **timed(lambda x: guided_upsample(x, downsample(x, (h // 2, w // 2)), y_small),
                       inputs)}
        print(row)
        result["rows"].append(row)
        for backend in args.backends:
            engine = InferenceEngine(stylizer, "cpu", backend=backend)
            for scale in ["1", *args.scales]:
                fn = engine if scale == "1" else ScaledStylizer(engine, scale)
                before = load()
                start = time.perf_counter()
                with torch.inference_mode():
                    (fn.warmup if scale != "1" else engine.warmup)(inputs[0])
                row = {"backend": engine.active.label, "threads": threads,
                       "style_scale": scale,
                       "generator": describe(scale if scale == "auto" else float(scale), h, w,
                                             stylizer.train_size) or f"{w}×{h}",
                       "warmup_s": round(time.perf_counter() - start, 1),
                       **timed(fn, inputs), "load_before": before, "load_after": load()}
                print(row)
                result["rows"].append(row)
    result["load_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    if args.strip is not None:
        strip(stylizer, args.strip)


if __name__ == "__main__":
    main()
