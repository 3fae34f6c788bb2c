"""Reproduce the README's "Speed and backends" table.

    python benchmarks/bench_engine.py --arch johnson johnson-lite --size 640x360 \
        --label cpu-2core-xeon-amx

Random weights (seeded): speed does not depend on what a style looks like. Writes
benchmarks/results/<label>.json (machine, device, versions, per-backend latency percentiles and
fps, speed-up over the naive FP32 loop) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch

from rtstyle.geometry import parse_size
from rtstyle.models.architectures import build_generator, get_arch
from rtstyle.models.stylizer import Stylizer
from rtstyle.realtime.backends import speed_order
from rtstyle.realtime.benchmark import run_benchmark

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", default=["johnson", "johnson-lite"])
    parser.add_argument("--size", nargs="+", default=["640x360"])
    parser.add_argument("--backend", nargs="+", default=["all"])
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None, help="torch/onnxruntime threads")
    parser.add_argument("--label", required=True, help="machine label, names the JSON file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("torch", "onnxscript", "onnx_ir", "torch.onnx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    backends = speed_order(device.type) if args.backend == ["all"] else args.backend
    sizes = [parse_size(s) for s in args.size]
    runs = []
    for arch in args.arch:
        torch.manual_seed(0)
        stylizer = Stylizer(build_generator(arch), get_arch(arch).input_range).eval()
        report = run_benchmark(stylizer, device, sizes=sizes, backends=backends,
                               precision=args.precision, frames=args.frames,
                               model_info={"arch": arch, "weights": "random (seed 0)"},
                               on_status=lambda m: print(m, file=sys.stderr, flush=True))
        runs.append(report.to_dict())
        print(f"\n{arch} on {report.device} ({report.machine['cpu']}, "
              f"{report.threads} threads)")
        print(f"{'size':>9} {'backend':>12} {'prec':>5} {'median ms':>10} {'p99 ms':>8} "
              f"{'fps':>7} {'x naive':>8} {'cpu ms':>8}  note")
        for r in report.rows:
            print(f"{r.size:>9} {r.backend:>12} {r.precision:>5} {r.median_ms or '-':>10} "
                  f"{r.p99_ms or '-':>8} {r.fps or '-':>7} {r.speedup_vs_naive or '-':>8} "
                  f"{r.cpu_ms or '-':>8}  "
                  f"{r.status if r.status != 'ok' else ''} {r.reason[:80]}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{args.label}.json"
    out.write_text(json.dumps({"label": args.label, "command": " ".join(sys.argv),
                               "runs": runs}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
