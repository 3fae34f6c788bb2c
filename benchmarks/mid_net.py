"""Speed of the mid net (`johnson-mid`) at 640×360 on this CPU, per width and depth, next to
the lite and standard nets: every backend and precision through `rtstyle.realtime.benchmark`
(the code behind `rtstyle bench`), random weights, plus parameters and multiply-adds.

    python benchmarks/mid_net.py                              # the default mid net, all backends
    python benchmarks/mid_net.py --variant channels=16,n_res=5 --variant channels=24 \
        --backend compile --precision bf16 --out benchmarks/results/mid_sweep.json

Writes one JSON object: the machine (CPU model and flags), torch version, thread count, the
load average before and after each variant (timings on a shared machine are noisy), and per
variant its parameters, GMACs and the bench rows (median, p99 latency, fps per backend).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rtstyle.models.architectures import build_generator, get_arch  # noqa: E402
from rtstyle.models.stylizer import Stylizer  # noqa: E402
from rtstyle.realtime.benchmark import run_benchmark  # noqa: E402
from rtstyle.realtime.cache import cpu_facts  # noqa: E402


def loadavg() -> list[float]:
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def parse_variant(text: str) -> tuple[str, dict]:
    """`arch:key=value,key=value` (arch defaults to johnson-mid)."""
    arch, _, rest = text.rpartition(":") if ":" in text else ("johnson-mid", "", text)
    params = {}
    for part in filter(None, rest.split(",")):
        key, _, value = part.partition("=")
        value = value.strip()
        params[key.strip()] = (value == "true" if value in ("true", "false")
                               else int(value) if value.lstrip("-").isdigit() else float(value))
    return arch or "johnson-mid", params


def gmacs(net: nn.Module, width: int, height: int) -> float:
    """Multiply-adds of every convolution for one frame, in billions."""
    total = 0

    def hook(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        k = module.kernel_size[0] * module.kernel_size[1]
        total += output.numel() * (module.in_channels // module.groups) * k

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        net(torch.rand(1, 3, height, width) * 255)
    for h in handles:
        h.remove()
    return round(total / 1e9, 3)


def interleaved(variants: list[tuple[str, dict]], width: int, height: int, frames: int,
                backend: str, precision: str) -> list[dict]:
    """One engine per variant, timed round-robin, frame by frame: on a machine shared with
    other jobs every variant sees the same contention, so their ratios hold even when the
    absolute frame rates do not."""
    from rtstyle.realtime.benchmark import engine_step, synthetic_frame
    from rtstyle.realtime.engine import InferenceEngine

    frame = synthetic_frame(width, height)
    steps, rows = [], []
    for arch, params in variants:
        torch.manual_seed(0)
        net = build_generator(arch, params).eval()
        engine = InferenceEngine(Stylizer(net, get_arch(arch).input_range, name=arch),
                                 torch.device("cpu"), backend=backend, precision=precision,
                                 on_status=lambda m: print(m, file=sys.stderr))
        step = engine_step(engine, torch.device("cpu"))
        for _ in range(3):
            step(frame)
        steps.append(step)
        rows.append({"arch": arch, "arch_params": {**get_arch(arch).default_params(), **params},
                     "backend": engine.active.label, "wall": [], "cpu": []})
    for _ in range(frames):
        for step, row in zip(steps, rows, strict=True):
            start, start_cpu = time.perf_counter(), time.process_time()
            step(frame)
            row["wall"].append(time.perf_counter() - start)
            row["cpu"].append(time.process_time() - start_cpu)
    for row in rows:
        wall, cpu = sorted(row.pop("wall")), sorted(row.pop("cpu"))
        row.update(frames=len(wall), median_ms=round(1000 * wall[len(wall) // 2], 2),
                   p90_ms=round(1000 * wall[int(0.9 * (len(wall) - 1))], 2),
                   p99_ms=round(1000 * wall[int(0.99 * (len(wall) - 1))], 2),
                   cpu_median_ms=round(1000 * cpu[len(cpu) // 2], 2),
                   fps=round(1 / wall[len(wall) // 2], 2))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", action="append",
                        help="ARCH:key=value,... (default: the default johnson-mid)")
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--backend", action="append",
                        help="backends to time (default: eager, onnxruntime, compile)")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/results/mid_net_cpu.json")
    parser.add_argument("--interleave", action="store_true",
                        help="time the variants round-robin through one backend "
                             "(--backend, default compile; --precision, default bf16)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.split("x"))
    if args.interleave:
        before = loadavg()
        rows = interleaved([parse_variant(v) for v in args.variant or ["johnson-mid:"]],
                           width, height, args.frames, (args.backend or ["compile"])[0],
                           "bf16" if args.precision == "auto" else args.precision)
        for row in rows:
            print(json.dumps(row), flush=True)
        facts = cpu_facts()
        payload = {"command": "python " + " ".join(sys.argv), "cpu": facts["cpu"],
                   "cpu_flags": facts["flags"], "torch": torch.__version__,
                   "threads": torch.get_num_threads(), "size": args.size,
                   "loadavg_before": before, "loadavg_after": loadavg(), "interleaved": rows}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(payload, indent=1) + "\n")
        print(f"wrote {args.out}", file=sys.stderr)
        return
    backends = args.backend or ["eager", "onnxruntime", "compile"]
    results = []
    for text in args.variant or ["johnson-mid:"]:
        arch, params = parse_variant(text)
        torch.manual_seed(0)
        net = build_generator(arch, params).eval()
        full = {**get_arch(arch).default_params(), **params}
        before = loadavg()
        start = time.time()
        precisions = ["fp32", "bf16"] if args.precision == "all" else [args.precision]
        rows = []
        for precision in precisions:
            stylizer = Stylizer(net, get_arch(arch).input_range, name=arch)
            report = run_benchmark(stylizer, torch.device("cpu"), sizes=[(width, height)],
                                   backends=backends, precision=precision, frames=args.frames,
                                   model_info={"arch": arch, "params": full},
                                   on_status=lambda m: print(m, file=sys.stderr))
            rows += [r for r in report.to_dict()["rows"]
                     if precision == precisions[0] or r["backend"] != "naive"]
        entry = {"arch": arch, "arch_params": full,
                 "parameters": sum(p.numel() for p in net.parameters()),
                 "gmacs": gmacs(net, width, height), "size": args.size,
                 "loadavg_before": before, "loadavg_after": loadavg(),
                 "seconds": round(time.time() - start, 1), "rows": rows}
        results.append(entry)
        for r in rows:
            print(json.dumps({k: r[k] for k in ("backend", "precision", "status", "reason",
                                                "median_ms", "p99_ms", "cpu_ms", "fps")}),
                  flush=True)
        best = max((r for r in rows if r.get("fps")), key=lambda r: r["fps"], default=None)
        print(json.dumps({"arch": arch, "params": full, "parameters": entry["parameters"],
                          "gmacs": entry["gmacs"], "loadavg": entry["loadavg_after"],
                          "best": best and f"{best['backend']}/{best['precision']} "
                                           f"{best['fps']} fps, p99 {best['p99_ms']} ms"}),
              flush=True)
    facts = cpu_facts()
    payload = {"command": "python " + " ".join(sys.argv), "cpu": facts["cpu"],
               "cpu_flags": facts["flags"], "capability": facts["capability"],
               "logical_cpus": len(os.sched_getaffinity(0)), "torch": torch.__version__,
               "threads": torch.get_num_threads(), "variants": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
