"""Issue #12's targets for a set of styles, measured with the shared tools, in one run.

For each style (a registered name or `FILE.safetensors#NAME`), with rtstyle's default settings
unless `--extra` says otherwise:

* stills: `rtstyle image` of the evaluation photos (../shared/data/content/eval, never trained
  on), scored by `../shared/tools/vggmetrics.py pairs` against the style's painting: Gram
  style loss, content loss, SSIM, style_rel; beside them the issue's absolute targets
  (ukiyoe, scream, shipwreck) and `style_rel` against `--baseline-json` (the bundled `v3`
  numbers on the same photos, benchmarks/results/quality_eval.json; target ≤ 0.6×);
* video: `rtstyle video` of the first `--frames` frames of each shared clip, scaled to
  `--clip-width` (480 px, where the issue measured; 0: the clip's own size) by a near-lossless
  copy that both sides use, `../shared/tools/ewarp.py video` against that copy (pairs without
  cuts): the ratio to the input's own warping error (target ≤ 3×);
* smoothing cost: the same clip with `--no-smooth`; sampled frames of both outputs scored by
  vggmetrics against the painting: style loss with the default smoothing over without
  (target ≤ 1.10);
* speed: `rtstyle video --json` of the 640×360 clip in full for the first style (the default
  one), fps with decode, smoothing and encode (target ≥ 30 on a 2-core CPU); when `auto` ran
  eager because a compile build would not pay for itself over a 10 s clip on a cold cache, the
  first run is kept beside a run after that build (what every later run gets).

    python benchmarks/retrain_targets.py --style monet --style ukiyoe …
    python benchmarks/retrain_targets.py --file paintings7.v4.safetensors   # every style in it
    # prints a table, writes benchmarks/results/retrain_targets_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
TOOLS = SHARED / "tools"
CLIPS = ("bbb_cut_640x360_10s_audio.mp4", "mdn_flower_960x540_5s_audio.mp4",
         "mdn_his_girl_friday_640x480_6s_audio.mp4", "opencv_vtest_pedestrians_480x360_10s.mp4")
SPEED_CLIP = "bbb_cut_640x360_10s_audio.mp4"
# issue #12: Engstrom's feed-forward numbers, with 1.2× slack on content
ABSOLUTE = {"ukiyoe": (46_000, 5.0e5), "scream": (4_800, 3.35e5), "shipwreck": (5_700, 2.9e5)}
KEYS = ("style_loss", "content_loss", "ssim", "style_rel")


def write_result(path: Path, result: dict, started: float) -> None:
    """The benchmark's JSON, with the wall time since `started`, the platform and the load."""
    result |= {"seconds": round(time.perf_counter() - started, 1),
               "platform": platform.platform(),
               "loadavg_end": [round(x, 2) for x in os.getloadavg()]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def vggmetrics(content: Path, stylized: Path, painting: Path) -> dict:
    out = run([sys.executable, str(TOOLS / "vggmetrics.py"), "pairs", "--content", str(content),
               "--stylized", str(stylized), "--style", str(painting), "--json"])
    d = json.loads(out.stdout)
    return {k: d[k]["mean"] for k in KEYS} | {"n": d.get("n")}


def ewarp(clip: Path, styled: Path, frames: int) -> dict:
    out = run([sys.executable, str(TOOLS / "ewarp.py"), "video", "--input", str(clip),
               "--output", str(styled), "--max-frames", str(frames), "--json"])
    d = json.loads(out.stdout)
    return {"ewarp_nocut": d["ewarp_nocut"], "input_ewarp_nocut": d["input_ewarp_nocut"],
            "ratio": d["ewarp_nocut"] / d["input_ewarp_nocut"]}


def sample_frames(video: Path, folder: Path, every: int, stem: str) -> None:
    """Every `every`-th frame as PNG named `<stem><index>` (vggmetrics pairs frames by stem)."""
    import av
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % every == 0:
                Image.fromarray(frame.to_ndarray(format="rgb24")).save(folder / f"{stem}{i:04d}.png")


def scaled_copy(clip: Path, folder: Path, width: int, frames: int) -> Path:
    """The first `frames` frames of `clip` at `width` (even height, area filter), H.264 CRF 0."""
    import av

    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / f"{clip.stem}_w{width}.mp4"
    if dst.exists():
        return dst
    with av.open(str(clip)) as src, av.open(str(dst), "w") as out:
        video = src.streams.video[0]
        height = round(video.height * width / video.width / 2) * 2
        stream = out.add_stream("libx264", rate=video.average_rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "0", "preset": "veryfast"}
        for i, frame in enumerate(src.decode(video)):
            if i >= frames:
                break
            out.mux(stream.encode(frame.reformat(width=width, height=height, format="yuv420p",
                                                 interpolation="AREA")))
        out.mux(stream.encode())
    return dst


def painting_of(style: str) -> Path:
    from rtstyle.models.registry import resolve_style
    from rtstyle.models.training.bundled import PAINTINGS

    spec = resolve_style(style)
    image = (spec.meta.get("style") or {}).get("image")
    if not image:
        image = next((p.file for p in PAINTINGS if p.style == spec.name), None)
    if not image or not (DATA / "styles" / image).is_file():
        raise SystemExit(f"{style}: painting not known; it must be one of ../shared/data/styles")
    return DATA / "styles" / image


def shared_inputs(args, work: Path) -> Path:
    """The evaluation photos (linked) and the clips' scaled copies every style reads, made once
    before any style is measured; returns the photos' folder."""
    photos = work / "photos"
    if not photos.exists():
        photos.mkdir()
        for p in sorted((DATA / "content" / "eval").glob("*.jpg"))[: args.photos]:
            (photos / p.name).symlink_to(p)
    if args.clip_width:
        for clip_name in args.clips:
            scaled_copy(DATA / "video" / clip_name, work / "clips", args.clip_width, args.frames)
    return photos


def measure_style(style: str, args, work: Path, extra: list[str]) -> dict:
    from rtstyle.models.registry import resolve_style

    name = resolve_style(style).name
    painting = painting_of(style)
    row: dict = {"style": style, "name": name, "painting": painting.name}
    photos = work / "photos"  # made by shared_inputs before any style
    stills = work / name / "stills"
    run(["rtstyle", "image", str(photos), "-o", str(stills), "--style", style, *extra])
    row["stills"] = vggmetrics(photos, stills, painting)
    if name in ABSOLUTE:
        style_t, content_t = ABSOLUTE[name]
        row["stills"]["targets"] = {"style_loss": style_t, "content_loss": content_t,
                                    "met": row["stills"]["style_loss"] <= style_t
                                    and row["stills"]["content_loss"] <= content_t}
    base = args.baseline.get(name)
    if base:
        row["stills"]["style_rel_v3"] = base
        row["stills"]["style_rel_ratio"] = row["stills"]["style_rel"] / base
    row["clips"] = {}
    for clip_name in args.clips:
        clip = DATA / "video" / clip_name
        if args.clip_width:  # made by shared_inputs; this only names it
            clip = scaled_copy(clip, work / "clips", args.clip_width, args.frames)
        out, flat = work / name / f"{clip.stem}.mp4", work / name / f"{clip.stem}.nosmooth.mp4"
        common = ["--style", style, "--max-frames", str(args.frames), "--overwrite", *extra]
        run(["rtstyle", "video", str(clip), str(out), *common])
        entry = ewarp(clip, out, args.frames)
        if args.smoothing_cost:
            run(["rtstyle", "video", str(clip), str(flat), *common, "--no-smooth"])
            inputs, smooth, per_frame = (work / name / f"{clip.stem}_{k}" for k in
                                         ("in", "smooth", "perframe"))
            for video, folder in ((clip, inputs), (out, smooth), (flat, per_frame)):
                sample_frames(video, folder, args.every, "f")
            s, p = vggmetrics(inputs, smooth, painting), vggmetrics(inputs, per_frame, painting)
            entry["style_loss_smoothed"], entry["style_loss_per_frame"] = s["style_loss"], \
                p["style_loss"]
            entry["smoothing_style_cost"] = s["style_loss"] / p["style_loss"]
        row["clips"][clip_name] = entry
    return row


def speed(style: str, extra: list[str], work: Path) -> dict:
    """`rtstyle video --json` of the speed clip with default settings, as it comes; and, when
    `auto` ran eager because a build would not pay for itself over a clip this short, once
    more after building the backend it skipped (the case of every run after the first on a
    machine, or of a long video or the camera, which build it): both reports, the target read
    on the second."""
    clip = DATA / "video" / SPEED_CLIP

    def video(*options: str) -> dict:
        out = run(["rtstyle", "video", str(clip), str(work / "speed.mp4"), "--style", style,
                   "--overwrite", "--json", *extra, *options])
        report = json.loads(out.stdout)
        return {k: report.get(k) for k in ("fps", "backend", "frames_written", "seconds",
                                           "smooth", "smooth_blend", "style_scale")}

    first = video()
    skipped = re.search(r"(\w+)/(\w+) skipped: not cached and the run is too short",
                        first["backend"] or "")
    if not skipped:
        return first | {"first_run": first}
    build = video("--backend", skipped[1], "--precision", skipped[2])
    cached = video()
    return cached | {"first_run": first, "build_run": build}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--style", action="append", default=[], help="style name or FILE#NAME")
    ap.add_argument("--file", type=Path, default=None, help="every style of a multi-style file")
    ap.add_argument("--photos", type=int, default=30, help="evaluation photos (first N)")
    ap.add_argument("--frames", type=int, default=60, help="frames of each clip")
    ap.add_argument("--every", type=int, default=10, help="frame sampling for the smoothing cost")
    ap.add_argument("--clip", dest="clips", action="append", default=None,
                    help=f"clip file name in ../shared/data/video (default: {', '.join(CLIPS)})")
    ap.add_argument("--clip-width", type=int, default=480, help="clip width (0: as it is)")
    ap.add_argument("--no-clips", dest="video", action="store_false",
                    help="stills only (a quick look at a checkpoint)")
    ap.add_argument("--no-smoothing-cost", dest="smoothing_cost", action="store_false")
    ap.add_argument("--no-speed", dest="speed", action="store_false")
    ap.add_argument("--extra", default="", help="more options for rtstyle image/video")
    ap.add_argument("--jobs", type=int, default=1,
                    help="styles measured at once, each tool on cores/jobs threads (the tools "
                         "leave cores idle between their steps); the end-to-end speed still "
                         "runs alone, after them")
    ap.add_argument("--baseline-json", type=Path,
                    default=REPO / "benchmarks" / "results" / "quality_eval.json",
                    help="style_rel of the bundled v3 nets (benchmarks/quality.py)")
    ap.add_argument("--out", type=Path,
                    default=REPO / "benchmarks" / "results" / "retrain_targets_cpu.json")
    args = ap.parse_args(argv)
    args.clips = (args.clips or list(CLIPS)) if args.video else []
    styles = list(args.style)
    if args.file:
        from rtstyle.models.weights import read_spec

        styles += [f"{args.file}#{n}" for n in read_spec(args.file).get("styles", [])]
    if not styles:
        ap.error("give --style or --file")
    args.baseline = {}
    if args.baseline_json.is_file():
        for r in json.loads(args.baseline_json.read_text()).get("results", []):
            args.baseline[r["style"].split("-lite")[0]] = r["style_rel"]
    extra = args.extra.split()
    from rtstyle.realtime.benchmark import machine_info

    t0 = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="rtstyle-targets-") as tmp:
        work = Path(tmp)
        shared_inputs(args, work)
        threads = os.environ.get("OMP_NUM_THREADS")
        if args.jobs > 1:  # the tools run as subprocesses: they inherit this
            os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // args.jobs))
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            measured = pool.map(lambda s: measure_style(s, args, work, extra), styles)
            for row in measured:  # in the styles' order, each as soon as it and those before are done
                rows.append(row)
                _print_row(row)
        if threads is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = threads
        result = {"machine": machine_info(), "command": "python benchmarks/retrain_targets.py "
                  + " ".join(argv or sys.argv[1:]), "photos": args.photos, "frames": args.frames,
                  "clip_width": args.clip_width, "jobs": args.jobs, "rows": rows}
        if args.speed:
            result["speed"] = speed(styles[0], extra, work)
            for label, report in (("first run", result["speed"]["first_run"]),
                                  ("then", result["speed"])):
                print(f"end to end on {SPEED_CLIP}, {label}: {report['fps']} fps "
                      f"({report['backend']})")
    write_result(args.out, result, t0)
    return 0


def _print_row(row: dict) -> None:
    """One line per measured style, as the run goes."""
    st = row["stills"]
    ratios = [c["ratio"] for c in row["clips"].values()]
    costs = [c.get("smoothing_style_cost") for c in row["clips"].values()]
    print(f"{row['name']:<10} style {st['style_loss']:>9.0f} content {st['content_loss']:.3g}"
          f" SSIM {st['ssim']:.3f} style_rel {st['style_rel']:.3f}"
          f" (x{st.get('style_rel_ratio', float('nan')):.2f} of v3)"
          + (f"  ewarp x{max(ratios):.2f} worst clip" if ratios else "")
          + (f"  smoothing cost x{max(c for c in costs if c):.3f}" if any(costs) else ""),
          flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
