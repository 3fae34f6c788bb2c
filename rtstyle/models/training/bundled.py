"""The recipe for rtstyle's bundled styles: which painting, which settings, in which order.

`python -m rtstyle.models.training.bundled --data DIR --styles DIR --out DIR` retrains the set
one style after another (one process, so a shared CPU is not oversubscribed). The paintings and
photos come from the shared data folder; nothing from it is copied into the package.

The bundled nets are *lite* nets trained on a CPU at reduced size (128 px crops, a few hundred
steps), because the run that produced them had no GPU; the standard nets need a GPU session
with the same recipe at `--arch standard --size 256` and many more steps.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .johnson import JohnsonConfig, train_johnson

log = logging.getLogger(__name__)

WEIGHTS_LICENSE = (
    "non-commercial research use: trained on research photo sets (BSDS500, Urban100, ImageNet "
    "samples) with VGG-19 (CC BY 4.0, Simonyan & Zisserman)"
)


@dataclass(frozen=True)
class Painting:
    style: str  # the plain style name the lite net stands in for (`monet`)
    file: str
    title: str
    artist: str
    year: str
    attribution: str

    @property
    def lite_name(self) -> str:
        return f"{self.style}-lite"


PAINTINGS = (
    Painting("monet", "monet_impression_sunrise.jpg", "Impression, Sunrise", "Claude Monet",
             "1872", "Musée Marmottan Monet, Paris; image via rraallvv/styles"),
    Painting("ukiyoe", "hokusai_great_wave.jpg", "The Great Wave off Kanagawa",
             "Katsushika Hokusai", "c. 1831", "woodblock print; image via samkivioja/"
             "Convolutions-and-Content-Aware-Image-Resizing"),
    Painting("vangogh", "vangogh_starry_night.jpg", "The Starry Night", "Vincent van Gogh",
             "1889", "Museum of Modern Art, New York; image via mac-mvak/StyleDiffusion"),
    Painting("cezanne", "cezanne_mont_sainte_victoire.jpg", "Mont Sainte-Victoire",
             "Paul Cézanne", "c. 1887–1890", "one of the series; image via mac-mvak/StyleDiffusion"),
    Painting("scream", "munch_the_scream.jpg", "The Scream", "Edvard Munch", "1893",
             "National Museum, Oslo; image via rraallvv/styles"),
    Painting("shipwreck", "turner_the_shipwreck.jpg", "The Shipwreck", "J. M. W. Turner", "1805",
             "Tate, London; image via rraallvv/styles"),
    Painting("kandinsky", "kandinsky_composition_vii.jpg", "Composition VII",
             "Wassily Kandinsky", "1913", "Tretyakov Gallery, Moscow; image via rraallvv/styles"),
)

# Chosen by measurement on a 2-core Xeon (AMX) shared with other jobs: ~1 s/step at these
# settings with one thread and bf16 autocast; see README "Bundled styles".
CPU_RECIPE = {
    "arch": "lite",
    "size": 128,
    "batch": 2,
    "steps": 500,
    "lr": 3e-3,
    "content_weight": 1.0,
    "style_weight": 0.25,
    "tv_weight": 0.0,
    "precision": "bf16",
    "sample_every": 100,
    "checkpoint_every": 100,
    "seed": 0,
}


def painting_config(p: Painting, data: Path, styles: Path, out: Path, work: Path,
                    overrides: dict) -> JohnsonConfig:
    recipe = {**CPU_RECIPE, **overrides}
    return JohnsonConfig(
        style_image=styles / p.file, data=data, name=p.lite_name, out=out,
        work_dir=work / p.lite_name, license=WEIGHTS_LICENSE, painting=p.title,
        artist=p.artist, year=p.year, attribution=p.attribution, style_license="public domain",
        **recipe,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of training photos")
    parser.add_argument("--styles", type=Path, required=True, help="folder of the paintings")
    parser.add_argument("--out", type=Path, required=True, help="where the style files go")
    parser.add_argument("--work", type=Path, required=True, help="checkpoints and samples")
    parser.add_argument("--only", nargs="*", help="style names to train (default: all)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; 1 avoids thrashing on a shared CPU")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=JSON",
                        help="override a recipe value, e.g. steps=800")
    parser.add_argument("--resume", action="store_true",
                        help="continue from checkpoints; skip styles whose file exists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    for p in PAINTINGS:
        if args.only and p.style not in args.only:
            continue
        cfg = painting_config(p, args.data, args.styles, args.out, args.work, overrides)
        if args.resume:
            if (args.out / f"{cfg.name}.{cfg.tag}.safetensors").is_file():
                continue
            cfg.resume = (cfg.work_dir / "checkpoint.pt").is_file()
        t0 = time.perf_counter()

        def report(step: int, total: int, losses: dict[str, float], name=p.lite_name) -> None:
            if step % 50 == 0 or step == total:
                terms = " ".join(f"{k}={v:.4f}" for k, v in losses.items())
                log.info("%s step %d/%d %.0fs %s", name, step, total,
                         time.perf_counter() - t0, terms)

        result = train_johnson(cfg, report)
        log.info("%s done: %s in %.0f s", p.lite_name, result.style_path, result.duration_s)


if __name__ == "__main__":
    main()
