"""Issue #12's verdicts from a `retrain_targets.py` JSON, as Markdown for the README and notes:
one row per style (stills, worst clip's flicker and smoothing cost) and one line per target,
met or missed with its number, so nothing is copied by hand.

    python benchmarks/targets_table.py benchmarks/results/retrain_targets_paintings7_v4_cpu.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

STYLE_REL_TARGET = 0.6   # × the lite v3 net's style_rel
EWARP_TARGET = 3.0       # × the input's own warping error, every clip
SMOOTHING_TARGET = 1.10  # style loss with the default smoothing over without
FPS_TARGET = 30.0


def _mark(met: bool) -> str:
    return "met" if met else "**missed**"


def _short(clip: str) -> str:
    """"bbb_cut_640x360_10s_audio.mp4" -> "bbb_cut": the name up to its size."""
    parts = Path(clip).stem.split("_")
    return "_".join(p for p in parts[:next((i for i, p in enumerate(parts) if p[:1].isdigit()),
                                           len(parts))])


def _worst(clips: dict, key: str) -> tuple[float, str] | None:
    values = [(c[key], _short(name)) for name, c in clips.items() if c.get(key) is not None]
    return max(values) if values else None


def style_rows(result: dict) -> list[str]:
    lines = ["| style | Gram style loss | content loss | SSIM | style_rel (× v3) | "
             "worst warping error × input | worst smoothing cost |",
             "|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        st = row["stills"]
        ratio = st.get("style_rel_ratio")
        ewarp, cost = _worst(row["clips"], "ratio"), _worst(row["clips"], "smoothing_style_cost")
        lines.append(
            f"| {row['name']} | {st['style_loss']:,.0f} | {st['content_loss']:.3g} | "
            f"{st['ssim']:.3f} | {st['style_rel']:.3f}"
            + (f" ({ratio:.2f})" if ratio is not None else "") + " | "
            + (f"{ewarp[0]:.2f} ({ewarp[1]})" if ewarp else "–") + " | "
            + (f"{(cost[0] - 1) * 100:+.1f} % ({cost[1]})" if cost else "–") + " |")
    return lines


def verdicts(result: dict) -> list[str]:
    rows = result["rows"]
    lines = []
    for row in rows:
        t = row["stills"].get("targets")
        if t:
            st = row["stills"]
            lines.append(f"- {row['name']}: Gram {st['style_loss']:,.0f} at content "
                         f"{st['content_loss']:.3g} (target ≤ {t['style_loss']:,} at ≤ "
                         f"{t['content_loss']:.3g}): {_mark(t['met'])}")
    rel = [(r["name"], r["stills"]["style_rel_ratio"]) for r in rows
           if r["stills"].get("style_rel_ratio") is not None]
    if rel:
        missed = [f"{n} {v:.2f}×" for n, v in rel if v > STYLE_REL_TARGET]
        lines.append(f"- style_rel ≤ {STYLE_REL_TARGET}× v3 for every style: "
                     f"{_mark(not missed)} ({len(rel) - len(missed)} of {len(rel)}"
                     + (f"; missed: {', '.join(missed)}" if missed else "") + ")")
    for key, target, label, fmt in (
            ("ratio", EWARP_TARGET, "warping error ≤ 3× the input's on every clip", "{:.2f}×"),
            ("smoothing_style_cost", SMOOTHING_TARGET, "default smoothing costs ≤ 10 % style",
             "{:+.1%}")):
        worst = [(c[key], r["name"], clip) for r in rows for clip, c in r["clips"].items()
                 if c.get(key) is not None]
        if worst:
            value, name, clip = max(worst)
            shown = fmt.format(value - 1 if key == "smoothing_style_cost" else value)
            over = sum(v > target for v, _, _ in worst)
            lines.append(f"- {label}: {_mark(not over)} (worst {shown}, {name} on {clip}"
                         + (f"; {over} of {len(worst)} style×clip pairs over" if over else "")
                         + ")")
    speed = result.get("speed")
    if speed:
        first = speed.get("first_run", speed)
        lines.append(f"- end to end ≥ {FPS_TARGET:g} fps ({result['rows'][0]['name']}, "
                     f"640×360): {_mark(speed['fps'] >= FPS_TARGET)} ({speed['fps']} fps, "
                     f"{speed['backend'].split(' (')[0]}"
                     + (f"; first run on a cold cache {first['fps']} fps, "
                        f"{first['backend'].split(' (')[0]}" if first is not speed
                        and first.get("fps") != speed["fps"] else "") + ")")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", type=Path, help="a retrain_targets.py result")
    args = ap.parse_args(argv)
    result = json.loads(args.json.read_text())
    print(f"`{result['command']}` ({result['photos']} photos, {result['frames']} frames per "
          f"clip at {result['clip_width']} px, {result['seconds']:.0f} s)\n")
    print("\n".join(style_rows(result)))
    print()
    print("\n".join(verdicts(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
