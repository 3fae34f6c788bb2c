"""Where a backend's frame time goes: torch.profiler table for one arch/backend at one size.

    python benchmarks/profile_engine.py --arch johnson-lite --backend compile --size 640x360

Prints the top operators by self CPU time and writes the table to
benchmarks/results/profile-<arch>-<backend>-<size>.txt (the evidence behind the README's
"what limits it" notes).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from rtstyle.geometry import parse_size
from rtstyle.models.architectures import build_generator, get_arch
from rtstyle.models.stylizer import Stylizer
from rtstyle.realtime.benchmark import engine_step, synthetic_frame
from rtstyle.realtime.engine import InferenceEngine

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="johnson-lite")
    parser.add_argument("--backend", default="compile")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--rows", type=int, default=20)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("torch", "onnxscript", "onnx_ir"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    width, height = parse_size(args.size)
    torch.manual_seed(0)
    stylizer = Stylizer(build_generator(args.arch), get_arch(args.arch).input_range).eval()
    device = torch.device("cpu")
    engine = InferenceEngine(stylizer, device, backend=args.backend, precision=args.precision)
    frame = synthetic_frame(width, height)
    step = engine_step(engine, device)
    for _ in range(3):
        step(frame)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.frames):
            step(frame)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows)
    header = (f"{args.arch} {engine.backend}/{engine.precision} {args.size}, {args.frames} "
              f"frames, {torch.get_num_threads()} threads, torch {torch.__version__}\n")
    print(header + table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"profile-{args.arch}-{engine.backend}-{args.size}.txt"
    out.write_text(header + table)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
