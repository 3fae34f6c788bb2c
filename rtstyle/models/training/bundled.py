"""The recipe for rtstyle's bundled styles: which painting, which settings, in which order.

`python -m rtstyle.models.training.bundled train --data DIR --styles DIR --out DIR --work DIR`
retrains the set one style after another (one process, so a shared CPU is not oversubscribed);
`... publish --out DIR --styles DIR --photo PHOTO` copies the finished files into
`rtstyle/assets/`, records them (sha256, default tag, alias) in the manifest and renders a
gallery image per style (photo | painting | output); `... publish-multi --file F --styles DIR
--photo PHOTO` does the same for one multi-style file of all the paintings (`rtstyle train
multi`), which then owns the plain names. The paintings and photos come from the shared data
folder; nothing from it is copied into the package.

The bundled nets are *lite* nets trained on a CPU at reduced size (128 px crops, a few hundred
steps), because the run that produced them had no GPU; the standard nets need a GPU session
with the same recipe at `--arch standard --size 256` and many more steps.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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
    # The Gram loss of ordinary photos to a painting ranges from 0.75 (Kandinsky) to 27 (Impression,
    # Sunrise) at 128 px, so one style weight over- or under-styles. Each weight below puts
    # weight × (style loss of unstylized training photos) near 2; monet (6.9) and cezanne (1.3)
    # were trained before that calibration and kept because their samples looked right.
    style_weight: float
    # stage two (TEMPORAL_RECIPE) values for this painting, where the shared ones missed the
    # temporal targets (measured per style: README "Temporal stability")
    stage_two: dict | None = None

    @property
    def lite_name(self) -> str:
        return f"{self.style}-lite"


PAINTINGS = (
    Painting("monet", "monet_impression_sunrise.jpg", "Impression, Sunrise", "Claude Monet",
             "1872", "Musée Marmottan Monet, Paris; image via rraallvv/styles", 0.25,
             stage_two={"temporal_weight": 200.0, "style_weight_factor": 3.0, "steps": 400}),
    Painting("ukiyoe", "hokusai_great_wave.jpg", "The Great Wave off Kanagawa",
             "Katsushika Hokusai", "c. 1831", "woodblock print; image via samkivioja/"
             "Convolutions-and-Content-Aware-Image-Resizing", 2.7),
    Painting("vangogh", "vangogh_starry_night.jpg", "The Starry Night", "Vincent van Gogh",
             "1889", "Museum of Modern Art, New York; image via mac-mvak/StyleDiffusion", 1.65,
             stage_two={"temporal_weight": 120.0}),
    Painting("cezanne", "cezanne_mont_sainte_victoire.jpg", "Mont Sainte-Victoire",
             "Paul Cézanne", "c. 1887–1890", "one of the series; image via mac-mvak/StyleDiffusion",
             0.25),
    Painting("scream", "munch_the_scream.jpg", "The Scream", "Edvard Munch", "1893",
             "National Museum, Oslo; image via rraallvv/styles", 1.75,
             stage_two={"temporal_weight": 110.0, "style_weight_factor": 2.2}),
    Painting("shipwreck", "turner_the_shipwreck.jpg", "The Shipwreck", "J. M. W. Turner", "1805",
             "Tate, London; image via rraallvv/styles", 1.05,
             stage_two={"temporal_weight": 450.0, "style_weight_factor": 4.0}),
    Painting("kandinsky", "kandinsky_composition_vii.jpg", "Composition VII",
             "Wassily Kandinsky", "1913", "Tretyakov Gallery, Moscow; image via rraallvv/styles",
             2.55),
)

# Chosen by measurement on a 2-core Xeon (AMX) shared with other jobs: 0.4–2 s/step at these
# settings with one thread and bf16 autocast (two threads thrashed under that load); see README
# "Bundled styles". monet, trained first, ran 500 steps; the others 400 to fit the time budget.
CPU_RECIPE = {
    "arch": "lite",
    "size": 128,
    "batch": 2,
    "steps": 400,
    "lr": 3e-3,
    "content_weight": 1.0,
    "tv_weight": 0.0,
    "precision": "bf16",
    "sample_every": 100,
    "checkpoint_every": 100,
    "seed": 0,
}


# Stage two (issue 6): fine-tune each stage-one net with the synthetic-motion term. The term
# alone trades style for steadiness: on ukiyoe-lite, 150 steps at temporal weight 20 (tag v2)
# cut the per-frame warping error to 0.46 / 0.54 of v1 (Sintel / Big Buck Bunny) for +10 % /
# +8 % Gram loss, weight 100 to 0.18 / 0.25 for +34 % / +25 %. Doubling the style weight while
# raising the temporal weight to 80 (tag v3) keeps the style: 0.39 / 0.48 of v1's flicker at
# +0.3 % / -4 % Gram loss (README "Temporal stability", benchmarks/results/temporal_v3/).
# Paintings whose v3 missed a target with these values carry their own in `Painting.stage_two`.
TEMPORAL_RECIPE = {
    "steps": 150,
    "lr": 1e-3,
    "temporal_weight": 80.0,
    "style_weight_factor": 2.0,
    "sample_every": 50,
    "checkpoint_every": 50,
    "tag": "v3",
}


def painting_config(p: Painting, data: Path, styles: Path, out: Path, work: Path,
                    overrides: dict, finetune_from: Path | None = None) -> JohnsonConfig:
    """Stage one (from scratch) or, with `finetune_from`, stage two from that folder's net."""
    recipe = {**CPU_RECIPE, "style_weight": p.style_weight}
    work_dir = work / p.lite_name
    if finetune_from is not None:
        recipe.update(TEMPORAL_RECIPE, init_from=str(finetune_from / f"{p.lite_name}.v1.safetensors"))
        recipe.update(p.stage_two or {})
        work_dir = work / f"{p.lite_name}-temporal"
    recipe.update(overrides)
    recipe["style_weight"] *= recipe.pop("style_weight_factor", 1.0)
    return JohnsonConfig(
        style_image=styles / p.file, data=data, name=p.lite_name, out=out,
        work_dir=work_dir, license=WEIGHTS_LICENSE, painting=p.title,
        artist=p.artist, year=p.year, attribution=p.attribution, style_license="public domain",
        **recipe,
    )


def gallery_image(spec_name: str, painting: Path, photo: Path, width: int = 256,
                  render_side: int = 384) -> np.ndarray:
    """photo | painting | output side by side, each `width` px wide, as H×W×3 uint8.

    The output is rendered at `render_side` (near the size the lite nets are used at on a CPU)
    and then scaled to the panel, so the gallery shows the stroke size users will see.
    """
    from ...images import image_to_tensor, read_image, resize_max_side, tensor_to_image
    from ..loading import load_stylizer

    photo_rgb = resize_max_side(read_image(photo), render_side)
    with torch.no_grad():
        styled = tensor_to_image(load_stylizer(spec_name)(image_to_tensor(photo_rgb)))
    h = round(width * photo_rgb.shape[0] / photo_rgb.shape[1])
    panels = [_fit(photo_rgb, width, h), _fit(read_image(painting), width, h), _fit(styled, width, h)]
    return np.concatenate(panels, axis=1)


def _fit(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Centre-crop to the panel's aspect ratio, then resize (Lanczos)."""
    from PIL import Image

    h, w = rgb.shape[:2]
    target = width / height
    if w / h > target:
        cw = round(h * target)
        rgb = rgb[:, (w - cw) // 2:(w - cw) // 2 + cw]
    else:
        ch = round(w / target)
        rgb = rgb[(h - ch) // 2:(h - ch) // 2 + ch]
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.LANCZOS))


def _read_manifest(assets: Path) -> tuple[Path, dict]:
    path = assets / "manifest.json"
    return path, json.loads(path.read_text()) if path.is_file() else {"format": 1}


def publish(out: Path, styles: Path, photo: Path, assets: Path, only: list[str] | None,
            tag: str = "v2") -> None:
    """Copy finished lite styles into the package and record them in its manifest.

    Each lite net is the default of its own name and carries the plain name as an alias, so
    `--style monet` works out of the box until a GPU-trained standard `monet` net exists (the
    registry lets a real style of that name win over the alias).
    """
    from ...images import write_image
    from ..registry import resolve_style
    from ..weights import sha256_file

    manifest_path, manifest = _read_manifest(assets)
    entries = {e["file"]: e for e in manifest.get("styles", [])}
    for p in PAINTINGS:
        if only and p.style not in only:
            continue
        src = out / f"{p.lite_name}.{tag}.safetensors"
        if not src.is_file():
            log.warning("%s: not trained, not published", p.lite_name)
            continue
        dst = assets / src.name
        shutil.copyfile(src, dst)
        gallery = assets / f"{p.lite_name}.{tag}.jpg"
        write_image(gallery, gallery_image(str(dst), styles / p.file, photo), quality=85)
        for entry in entries.values():
            if entry["name"] == p.lite_name:
                entry["default"], entry["aliases"] = False, []
        entries[dst.name] = {
            "file": dst.name, "name": p.lite_name, "tag": tag, "sha256": sha256_file(dst),
            "default": True, "aliases": [p.style], "gallery": gallery.name,
        }
        resolve_style(str(dst))  # the copied file must read back as a style
        log.info("published %s (%d bytes, gallery %d bytes)", dst.name, dst.stat().st_size,
                 gallery.stat().st_size)
    manifest["styles"] = [entries[k] for k in sorted(entries)]
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")


# Gallery panels of the multi-style release: each panel this wide (photo | painting | output),
# the photo stylized at its own size up to GALLERY_RENDER_SIDE, so the README shows the strokes
# at the size users get them (the old 192 px thumbnails hid the lite nets' hatching).
GALLERY_WIDTH = 512
GALLERY_RENDER_SIDE = 768


def publish_multi(style_file: Path, styles: Path, photo: Path, assets: Path, tag: str,
                  keep_lite_tag: str | None = "v3",
                  video_style_scale: float | str | dict[str, float | str] | None = None
                  ) -> Path:
    """Make a multi-style file of the bundled paintings (`rtstyle train multi`) the package's
    default for each plain name (`monet`, `ukiyoe`, …).

    The file is copied as `<name>.<tag>.safetensors` with `tag` written into its spec; each style
    gets a gallery picture. The lite nets lose their plain-name aliases (the multi file's styles
    now own those names); their `keep_lite_tag` file stays as `<style>-lite` (the faster tier),
    and every other lite file is dropped from the package and the manifest (superseded; git
    history keeps them). `video_style_scale`, when given, is written into the spec: the
    `--style-scale` that video, camera and live runs use unless told otherwise; a table by
    style name ("*": the others) gives some styles their own. Returns the copied file.
    """
    from ...images import write_image
    from ..registry import resolve_style
    from ..weights import read_spec, read_tensors, sha256_file, write_style_file

    spec = read_spec(style_file)
    names = spec.get("styles") or []
    known = {p.style: p for p in PAINTINGS}
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        raise ValueError(f"{style_file}: not a multi-style file of the bundled paintings "
                         f"(styles {names}; unknown {unknown})")
    if video_style_scale is not None:
        spec = {**spec, "video_style_scale": _video_style_scale_entry(video_style_scale, names)}
    dst = assets / f"{spec['name']}.{tag}.safetensors"
    write_style_file(dst, read_tensors(style_file), {**spec, "tag": tag}, dtype=None)
    galleries = {}
    for name in names:
        gallery = assets / f"{name}.{tag}.jpg"
        write_image(gallery, gallery_image(f"{dst}#{name}", styles / known[name].file, photo,
                                           width=GALLERY_WIDTH, render_side=GALLERY_RENDER_SIDE),
                    quality=90)
        galleries[name] = gallery.name

    manifest_path, manifest = _read_manifest(assets)
    kept = []
    lite_names = {known[n].lite_name for n in names}
    for entry in manifest.get("styles", []):
        if entry["file"] == dst.name:
            continue
        if entry["name"] in lite_names:
            if entry["tag"] != keep_lite_tag:  # superseded: out of the package
                for old in (entry["file"], entry.get("gallery")):
                    if isinstance(old, str) and old:
                        (assets / old).unlink(missing_ok=True)
                continue
            entry["aliases"] = []
        kept.append(entry)
    kept.append({"file": dst.name, "name": spec["name"], "tag": tag, "sha256": sha256_file(dst),
                 "default": True, "aliases": [], "gallery": galleries})
    manifest["styles"] = sorted(kept, key=lambda e: e["file"])
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    resolve_style(str(dst))  # the copied file must read back as a style
    log.info("published %s (%s) with %d gallery pictures", dst.name, ", ".join(names), len(names))
    return dst


def _video_style_scale_entry(value: float | str | dict[str, float | str],
                             names: list[str]) -> float | str | dict[str, float | str]:
    """The spec's `video_style_scale`, checked: one scale, or a table by style name with "*"
    for the others (collapsed to one scale when every style gets the same)."""
    from ..style_scale import parse_style_scale

    if not isinstance(value, dict):
        return parse_style_scale(value)
    unknown = sorted(set(value) - set(names) - {"*"})
    if unknown:
        raise ValueError(f"video_style_scale for {unknown}: not styles of this file ({names})")
    table = {k: parse_style_scale(v) for k, v in value.items()}
    if len({table.get(n, table.get("*", 1.0)) for n in names}) == 1:
        return table.get(names[0], table.get("*", 1.0))
    return table


def parse_scale_table(values: list[str]) -> float | str | dict[str, str] | None:
    """`--video-style-scale auto --video-style-scale kandinsky=auto:144` -> the table
    {"*": "auto", "kandinsky": "auto:144"} (a lone plain value stays itself)."""
    if not values:
        return None
    table = {}
    for v in values:
        name, sep, scale = v.rpartition("=")
        table[name.strip() if sep else "*"] = scale.strip()
    return table["*"] if list(table) == ["*"] else table


def publish_model(src: Path, assets: Path, default_strength: float | None = None) -> Path:
    """Copy one style file (the arbitrary-style model, say) into the package as the default
    tag of its name, replacing an older bundled file of that name. `default_strength` is
    written into its spec: the strength runs use when none is given (the operating point at
    which the model was measured to meet its bar)."""
    from ..registry import resolve_style
    from ..weights import read_spec, read_tensors, sha256_file, write_style_file

    spec = read_spec(src)
    dst = assets / f"{spec['name']}.{spec['tag']}.safetensors"
    if default_strength is None:
        shutil.copyfile(src, dst)
    else:
        write_style_file(dst, read_tensors(src), {**spec, "default_strength": default_strength},
                         dtype=None)
    manifest_path, manifest = _read_manifest(assets)
    kept = []
    for entry in manifest.get("styles", []):
        if entry["name"] == spec["name"] and entry["file"] != dst.name:
            (assets / entry["file"]).unlink(missing_ok=True)
        elif entry["file"] != dst.name:
            kept.append(entry)
    kept.append({"file": dst.name, "name": spec["name"], "tag": spec["tag"],
                 "sha256": sha256_file(dst), "default": True, "aliases": []})
    manifest["styles"] = sorted(kept, key=lambda e: e["file"])
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    resolve_style(str(dst))
    log.info("published %s (%d bytes)", dst.name, dst.stat().st_size)
    return dst


def clip_frame_grid(style_file: Path, names: list[str], clip: Path, frame_index: int = 60,
                    columns: int = 2) -> np.ndarray:
    """One frame of a video at its own size, then that frame in each style, in a grid (H×W×3
    uint8): the README's look at what `rtstyle video` makes of a real clip, at the stroke
    scale it uses by default (the file's `video_style_scale`)."""
    import av

    from ...images import image_to_tensor, tensor_to_image
    from ..loading import load_stylizer, video_style_scale
    from ..style_scale import with_style_scale

    with av.open(str(clip)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == frame_index:
                rgb = frame.to_ndarray(format="rgb24")
                break
        else:
            raise ValueError(f"{clip} has fewer than {frame_index + 1} frames")
    tiles = [rgb]
    with torch.no_grad():
        for name in names:
            style = f"{style_file}#{name}"
            stylizer = load_stylizer(style)
            stylizer = with_style_scale(stylizer, video_style_scale([style]), stylizer.train_size)
            tiles.append(tensor_to_image(stylizer(image_to_tensor(rgb))))
    tiles += [np.full_like(rgb, 255)] * (-len(tiles) % columns)
    rows = [np.concatenate(tiles[i:i + columns], axis=1) for i in range(0, len(tiles), columns)]
    return np.concatenate(rows, axis=0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train the lite nets one after another")
    train.add_argument("--data", type=Path, required=True, help="folder of training photos")
    train.add_argument("--styles", type=Path, required=True, help="folder of the paintings")
    train.add_argument("--out", type=Path, required=True, help="where the style files go")
    train.add_argument("--work", type=Path, required=True, help="checkpoints and samples")
    train.add_argument("--only", nargs="*", help="style names to train (default: all)")
    train.add_argument("--threads", type=int, default=1,
                       help="torch threads; 1 avoids thrashing on a shared CPU")
    train.add_argument("--set", nargs="*", default=[], metavar="KEY=JSON",
                       help="override a recipe value, e.g. steps=800")
    train.add_argument("--finetune-from", type=Path, default=None, metavar="DIR",
                       help="stage two: fine-tune DIR/<name>.v1.safetensors with the temporal term")
    train.add_argument("--resume", action="store_true",
                       help="continue from checkpoints; skip styles whose file exists")
    pub = sub.add_parser("publish", help="copy finished styles into rtstyle/assets")
    pub.add_argument("--out", type=Path, required=True, help="where the trained files are")
    pub.add_argument("--styles", type=Path, required=True, help="folder of the paintings")
    pub.add_argument("--photo", type=Path, required=True, help="gallery photo")
    pub.add_argument("--assets", type=Path, default=Path(__file__).resolve().parents[2] / "assets")
    pub.add_argument("--only", nargs="*", help="style names to publish (default: all trained)")
    pub.add_argument("--tag", default="v2", help="tag of the files to publish (becomes default)")
    multi = sub.add_parser("publish-multi", help="make a multi-style file of the bundled "
                           "paintings the default of each plain name")
    multi.add_argument("--file", type=Path, required=True, help="the `rtstyle train multi` file")
    multi.add_argument("--styles", type=Path, required=True, help="folder of the paintings")
    multi.add_argument("--photo", type=Path, required=True, help="gallery photo")
    multi.add_argument("--assets", type=Path,
                       default=Path(__file__).resolve().parents[2] / "assets")
    multi.add_argument("--tag", default="v4", help="tag of the published file")
    multi.add_argument("--clip", type=Path, default=None,
                       help="also write one frame of this video in every style (--clip-out)")
    multi.add_argument("--clip-out", type=Path, default=Path("docs/gallery_clip.jpg"))
    multi.add_argument("--video-style-scale", action="append", default=[],
                       metavar="[STYLE=]S|auto|auto:N",
                       help="the --style-scale video and camera runs use by default; "
                            "STYLE=… for one style (repeatable)")
    one = sub.add_parser("publish-model", help="bundle one style file (e.g. the AdaIN model)")
    one.add_argument("--file", type=Path, required=True)
    one.add_argument("--default-strength", type=float, default=None,
                     help="strength runs use when none is given")
    one.add_argument("--assets", type=Path, default=Path(__file__).resolve().parents[2] / "assets")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.command == "publish-model":
        publish_model(args.file, args.assets, args.default_strength)
        return
    if args.command == "publish-multi":
        dst = publish_multi(args.file, args.styles, args.photo, args.assets, args.tag,
                            video_style_scale=parse_scale_table(args.video_style_scale))
        if args.clip:
            from ...images import write_image
            from ..weights import read_spec

            names = read_spec(dst)["styles"]
            write_image(args.clip_out, clip_frame_grid(dst, names, args.clip), quality=90)
        return
    if args.command == "publish":
        publish(args.out, args.styles, args.photo, args.assets, args.only, args.tag)
        return
    torch.set_num_threads(args.threads)
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    for p in PAINTINGS:
        if args.only and p.style not in args.only:
            continue
        cfg = painting_config(p, args.data, args.styles, args.out, args.work, overrides,
                              args.finetune_from)
        if args.resume:
            if (args.out / f"{cfg.name}.{cfg.tag}.safetensors").is_file():
                continue
            cfg.resume = (cfg.work_dir / "checkpoint.pt").is_file()
        t0 = time.perf_counter()

        def report(step: int, total: int, losses: dict[str, float], name=p.lite_name,
                   t0=t0) -> None:
            if step % 50 == 0 or step == total:
                terms = " ".join(f"{k}={v:.4f}" for k, v in losses.items())
                log.info("%s step %d/%d %.0fs %s", name, step, total,
                         time.perf_counter() - t0, terms)

        result = train_johnson(cfg, report)
        log.info("%s done: %s in %.0f s", p.lite_name, result.style_path, result.duration_s)


if __name__ == "__main__":
    main()
