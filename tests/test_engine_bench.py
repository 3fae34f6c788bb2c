"""`rtstyle bench`: one JSON object with the naive baseline and each backend's speed-up.

Tests never assert speed (that is benchmarks/' job), only that every number is there and sane.
"""

from __future__ import annotations

import json

from typer.testing import CliRunner

from rtstyle.cli import app

runner = CliRunner()


def test_bench_json_has_naive_baseline_and_speedups(tiny_style_file):
    result = runner.invoke(app, ["bench", "--style", str(tiny_style_file), "--device", "cpu",
                                 "--size", "64x48", "--size", "67x41", "--backend", "eager",
                                 "--frames", "3", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["device"] == "cpu" and "torch" in report["versions"]
    rows = report["rows"]
    assert [(r["size"], r["backend"]) for r in rows] == [
        ("64x48", "naive"), ("64x48", "eager"), ("67x41", "naive"), ("67x41", "eager")]
    for row in rows:
        assert row["status"] == "ok", row
        assert row["frames"] == 3
        assert 0 < row["median_ms"] <= row["p99_ms"]
        assert row["fps"] > 0 and row["speedup_vs_naive"] > 0 and row["peak_mem_mb"] > 0


def test_bench_random_weights_table_says_so_and_skips_tensorrt_with_reason():
    result = runner.invoke(app, ["bench", "--arch", "johnson-lite", "--device", "cpu",
                                 "--size", "64x48", "--backend", "tensorrt", "--frames", "2"])
    assert result.exit_code == 0, result.output
    assert "random" in result.output
    assert "skipped" in result.output and "NVIDIA GPU" in result.output
