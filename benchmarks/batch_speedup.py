"""`rtstyle batch` on this machine: how much 2 workers gain over 1, and what splitting costs.

Runs the real CLI as a subprocess (`--json`), each run into a fresh output folder:

- three clips (`mdn_his_girl_friday`, `mdn_flower`, `bbb_cut`: 575 frames) with
  - the local pool: 1 worker × 1 thread, 1 worker × 2 threads (the whole machine to one
    file), 2 workers × 1 thread;
  - a local Ray cluster with 1 and with 2 one-CPU tasks at a time (its start included);
- one long clip (`mdn_his_girl_friday` five times over, packets copied: 31 s, 925 frames,
  keyframes every 1.17 s), in one piece and cut into parts of `--split-seconds` (the default
  60 would not cut it; 6 gives 5 parts), with 2 workers × 1 thread (what parts gain) and with
  1 worker × 2 threads (what cutting costs: the pre-roll frames, a run set up per part, the
  join).

Per run: the process wall time (Python start-up, planning, workers' start, the work, the
join) and the batch's own `wall_s`. `--repeats N` interleaves the rows N times and keeps each
row's median.

    python benchmarks/batch_speedup.py        # writes benchmarks/results/batch_speedup_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import torch

from rtstyle.realtime.cache import cpu_facts

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
VIDEO = HERE.parent.parent / "shared" / "data" / "video"
CLIPS = ["mdn_his_girl_friday_640x480_6s_audio.mp4", "mdn_flower_960x540_5s_audio.mp4",
         "bbb_cut_640x360_10s_audio.mp4"]


def repeat_clip(source: Path, target: Path, times: int) -> Path:
    """`source` `times` over, packets copied with their timestamps shifted (no re-encoding)."""
    with av.open(str(source)) as probe:
        span = {s.index: (s.duration or 0) for s in probe.streams if s.type in ("video", "audio")}
    with av.open(str(target), "w") as out:
        mapping = {}
        for n in range(times):
            with av.open(str(source)) as inp:
                streams = [s for s in inp.streams if s.type in ("video", "audio")]
                if not mapping:
                    mapping = {s.index: out.add_stream_from_template(s) for s in streams}
                for packet in inp.demux(*streams):
                    if packet.dts is None:
                        continue
                    shift = n * span[packet.stream.index]
                    packet.pts += shift
                    packet.dts += shift
                    packet.stream = mapping[packet.stream.index]
                    out.mux(packet)
    return target


def run_batch(inputs: list[Path], out: Path, args: list[str], base: list[str]) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "rtstyle.cli", "batch", *map(str, inputs), "-o", str(out),
           *base, *args, "--json"]
    start = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    wall = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout[done.stdout.index("{"):])
    return {"process_wall_s": round(wall, 2), "batch_wall_s": report["wall_s"],
            "frames": report["frames"], "fps": round(report["frames"] / wall, 2),
            "workers": report["workers"],
            "parts": sum(i["parts"] for i in report["items"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--style", default="monet")
    parser.add_argument("--max-side", type=int, default=360)
    parser.add_argument("--split-seconds", type=float, default=6.0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray rows")
    parser.add_argument("--output", type=Path, default=RESULTS / "batch_speedup_cpu.json")
    opts = parser.parse_args()

    base = ["--style", opts.style, "--max-side", str(opts.max_side), "--backend", "eager",
            "--device", "cpu"]
    clips = [VIDEO / c for c in CLIPS]
    rows: dict[str, tuple[list[Path], list[str]]] = {
        "pool 1 worker x 1 thread": (clips, ["--workers", "1", "--cpus-per-task", "1"]),
        "pool 1 worker x 2 threads": (clips, ["--workers", "1", "--cpus-per-task", "2"]),
        "pool 2 workers x 1 thread": (clips, ["--workers", "2", "--cpus-per-task", "1"]),
    }
    if not opts.no_ray:
        rows["ray 1 task at a time"] = (clips, ["--ray", "--workers", "1"])
        rows["ray 2 tasks at a time"] = (clips, ["--ray", "--workers", "2"])
    with tempfile.TemporaryDirectory(prefix="rtstyle-batch-bench-") as tmp:
        tmp = Path(tmp)
        long_clip = repeat_clip(VIDEO / CLIPS[0], tmp / "long_friday_x5.mp4", 5)
        split = ["--split-seconds", str(opts.split_seconds)]
        one, two = ["--workers", "1", "--cpus-per-task", "2"], ["--workers", "2",
                                                                  "--cpus-per-task", "1"]
        rows["long clip, whole, 1 worker x 2 threads"] = ([long_clip], [*one, "--split-seconds",
                                                                        "0"])
        rows["long clip, parts, 1 worker x 2 threads"] = ([long_clip], [*one, *split])
        rows["long clip, whole, 2 workers x 1 thread"] = ([long_clip], [*two, "--split-seconds",
                                                                        "0"])
        rows["long clip, parts, 2 workers x 1 thread"] = ([long_clip], [*two, *split])
        load_before = os.getloadavg()
        runs: dict[str, list[dict]] = {name: [] for name in rows}
        for r in range(opts.repeats):
            for name, (inputs, args) in rows.items():
                result = run_batch(inputs, tmp / f"out-{len(runs[name])}-{r}-{hash(name)}",
                                   args, base)
                runs[name].append(result)
                print(f"{name:40s} {result['process_wall_s']:7.2f} s  {result['fps']:6.2f} fps"
                      f"  ({result['workers']})", flush=True)
        load_after = os.getloadavg()

    def median(name: str, key: str) -> float:
        return round(statistics.median(r[key] for r in runs[name]), 2)

    table = {name: {**runs[name][0], "process_wall_s": median(name, "process_wall_s"),
                    "batch_wall_s": median(name, "batch_wall_s"), "fps": median(name, "fps"),
                    "runs_process_wall_s": [r["process_wall_s"] for r in runs[name]]}
             for name in rows}
    wall = {name: table[name]["process_wall_s"] for name in rows}
    summary = {
        "pool: 2 workers over 1 worker x 2 threads": round(
            wall["pool 1 worker x 2 threads"] / wall["pool 2 workers x 1 thread"], 2),
        "pool: 2 workers over 1 worker x 1 thread": round(
            wall["pool 1 worker x 1 thread"] / wall["pool 2 workers x 1 thread"], 2),
        "long clip: parts over whole, 2 workers": round(
            wall["long clip, whole, 2 workers x 1 thread"]
            / wall["long clip, parts, 2 workers x 1 thread"], 2),
        "long clip: cost of cutting with 1 worker (parts / whole)": round(
            wall["long clip, parts, 1 worker x 2 threads"]
            / wall["long clip, whole, 1 worker x 2 threads"], 2),
    }
    if not opts.no_ray:
        summary["ray: 2 tasks over 1"] = round(wall["ray 1 task at a time"]
                                               / wall["ray 2 tasks at a time"], 2)
    try:
        import ray
        ray_version = ray.__version__
    except ImportError:
        ray_version = None
    result = {
        "command": "benchmarks/batch_speedup.py " + " ".join(sys.argv[1:]),
        "cli": f"rtstyle batch INPUTS -o OUT {' '.join(base)} [row options] --json "
               "(OMP_NUM_THREADS=1)",
        "machine": {**cpu_facts(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in load_after],
                    "note": "shared machine: other processes may have run during these timings"},
        "versions": {"torch": torch.__version__, "av": av.__version__, "ray": ray_version},
        "clips": CLIPS, "long_clip": f"{CLIPS[0]} x5 (925 frames, 31 s)",
        "split_seconds": opts.split_seconds, "repeats": opts.repeats,
        "rows": table, "speedup": summary,
    }
    opts.output.parent.mkdir(parents=True, exist_ok=True)
    opts.output.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    print(f"wrote {opts.output}")


if __name__ == "__main__":
    main()
