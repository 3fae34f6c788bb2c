"""`rtstyle video` end to end on a shared 640×360 clip: decode, network, default smoothing, encode.

Runs the real CLI as a subprocess for each style, first once to fill the engine cache (its
numbers are kept as `cold`), then `--repeats` rounds interleaved so that load from other
processes hits every style alike. The fps is the CLI's own `--json` figure (frames over the
run's seconds after warm-up); the process wall time is recorded beside it.

    python benchmarks/video_e2e.py --style monet-lite --style FILE.safetensors#monet
    # writes benchmarks/results/video_e2e_cpu.json

Target (issue #12): the default style at ≥30 fps on a 2-core CPU, all of it included.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from rtstyle.realtime.benchmark import machine_info
from rtstyle.realtime.cache import cpu_facts

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "data" / "video" / "bbb_cut_640x360_10s_audio.mp4"


def run_once(style: str, clip: Path, out: Path, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "rtstyle.cli", "video", str(clip), str(out), "--style", style,
           "--json", "--overwrite", *extra]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{style}: exit {done.returncode}\n{done.stderr[-2000:]}")
    report = json.loads(done.stdout[done.stdout.index("{"):])
    keep = ("backend", "fps", "frames_written", "seconds", "warmup_s", "latency_ms_p50",
            "latency_ms_p99", "smooth", "smooth_blend")
    return {**{k: report.get(k) for k in keep}, "process_wall_s": round(wall, 2),
            "loadavg": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", action="append", required=True)
    parser.add_argument("--clip", type=Path, default=CLIP)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--extra", default="", help="more `rtstyle video` options, one string")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "video_e2e_cpu.json")
    args = parser.parse_args()
    extra = args.extra.split()
    runs: dict[str, dict] = {s: {"cold": None, "warm": []} for s in args.style}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.mp4"
        for style in args.style:
            runs[style]["cold"] = run_once(style, args.clip, out, extra)
        for _ in range(args.repeats):
            for style in args.style:
                runs[style]["warm"].append(run_once(style, args.clip, out, extra))
    rows = []
    print(f"{'style':<40} {'backend':<16} {'fps (median)':>12} {'p99 ms':>8}")
    for style, r in runs.items():
        fps = statistics.median(w["fps"] for w in r["warm"])
        p99 = statistics.median(w["latency_ms_p99"] for w in r["warm"])
        rows.append({"style": style, "fps_median": fps, "latency_ms_p99_median": p99, **r})
        print(f"{style:<40} {str(r['warm'][0]['backend'])[:16]:<16} {fps:>12.1f} {p99:>8.1f}")
    result = {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
              "clip": args.clip.name, "machine": machine_info(), "cpu": cpu_facts(),
              "torch": torch.__version__, "threads": torch.get_num_threads(),
              "loadavg_end": os.getloadavg(), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
