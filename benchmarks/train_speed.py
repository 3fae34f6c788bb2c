"""Training speed of `rtstyle train johnson`: the old path against the new, one process.

Every variant is a real Johnson trainer (`JohnsonSteps`, built as `rtstyle train johnson`
builds it: same photos, painting, seed, crop size and batch) whose steps this script calls
itself, the variants taking turns step by step, so that other work on a shared machine slows
them alike. A variant's clock is the sum of its step times (the optimizer step and the wait
for its batch included) after `--warmup` untimed steps (a compile, the first allocations);
images/s = batch × timed steps / that sum.

Variants (`--variants`, comma-separated; the ratio is `new` over `old`):

- `old`: eager, fp32, contiguous tensors, photos loaded on the training thread
  (`--no-compile --precision fp32 --no-channels-last --prefetch 0`), the trainer as it was;
- `eager`: `--precision auto` (bf16 on an AVX512-BF16/AMX CPU), channels-last, background
  loader, no compile;
- `new`: all of the above and `--compile` (the default of a long run).

    python benchmarks/train_speed.py                          # 256 px, batch 4, lite + standard
    python benchmarks/train_speed.py --archs lite --size 128 --steps 5   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from rtstyle.models.training.common import cpu_flags, resolve_precision
from rtstyle.models.training.johnson import JohnsonConfig, JohnsonSteps
from rtstyle.models.training.trainer import build_single_run

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
VARIANTS = {
    "old": dict(compile=False, precision="fp32", channels_last=False, prefetch=0),
    "eager": dict(compile=False, precision="auto", channels_last=True, prefetch=2),
    "new": dict(compile=True, precision="auto", channels_last=True, prefetch=2),
}


def machine() -> dict:
    cpu: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "cpu family", "model") and key.strip() not in cpu:
                cpu[key.strip()] = value.strip()
    except OSError:
        pass
    return {"cpu": cpu.get("model name") or platform.processor() or platform.machine(),
            "cpu_family": cpu.get("cpu family"),
            "cpu_model": cpu.get("model"), "cores": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "flags": sorted(f for f in cpu_flags() if f.startswith(("avx", "amx", "fma"))),
            "precision_auto": resolve_precision("auto", torch.device("cpu")).name}


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def build_variant(arch: str, variant: str, args, work: Path):
    cfg = JohnsonConfig(
        style_image=args.style, data=args.data, name=f"speed-{arch}-{variant}", arch=arch,
        size=args.size, batch=args.batch, steps=args.warmup + args.steps, seed=0,
        device="cpu", sample_every=0, checkpoint_every=0, tensorboard=False,
        work_dir=work / f"{arch}-{variant}", out=work / "styles", **VARIANTS[variant])
    steps = JohnsonSteps(cfg)
    t0 = time.perf_counter()
    run = build_single_run(steps)
    return steps, run, time.perf_counter() - t0


def one_step(steps, run, i: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    terms = steps.step(run, i)
    total = float(terms["total"].detach())
    return time.perf_counter() - t0, total


def measure_arch(arch: str, variants: list[str], args, work: Path) -> list[dict]:
    built = {v: build_variant(arch, v, args, work) for v in variants}
    times: dict[str, list[float]] = {v: [] for v in variants}
    losses: dict[str, float] = {}
    warm: dict[str, float] = {}
    before = loadavg()
    for v in variants:  # warm-up (compile) one variant after the other
        steps, run, build_s = built[v]
        warm[v] = build_s + sum(one_step(steps, run, i)[0] for i in range(1, args.warmup + 1))
        print(f"{arch:9} {v:6} warm-up {warm[v]:6.1f} s", flush=True)
    for i in range(args.warmup + 1, args.warmup + args.steps + 1):
        for v in variants:  # then in turns
            steps, run, _ = built[v]
            dt, losses[v] = one_step(steps, run, i)
            times[v].append(dt)
    after = loadavg()
    rows = []
    for v in variants:
        steps, run, _ = built[v]
        run.close_streams()
        row = {
            "arch": arch, "variant": v, **VARIANTS[v], "precision_resolved": run.precision.name,
            "compiled": run.compile,
            "images_per_s": round(args.batch * len(times[v]) / sum(times[v]), 3),
            "step_s_mean": round(sum(times[v]) / len(times[v]), 3),
            "step_s": [round(t, 3) for t in times[v]],
            "warmup_s": round(warm[v], 1), "last_total_loss": round(losses[v], 4),
            "loadavg_before": before, "loadavg_after": after,
        }
        print(f"{arch:9} {v:6} {row['images_per_s']:7.2f} img/s  {row['step_s_mean']:6.2f} s/step"
              f"  load {after}", flush=True)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archs", default="lite,standard")
    parser.add_argument("--variants", default="old,eager,new")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (>= 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--data", type=Path, default=DATA / "content" / "train")
    parser.add_argument("--style", type=Path, default=DATA / "styles" / "hokusai_great_wave.jpg")
    parser.add_argument("--out", type=Path,
                        default=REPO / "benchmarks" / "results" / "train_speed_cpu.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.warmup = max(1, args.warmup)
    info = machine()
    print(f"{info['cpu']}, torch {info['torch']}, {info['torch_threads']} threads, "
          f"auto precision {info['precision_auto']}, load {loadavg()}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.archs.split(","):
            rows += measure_arch(arch, args.variants.split(","), args, Path(tmp))
    speed = {(r["arch"], r["variant"]): r["images_per_s"] for r in rows}
    ratios = {arch: round(speed[arch, "new"] / speed[arch, "old"], 2)
              for arch in args.archs.split(",") if (arch, "new") in speed and (arch, "old") in speed}
    print("\n| arch | " + " | ".join(args.variants.split(",")) + " | new / old |")
    print("|---|" + "---|" * (len(args.variants.split(",")) + 1))
    for arch in args.archs.split(","):
        cells = [f"{speed.get((arch, v), float('nan')):.2f}" for v in args.variants.split(",")]
        print(f"| {arch} | " + " | ".join(cells) + f" | {ratios.get(arch, '-')}× |")
    result = {
        "what": "rtstyle train johnson, training images/s (variants stepped in turns, "
                "timed steps after warm-up)",
        "command": "python benchmarks/train_speed.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in (
                ("archs", args.archs), ("variants", args.variants), ("size", args.size),
                ("batch", args.batch), ("steps", args.steps), ("warmup", args.warmup),
                ("threads", args.threads)) if v is not None),
        "machine": info, "size": args.size, "batch": args.batch, "timed_steps": args.steps,
        "warmup_steps": args.warmup, "loadavg_end": loadavg(), "variants": VARIANTS,
        "rows": rows,
        "ratio_new_over_old": ratios,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
