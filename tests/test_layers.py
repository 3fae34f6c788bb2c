"""The house's floors: ground → models → realtime/metrics → apps, no upward import, no cycle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ROOT.parent / "shared" / "tools" / "layers.py"


def test_no_import_runs_up_a_floor_or_round_a_circle():
    if not LAYERS.is_file():
        pytest.skip(f"the layering tool is not at {LAYERS}")
    result = subprocess.run([sys.executable, str(LAYERS), str(ROOT)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("layers ok")


def test_listing_backends_for_help_does_not_import_torch():
    """`rtstyle --help` builds its text from the backend registry; that must stay cheap."""
    code = ("import sys; from rtstyle.cli.common import BackendOption; "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
