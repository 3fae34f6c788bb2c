"""benchmarks/targets_table.py turns a retrain_targets.py result into the README's verdicts:
each target is called met or missed from the numbers, at its threshold."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "targets_table.py"


@pytest.fixture(scope="module")
def table():
    spec = importlib.util.spec_from_file_location("targets_table", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(name, style_loss, content, ratio, ewarps, costs, targets=None):
    stills = {"style_loss": style_loss, "content_loss": content, "ssim": 0.6, "style_rel": 0.2,
              "style_rel_ratio": ratio}
    if targets:
        stills["targets"] = {"style_loss": targets[0], "content_loss": targets[1],
                             "met": style_loss <= targets[0] and content <= targets[1]}
    clips = {f"clip{i}_x.mp4": {"ratio": e, "smoothing_style_cost": c}
             for i, (e, c) in enumerate(zip(ewarps, costs, strict=True))}
    return {"name": name, "stills": stills, "clips": clips}


def _result(rows, fps=31.0, first=None):
    speed = {"fps": fps, "backend": "compile/bf16 (tensorrt skipped: …)"}
    speed["first_run"] = first or speed
    return {"rows": rows, "speed": speed}


def test_every_target_met_at_its_threshold(table):
    rows = [_row("ukiyoe", 46_000, 5.0e5, 0.6, [3.0, 1.0], [1.10, 1.0], (46_000, 5.0e5)),
            _row("monet", 500, 3e5, 0.5, [0.4, 0.5], [1.01, 1.02])]
    lines = table.verdicts(_result(rows, fps=30.0))
    assert len(lines) == 5 and all("missed" not in line for line in lines), lines
    assert "2 of 2" in lines[1]


def test_a_miss_names_the_style_clip_and_number(table):
    rows = [_row("ukiyoe", 46_001, 4e5, 0.61, [3.01, 1.0], [1.101, 1.0], (46_000, 5.0e5)),
            _row("monet", 500, 3e5, 0.5, [0.4, 0.5], [1.01, 1.02])]
    first = {"fps": 14.9, "backend": "eager/fp32 (compile/bf16 skipped: …)"}
    lines = table.verdicts(_result(rows, fps=29.9, first=first))
    assert all("**missed**" in line for line in lines), lines
    assert "ukiyoe 0.61×" in lines[1] and "1 of 2" in lines[1]
    assert "worst 3.01×, ukiyoe on clip0_x.mp4; 1 of 4" in lines[2]
    assert "+10.1%" in lines[3]
    assert "29.9 fps, compile/bf16; first run on a cold cache 14.9 fps, eager/fp32" in lines[4]
    markdown = "\n".join(table.style_rows(_result(rows)))
    assert "| ukiyoe | 46,001 | 4e+05 | 0.600 | 0.200 (0.61) | 3.01 (clip0_x) | +10.1 % (clip0_x) |" \
        in markdown
