"""A long live run: does `rtstyle webcam` hold its memory and latency over many minutes?

Runs the same `LiveRun` as `rtstyle webcam` from an FFmpeg `lavfi` source paced at 30 fps to a
UDP stream (MPEG-TS, what OBS reads), and samples every `--every` seconds: resident memory
(VmRSS), the capture→output latency percentiles of the frames written in that window, the
frame rate and the drops. Prints a table and writes JSON with the machine's CPU and versions.

    python benchmarks/long_live.py --minutes 20 --style monet --size 640x360

Pass criteria from the issue: after the warm-up window, resident memory grows < 5 % and p99
latency does not drift (last windows vs the first after warm-up).
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rtstyle.realtime.benchmark import library_versions, machine_info  # noqa: E402
from rtstyle.realtime.runs import Geometry, LiveRun, StyleSettings  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--style", default="monet")
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--every", type=float, default=30.0, help="Sampling window, seconds.")
    ap.add_argument("--warmup-windows", type=int, default=2,
                    help="Windows left out of the drift check (allocator and caches settle).")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--port", type=int, default=23456)
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).parent / "results" / "long_live_cpu.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    camera = f"lavfi:testsrc2=size={args.size}:rate={args.fps}"
    output = f"udp://127.0.0.1:{args.port}?pkt_size=1316"
    settings = StyleSettings(styles=(args.style,), device="cpu")
    samples: list[dict] = []
    window = {"start": None, "written": 0, "dropped": 0, "latency_from": 0}

    def on_frame(stats) -> None:
        now = time.monotonic()
        if window["start"] is None:  # windows start at the first written frame
            window.update(start=now, written=stats.written)
            return
        if now - window["start"] < args.every:
            return
        lat = stats.latencies_ms[window["latency_from"]:]
        samples.append({
            "t_s": round(now - run.started_at, 1),
            "rss_mb": round(rss_mb(), 1),
            "fps": round((stats.written - window["written"]) / (now - window["start"]), 2),
            "dropped": stats.dropped - window["dropped"],
            "latency_ms_p50": round(float(np.percentile(lat, 50)), 1) if lat else None,
            "latency_ms_p99": round(float(np.percentile(lat, 99)), 1) if lat else None,
        })
        print(samples[-1], flush=True)
        # Keep the run's own latency list from growing for 20 minutes of frames.
        stats.latencies_ms.clear()
        window.update(start=now, written=stats.written, dropped=stats.dropped, latency_from=0)

    run = LiveRun(camera, output, settings, geometry=Geometry(), duration=args.minutes * 60)
    with run:
        run.warm_up()
        report = run.run(on_frame=on_frame)

    steady = samples[args.warmup_windows:]
    first, last = steady[:2], steady[-2:]
    rss_growth = (statistics.mean(s["rss_mb"] for s in last)
                  / statistics.mean(s["rss_mb"] for s in first) - 1) if steady else None
    p99_first = statistics.mean(s["latency_ms_p99"] for s in first) if steady else None
    p99_last = statistics.mean(s["latency_ms_p99"] for s in last) if steady else None
    result = {
        "benchmark": "long_live", "command": " ".join(sys.argv),
        "machine": machine_info(), "versions": library_versions(),
        "threads": torch.get_num_threads(), "camera": camera, "output": output,
        "style": report.style, "backend": report.backend, "size": list(report.size),
        "minutes": args.minutes, "window_s": args.every,
        "frames_written": report.stats.written, "frames_dropped": report.stats.dropped,
        "rss_growth_after_warmup": None if rss_growth is None else round(rss_growth, 4),
        "p99_ms_first_windows": p99_first, "p99_ms_last_windows": p99_last,
        "samples": samples,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\n{'t (s)':>7} {'RSS MB':>8} {'fps':>6} {'drop':>5} {'p50 ms':>7} {'p99 ms':>7}")
    for s in samples:
        print(f"{s['t_s']:>7} {s['rss_mb']:>8} {s['fps']:>6} {s['dropped']:>5} "
              f"{s['latency_ms_p50']:>7} {s['latency_ms_p99']:>7}")
    print(f"\nRSS growth after warm-up: {100 * (rss_growth or 0):.2f} %; p99 first/last windows: "
          f"{p99_first} / {p99_last} ms; backend {report.backend}; wrote {args.out}")


if __name__ == "__main__":
    main()
