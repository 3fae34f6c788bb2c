"""The GPU recipe: the standard nets of the seven bundled styles and the AdaIN model, one command,
one wall-clock budget (`rtstyle train recipe`, issue #12 item 7).

Each model gets a share of the budget (`ADAIN_SHARE` of the training time to AdaIN, the rest split
evenly between the styles) and trains as many steps as fit in it: a short calibration run
measures the seconds per step on this device, then the same run resumes from its checkpoint
(nothing is lost) up to the step count that fills the share. Shares are recomputed before each
model from the time actually left, so an early overrun is paid back by the later models. The
models run one after another in one process: on a GPU each already keeps it busy at batch 8,
and one process never oversubscribes a machine.

It writes `NAME.TAG.safetensors` for each model into `out` (the registry loads them by path, or
by name once copied into the user styles folder or bundled with `publish`) and
`recipe_report.json`: device, per model the steps, images seen, images/s, final losses, times and,
with evaluation photos, style_rel / gap closed / SSIM on a few of them.

`toy=True` runs the same code on tiny crops for 2 steps per model (a CPU, CI): a check of the
recipe, not a training.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ...devices import resolve_device
from ...errors import UserInputError
from ...images import IMAGE_SUFFIXES, atomic_output
from .bundled import PAINTINGS, TEMPORAL_RECIPE, WEIGHTS_LICENSE, Painting
from .common import device_description
from .configs import AdaINConfig, JohnsonConfig, RecipeConfig
from .trainer import TrainResult

log = logging.getLogger(__name__)

REPORT_NAME = "recipe_report.json"
ADAIN_NAME = "adain"
# AdaIN's decoder learns to invert VGG-19 for any painting, a harder task than one painting's
# net, so it gets a third of the training time; the seven styles share the rest.
ADAIN_SHARE = 0.35
# Loading, export and evaluation come out of the budget first.
OVERHEAD_SHARE = 0.10


@dataclass(frozen=True)
class Scale:
    """Sizes of one recipe run (the GPU recipe, or the toy check)."""

    size: int  # style nets' crop side
    batch: int
    adain_size: int
    adain_batch: int
    fixed_steps: int | None  # None: time-budgeted
    calibration_steps: int  # steps that measure the speed before the budgeted run
    eval_side: int  # long side of the evaluation photos
    painting_side: int  # long side of the painting in the evaluation (512 = vggmetrics.py)
    prefetch: int


GPU_SCALE = Scale(size=256, batch=8, adain_size=256, adain_batch=8, fixed_steps=None,
                  calibration_steps=30, eval_side=512, painting_side=512, prefetch=4)
TOY_SCALE = Scale(size=32, batch=1, adain_size=32, adain_batch=1, fixed_steps=2,
                  calibration_steps=0, eval_side=32, painting_side=64, prefetch=0)

# (style file, painting, photos) -> scores; the CLI passes
# `rtstyle.metrics.quality.style_file_scores` (metrics sit a floor above this package).
Evaluate = Callable[[Path, Path, list[Path]], dict]


def model_names() -> list[str]:
    return [p.style for p in PAINTINGS] + [ADAIN_NAME]


def johnson_config(p: Painting, cfg: RecipeConfig, scale: Scale, work: Path,
                   steps: int) -> JohnsonConfig:
    """The standard net of one bundled painting: its calibrated style weight and, with the
    temporal term, the v3 stage's weights (`bundled.TEMPORAL_RECIPE` and the painting's own)."""
    style_weight, temporal_weight = p.style_weight, 0.0
    if cfg.temporal:
        stage = {**TEMPORAL_RECIPE, **(p.stage_two or {})}
        style_weight *= stage["style_weight_factor"]
        temporal_weight = stage["temporal_weight"]
    return JohnsonConfig(
        style_image=Path(cfg.styles) / p.file, data=Path(cfg.data), name=p.style,
        arch="standard", size=scale.size, batch=scale.batch, steps=steps, lr=1e-3,
        style_weight=style_weight, temporal_weight=temporal_weight, tv_weight=0.0,
        device=cfg.device, precision=cfg.precision, seed=cfg.seed, compile=False,
        prefetch=scale.prefetch, sample_every=0, checkpoint_every=0, tensorboard=False,
        work_dir=work / p.style, out=Path(cfg.out), tag=cfg.tag, license=WEIGHTS_LICENSE,
        painting=p.title, artist=p.artist, year=p.year, attribution=p.attribution,
        style_license="public domain")


def adain_config(cfg: RecipeConfig, scale: Scale, work: Path, steps: int) -> AdaINConfig:
    return AdaINConfig(
        content=Path(cfg.data), styles=Path(cfg.styles), name=ADAIN_NAME,
        holdout=list(cfg.holdout), size=scale.adain_size, batch=scale.adain_batch, steps=steps,
        device=cfg.device, precision=cfg.precision, seed=cfg.seed, compile=False,
        prefetch=scale.prefetch, sample_every=0, checkpoint_every=0, tensorboard=False,
        work_dir=work / ADAIN_NAME, out=Path(cfg.out), tag=cfg.tag, license=WEIGHTS_LICENSE)


def train_budgeted(make: Callable[[int, bool], object], train: Callable[..., TrainResult],
                   allotted_s: float, scale: Scale) -> tuple[TrainResult, dict]:
    """Train one model for about `allotted_s` seconds (or `scale.fixed_steps` steps).

    `make(steps, resume)` builds its config. Returns the last result and the timing facts.
    """
    t0 = time.perf_counter()
    if scale.fixed_steps is not None:
        result = train(make(scale.fixed_steps, False))
        return result, {"calibration_steps": 0, "s_per_step": None,
                        "wall_s": time.perf_counter() - t0}
    stamps: list[float] = []
    result = train(make(scale.calibration_steps, False),
                   lambda step, total, losses: stamps.append(time.perf_counter()))
    calibrated = time.perf_counter()
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    # the first steps pay for cuDNN's autotuning and the data loader's start
    s_per_step = statistics.median(gaps[len(gaps) // 3:]) if gaps else calibrated - t0
    fixed = max(0.0, (calibrated - t0) - s_per_step * len(stamps))  # build, export: paid again
    extra = int(max(0.0, allotted_s - (calibrated - t0) - fixed) / max(s_per_step, 1e-6))
    if extra > 0:
        result = train(make(scale.calibration_steps + extra, True))
    return result, {"calibration_steps": scale.calibration_steps, "s_per_step": s_per_step,
                    "wall_s": time.perf_counter() - t0}


def _check_inputs(cfg: RecipeConfig, names: list[str]) -> None:
    for folder, what in ((cfg.data, "--data"), (cfg.styles, "--styles")):
        if not Path(folder).is_dir():
            raise UserInputError(f"{what}: folder not found: {folder}")
    unknown = sorted(set(cfg.only) - set(model_names()))
    if unknown:
        raise UserInputError(f"--only {', '.join(unknown)}: choose from "
                             f"{', '.join(model_names())}")
    missing = [p.file for p in PAINTINGS if p.style in names
               and not (Path(cfg.styles) / p.file).is_file()]
    if missing:
        raise UserInputError(f"--styles {cfg.styles} lacks the bundled paintings "
                             f"{', '.join(missing)}")
    if cfg.budget_minutes <= 0:
        raise UserInputError("--budget-minutes must be > 0")


def _eval_photos(cfg: RecipeConfig) -> list[Path]:
    if cfg.eval_photos is None:
        return []
    folder = Path(cfg.eval_photos)
    if not folder.is_dir():
        raise UserInputError(f"--eval-photos: folder not found: {folder}")
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    step = max(1, len(photos) // max(1, cfg.eval_count))
    return photos[::step][:cfg.eval_count]


def _score(evaluate: Evaluate, style_path: Path, paintings: list[Path],
           photos: list[Path]) -> dict:
    per = [evaluate(style_path, p, photos) for p in paintings]
    keys = ("style_rel", "photo_style_rel", "gap_closed", "ssim", "content_loss")
    mean = {k: statistics.fmean(s[k] for s in per if s[k] is not None) for k in keys}
    return {"mean": mean, "per_painting": per}


def run_recipe(cfg: RecipeConfig, evaluate: Evaluate | None = None,
               on_model: Callable[[dict], None] | None = None) -> dict:
    """Train every model of the recipe in the budget; write the files and the report.

    `evaluate` scores a style file against a painting (see `Evaluate`); it runs only when
    `cfg.eval_photos` is set. Returns the report (also written to `out/recipe_report.json`).
    """
    threads = torch.get_num_threads()
    if cfg.toy:
        # Toy nets gain nothing from threads, and on a shared CPU two OpenMP threads that wait
        # for each other made the toy run 10× slower (140 s against 10 s, 2 loaded cores).
        torch.set_num_threads(1)
    try:
        return _run_recipe(cfg, evaluate, on_model)
    finally:
        torch.set_num_threads(threads)


def _run_recipe(cfg: RecipeConfig, evaluate: Evaluate | None,
                on_model: Callable[[dict], None] | None) -> dict:
    from .adain import train_adain
    from .johnson import train_johnson

    names = [n for n in model_names() if not cfg.only or n in cfg.only]
    _check_inputs(cfg, names)
    scale = TOY_SCALE if cfg.toy else GPU_SCALE
    out = Path(cfg.out)
    work = Path(cfg.work_dir or out / "work")
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    photos = _eval_photos(cfg)
    scorer = evaluate if photos else None
    budget = cfg.budget_minutes * 60.0
    start = time.perf_counter()
    shares = {n: (ADAIN_SHARE if n == ADAIN_NAME else (1.0 - ADAIN_SHARE) / len(PAINTINGS))
              for n in names}
    report = {
        "recipe": "toy" if cfg.toy else "gpu",
        "device": device_description(device),
        "torch": torch.__version__,
        "budget_s": budget,
        "settings": {k: (str(v) if isinstance(v, Path) else v)
                     for k, v in dataclasses.asdict(cfg).items()},
        "scale": dataclasses.asdict(scale),
        "models": [],
    }
    paintings = {p.style: p for p in PAINTINGS}
    for name in names:
        left = budget * (1.0 - OVERHEAD_SHARE) - (time.perf_counter() - start)
        allotted = max(0.0, left) * shares[name] / sum(shares[n] for n in names
                                                        if n not in {m["name"] for m in
                                                                     report["models"]})
        if name == ADAIN_NAME:
            result, timing = train_budgeted(
                lambda steps, resume: dataclasses.replace(
                    adain_config(cfg, scale, work, steps), resume=resume),
                train_adain, allotted, scale)
            batch, size = scale.adain_batch, scale.adain_size
            eval_paintings = [Path(cfg.styles) / h for h in cfg.holdout]
            extra = {"arch": "adain", "held_out": list(cfg.holdout)}
        else:
            p = paintings[name]
            result, timing = train_budgeted(
                lambda steps, resume, p=p: dataclasses.replace(
                    johnson_config(p, cfg, scale, work, steps), resume=resume),
                train_johnson, allotted, scale)
            batch, size = scale.batch, scale.size
            eval_paintings = [Path(cfg.styles) / p.file]
            extra = {"arch": "johnson", "painting": p.file}
        t_eval = time.perf_counter()
        scores = _score(scorer, result.style_path, eval_paintings, photos) if scorer else None
        entry = {
            "name": name, **extra,
            "file": str(result.style_path),
            "steps": result.steps, "batch": batch, "size": size,
            "images_seen": result.steps * batch,
            "train_s": round(result.duration_s, 2),
            "images_per_s": round(result.steps * batch / result.duration_s, 2)
            if result.duration_s > 0 else None,
            "allotted_s": round(allotted, 2),
            "wall_s": round(timing["wall_s"], 2),
            "s_per_step": timing["s_per_step"],
            "losses": result.losses,
            "eval": scores,
            "eval_s": round(time.perf_counter() - t_eval, 2) if scores else None,
        }
        report["models"].append(entry)
        log.info("recipe: %s %d steps, %.0f images/s, %.1f s", name, entry["steps"],
                 entry["images_per_s"] or 0, entry["wall_s"])
        if on_model is not None:
            on_model(entry)
    report["wall_s"] = round(time.perf_counter() - start, 2)
    report["within_budget"] = report["wall_s"] <= budget
    with atomic_output(out / REPORT_NAME) as tmp:
        Path(tmp).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _file_styles(path: Path) -> list[str]:
    """The style names a bundled multi-style file holds ([] for a single-style one)."""
    from ..registry import spec_from_file

    return spec_from_file(path).file_styles if path.is_file() else []


def publish(out: Path, assets: Path, tag: str = "v1") -> list[str]:
    """Bundle a recipe's results as the GPU tier: copy each `NAME.TAG.safetensors` of `out`
    into `assets` and make it the default of its name in `assets/manifest.json`.

    The plain names (`monet`) then resolve to the standard nets: they win over the lite nets'
    aliases, and the bundled multi-style file gives up the default of each name published
    (`monet.v4` stays by its tag, `monet-lite` by its full name); `adain` becomes the model a
    painting as `--style` uses.
    """
    from ..registry import spec_from_file
    from ..weights import sha256_file

    manifest_path = assets / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {"format": 1}
    entries = {e["file"]: e for e in manifest.get("styles", [])}
    published = []
    for name in model_names():
        src = out / f"{name}.{tag}.safetensors"
        if not src.is_file():
            continue
        spec = spec_from_file(src)  # must read back as a style before it is bundled
        if spec.name != name:
            raise UserInputError(f"{src.name} holds style '{spec.name}', expected '{name}'")
        dst = assets / src.name
        shutil.copyfile(src, dst)
        for entry in entries.values():
            if entry["name"] == name:
                entry["default"] = False
            elif entry.get("default") and name in (held := _file_styles(assets / entry["file"])):
                # a multi-style file (paintings7) keeps the default of its other names only
                entry["default"] = [n for n in held if n != name
                                    and (entry["default"] is True or n in entry["default"])]
        entries[dst.name] = {"file": dst.name, "name": name, "tag": tag,
                             "sha256": sha256_file(dst), "default": True, "aliases": []}
        published.append(dst.name)
    manifest["styles"] = [entries[k] for k in sorted(entries)]
    with atomic_output(manifest_path) as tmp:
        Path(tmp).write_text(json.dumps(manifest, indent=2) + "\n")
    return published


def main(argv: list[str] | None = None) -> None:
    """`python -m rtstyle.models.training.recipe publish --out DIR`: bundle a recipe's files
    (training itself is `rtstyle train recipe`)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    pub = sub.add_parser("publish", help="copy a recipe's style files into rtstyle/assets")
    pub.add_argument("--out", type=Path, required=True, help="the recipe's --out folder")
    pub.add_argument("--assets", type=Path, default=Path(__file__).resolve().parents[2] / "assets")
    pub.add_argument("--tag", default="v1", help="tag of the files to publish")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for name in publish(args.out, args.assets, args.tag):
        log.info("published %s", name)


if __name__ == "__main__":
    main()
