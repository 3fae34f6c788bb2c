"""`rtstyle.flow` stays on the ground floor, so every floor can use it without import cycles.

Flow used to be split between `realtime/flow.py` and `metrics/flow.py`; the training term and the
smoother then imported up the layers. These tests fail if that layering comes back.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ROOT.parent / "shared" / "tools" / "layers.py"
GROUND = {"errors", "geometry", "devices", "images"}


def _rtstyle_imports(path: Path) -> set[str]:
    """Top-level rtstyle units that a top-level module `rtstyle/<name>.py` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
            found |= {n.split(".")[1] for n in names if n.startswith("rtstyle.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] == "rtstyle":
                    found |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names}
            elif node.level == 1:
                # In rtstyle/flow.py, `from . import x` and `from .x import y` both reach unit x.
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found |= {a.name for a in node.names}
            else:
                found.add("<above rtstyle>")
    return found


def test_flow_imports_only_ground_modules():
    imported = _rtstyle_imports(ROOT / "rtstyle" / "flow.py")
    assert imported <= GROUND, f"rtstyle/flow.py imports above ground: {imported - GROUND}"
    assert not (ROOT / "rtstyle" / "realtime" / "flow.py").exists()
    assert not (ROOT / "rtstyle" / "metrics" / "flow.py").exists()


def test_layers_report_nothing_about_flow():
    if not LAYERS.is_file():
        pytest.skip(f"{LAYERS} not present beside the checkout")
    result = subprocess.run([sys.executable, str(LAYERS), str(ROOT)], capture_output=True,
                            text=True, check=False)
    assert result.returncode in (0, 1), result.stderr
    flow_lines = [line for line in result.stdout.splitlines() if "flow" in line]
    assert not flow_lines, "\n".join(flow_lines)
