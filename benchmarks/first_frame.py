"""Time to the first written frame of `rtstyle video`: eager, a cold build, a warm second run.

Runs the real CLI as a subprocess, each run with its own fresh Inductor cache directory (so a
"warm" run cannot lean on Inductor's own caches, only on rtstyle's engine cache):

- `auto cold`    `auto`, empty engine cache: what `auto` decides for this clip length
- `compile cold` `--backend compile`, empty engine cache: the full build
- then `--repeats` rounds of, interleaved so that load from other processes hits all alike:
  - `eager`        `--backend eager` (the floor a compiled run is measured against)
  - `compile warm` `--backend compile` again, same cache as the cold build: loads the package
  - `auto warm`    `auto`, same cache

Per run: the process wall time, and from `--json` the run's `warmup_s`, `first_frame_s`
(run start to first written frame) and `wall_s`; "first frame since launch" is the process wall
time less what the run did after its first frame (`wall_s - first_frame_s`), so it includes
Python start-up and imports, as a user waits for them. Medians over the rounds are reported;
cold runs are once each (each builds from scratch).

    python benchmarks/first_frame.py          # writes benchmarks/results/first_frame_cpu.json

Target: the warm second run reaches its first written frame within 1 s of eager's time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from rtstyle.realtime.cache import cpu_facts

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_CLIP = HERE.parent.parent / "shared" / "data" / "video" / "bbb_cut_640x360_10s_audio.mp4"
TARGET_S = 1.0


def run_cli(clip: Path, style: str, max_frames: int, backend: str, home: Path,
            work: Path) -> dict:
    """One `rtstyle video ... --json` in a fresh process; its JSON plus the process wall time."""
    inductor = Path(tempfile.mkdtemp(prefix="inductor-", dir=work))
    env = {**os.environ, "RTSTYLE_HOME": str(home), "TORCHINDUCTOR_CACHE_DIR": str(inductor)}
    command = ["rtstyle", "video", str(clip), str(work / "out.mp4"), "--style", style,
               "--max-frames", str(max_frames), "--backend", backend, "--json", "--overwrite"]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    shutil.rmtree(inductor, ignore_errors=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    report = json.loads(done.stdout)
    after_first = report["wall_s"] - report["first_frame_s"]
    return {"backend_requested": backend, "backend": report["backend"],
            "process_wall_s": round(wall, 3), "warmup_s": report["warmup_s"],
            "first_frame_s": report["first_frame_s"], "run_wall_s": report["wall_s"],
            "first_frame_since_launch_s": round(wall - after_first, 3),
            "fps": report["fps"], "size": report["size"],
            "frames_written": report["frames_written"]}


def summarize(runs: list[dict]) -> dict:
    keys = ("process_wall_s", "warmup_s", "first_frame_s", "first_frame_since_launch_s", "fps")
    out = {k: round(statistics.median(r[k] for r in runs), 3) for k in keys}
    out["backend"] = runs[0]["backend"].split(" (")[0]
    out["runs"] = runs
    return out


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--style", default="monet")
    parser.add_argument("--max-frames", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5, help="rounds of eager and warm runs")
    parser.add_argument("--out", type=Path, default=RESULTS / "first_frame_cpu.json")
    args = parser.parse_args()

    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="rtstyle-first-frame-") as tmp:
        work = Path(tmp)
        eager_home, auto_home, compiled_home = (work / n for n in ("eager", "auto", "compiled"))

        def run(backend: str, home: Path) -> dict:
            home.mkdir(exist_ok=True)
            result = run_cli(args.clip, args.style, args.max_frames, backend, home, work)
            print(f"  {backend:8} {result['backend'][:60]:60} first frame "
                  f"{result['first_frame_since_launch_s']:6.2f} s after launch", file=sys.stderr)
            return result

        cold = {"auto cold": [run("auto", auto_home)],
                "compile cold": [run("compile", compiled_home)]}
        rounds: dict[str, list[dict]] = {"eager": [], "compile warm": [], "auto warm": []}
        for _ in range(args.repeats):
            rounds["eager"].append(run("eager", eager_home))
            rounds["compile warm"].append(run("compile", compiled_home))
            rounds["auto warm"].append(run("auto", compiled_home))
        rows = {name: summarize(runs) for name, runs in {**rounds, **cold}.items()}
    eager = rows["eager"]["first_frame_since_launch_s"]
    warm = max(rows["compile warm"]["first_frame_since_launch_s"],
               rows["auto warm"]["first_frame_since_launch_s"])
    result = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "cli": (f"rtstyle video {args.clip.name} OUT.mp4 --style {args.style} "
                f"--max-frames {args.max_frames} --backend B --json"),
        "machine": {**cpu_facts(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "load_average_before": load_before, "load_average_after": load_average(),
                    "note": "shared machine: other processes ran during these timings"},
        "torch": torch.__version__,
        "clip": args.clip.name, "size": rows["eager"]["runs"][0]["size"],
        "max_frames": args.max_frames, "repeats": args.repeats,
        "rows": rows,
        "target": {"slower_warm_minus_eager_first_frame_s": round(warm - eager, 3),
                   "limit_s": TARGET_S, "met": warm - eager <= TARGET_S},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"{'run':13} {'backend':13} {'launch→1st frame':>17} {'warm-up':>8} "
          f"{'run→1st frame':>14} {'process':>8} {'fps':>6}")
    for name, row in rows.items():
        print(f"{name:13} {row['backend']:13} {row['first_frame_since_launch_s']:15.2f} s "
              f"{row['warmup_s']:6.2f} s {row['first_frame_s']:12.2f} s "
              f"{row['process_wall_s']:6.2f} s {row['fps']:6.1f}")
    verdict = "met" if result["target"]["met"] else "NOT met"
    print(f"slower warm run − eager, launch to first frame: {warm - eager:+.2f} s "
          f"(target ≤ {TARGET_S:g} s: {verdict}); medians of {args.repeats} rounds; "
          f"{rows['eager']['runs'][0]['size']} px, {args.max_frames} frames, torch "
          f"{torch.__version__}, {cpu_facts()['cpu']}, {os.cpu_count()} cores (shared machine)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
