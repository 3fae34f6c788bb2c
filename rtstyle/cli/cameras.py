"""`rtstyle cameras`: the cameras this machine has, and what to pass to `--camera`.

No camera is an answer, not an error: the verb prints "no camera found" and exits 0, and
`--json` prints `{"cameras": []}`, so scripts test the list rather than the exit code.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from .common import JsonOption, out, user_errors

MAX_MODES_SHOWN = 6
# Same value as rtstyle.realtime.cameras.PROBE_INDICES (not imported: keeps --help fast).
PROBE_INDICES = 6


def _modes_text(info) -> str:
    """`MJPG 1920x1080@30 1280x720@30/60 …; YUYV 640x480@30`, grouped by pixel format."""
    groups: dict[str, list[str]] = {}
    for mode in info.modes:
        groups.setdefault(mode.pixel_format or "?", []).append(mode.label())
    parts = []
    for fmt, labels in groups.items():
        more = f" (+{len(labels) - MAX_MODES_SHOWN})" if len(labels) > MAX_MODES_SHOWN else ""
        parts.append(f"{fmt} {' '.join(labels[:MAX_MODES_SHOWN])}{more}")
    text = "; ".join(parts)
    if info.modes_from == "opencv":
        text += " (as opened)"
    if not text:
        text = "would not open" if info.opens is False else "-"
    return text


def cameras(
    *,
    probe: Annotated[int, typer.Option(
        min=1, help="Windows/macOS: camera indices to try, 0..N-1 (Linux lists its devices).")
    ] = PROBE_INDICES,
    no_open: Annotated[bool, typer.Option(
        "--no-open", help="Linux: do not open the cameras (names, and sizes from v4l2-ctl only).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List the cameras: the value for --camera, name, and sizes/rates where the OS tells."""
    from ..realtime.cameras import list_cameras

    with user_errors():
        found = list_cameras(probe=probe, open_devices=not no_open)
    if as_json:
        out.print_json(json.dumps({"cameras": [c.as_dict() for c in found],
                                   "platform": sys.platform}))
        return
    if not found:
        out.print("no camera found", highlight=False)
        return
    table = Table(title="cameras (use the first column with --camera)")
    for col in ("camera", "device", "name", "sizes @ fps"):
        table.add_column(col)
    for info in found:
        table.add_row(str(info.camera), info.device, info.name or "", _modes_text(info))
    out.print(table)
