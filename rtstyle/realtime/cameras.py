"""Which cameras this machine has, and opening one without OpenCV's own log on stderr.

OpenCV tries each capture back-end in turn (V4L2, FFmpeg, Orbbec) and each prints its warnings
to stderr, so a machine without a camera used to answer `rtstyle webcam` with ten native lines
and then a hint that another program might hold the camera. Here OpenCV's log is silenced
before a camera is opened (unless the user set `OPENCV_LOG_LEVEL` to debug it), Linux opens
through V4L2 only, and a failure is explained from what the OS says: no video device at all,
no such device, or a device that exists but would not open (busy, or not a capture node).

Linux names its devices in /sys/class/video4linux; a USB camera usually has two nodes, the
pictures (`index` 0) and metadata (`index` 1). Other OSes name nothing, so there the indices
0..N-1 are tried quietly.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2

from ..errors import MediaError

SYSFS = Path("/sys/class/video4linux")
DEV = Path("/dev")
PROBE_INDICES = 6
V4L2_CTL_TIMEOUT_S = 5.0
_VIDEO_NODE = re.compile(r"^video(\d+)$")


class NoCameraError(MediaError):
    """No camera at all, or not the one asked for: a bad --camera value (exit 2)."""


@dataclass(frozen=True)
class CameraMode:
    """One picture size the camera offers in one pixel format, with its frame rates."""

    width: int
    height: int
    fps: tuple[float, ...] = ()
    pixel_format: str | None = None

    def label(self) -> str:
        rates = "/".join(f"{r:g}" for r in self.fps)
        return f"{self.width}x{self.height}" + (f"@{rates}" if rates else "")


@dataclass
class CameraInfo:
    """What `rtstyle cameras` reports for one device.

    `camera` is the value for `--camera`. `modes_from` says who told the sizes: `v4l2-ctl`
    (every mode the driver lists) or `opencv` (only the mode it negotiated on opening).
    """

    camera: int | str
    device: str
    name: str | None = None
    node_index: int | None = None
    opens: bool | None = None
    modes: list[CameraMode] = field(default_factory=list)
    modes_from: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def quiet_opencv() -> None:
    """Silence OpenCV's native log; rtstyle explains capture failures itself."""
    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def _is_linux() -> bool:
    return sys.platform.startswith("linux")


def linux_video_nodes() -> list[Path]:
    """/dev/videoN devices in numeric order."""
    nodes = []
    for path in DEV.glob("video*"):
        match = _VIDEO_NODE.match(path.name)
        if match:
            nodes.append((int(match.group(1)), path))
    return [path for _, path in sorted(nodes)]


def _sysfs_text(node: str, attribute: str) -> str | None:
    try:
        return (SYSFS / node / attribute).read_text().strip() or None
    except OSError:
        return None


def parse_v4l2_formats(text: str) -> list[CameraMode]:
    """Discrete sizes and rates from `v4l2-ctl --list-formats-ext` (stepwise ranges skipped)."""
    modes: list[CameraMode] = []
    pixel_format = None
    size: tuple[int, int] | None = None
    rates: list[float] = []

    def flush() -> None:
        if size is not None:
            modes.append(CameraMode(size[0], size[1], tuple(rates), pixel_format))

    for line in text.splitlines():
        if fmt := re.match(r"\s*\[\d+\]:\s*'([^']+)'", line):
            flush()
            pixel_format, size, rates = fmt.group(1).strip(), None, []
        elif dims := re.search(r"Size:\s*Discrete\s+(\d+)x(\d+)", line):
            flush()
            size, rates = (int(dims.group(1)), int(dims.group(2))), []
        elif "Size:" in line:
            flush()
            size, rates = None, []
        elif size is not None and (rate := re.search(r"\(([\d.]+)\s*fps\)", line)):
            rates.append(float(rate.group(1)))
    flush()
    return modes


def v4l2_modes(device: str) -> list[CameraMode] | None:
    """Every mode the driver lists, when v4l2-ctl (package v4l-utils) is installed."""
    tool = shutil.which("v4l2-ctl")
    if tool is None:
        return None
    try:
        done = subprocess.run([tool, "-d", device, "--list-formats-ext"], capture_output=True,
                              text=True, timeout=V4L2_CTL_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_v4l2_formats(done.stdout) if done.returncode == 0 else None


def _capture_api(device: int | str) -> int:
    """V4L2 alone for a Linux device: the FFmpeg and Orbbec back-ends add only noise when V4L2
    fails. Anything else (other OSes; a video file standing in for a camera) tries them all."""
    if _is_linux() and (isinstance(device, int) or str(device).startswith("/dev/")):
        return cv2.CAP_V4L2
    return cv2.CAP_ANY


def _try_open(device: int | str) -> cv2.VideoCapture | None:
    quiet_opencv()
    capture = cv2.VideoCapture(device, _capture_api(device))
    if capture.isOpened():
        return capture
    capture.release()
    return None


def negotiated_mode(capture: cv2.VideoCapture) -> CameraMode:
    fourcc = int(capture.get(cv2.CAP_PROP_FOURCC))
    codec = "".join(chr((fourcc >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00 ")
    fps = capture.get(cv2.CAP_PROP_FPS)
    return CameraMode(int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                      int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                      (round(fps, 3),) if fps and fps > 0 else (), codec or None)


def _describe_opened(info: CameraInfo, device: int | str) -> CameraInfo:
    capture = _try_open(device)
    info.opens = capture is not None
    if capture is not None:
        try:
            mode = negotiated_mode(capture)
        finally:
            capture.release()
        if not info.modes and mode.width and mode.height:
            info.modes, info.modes_from = [mode], "opencv"
    return info


def list_cameras(*, probe: int = PROBE_INDICES, open_devices: bool = True) -> list[CameraInfo]:
    """The cameras here. Linux: every /dev/videoN, named from sysfs, with the modes v4l2-ctl
    lists (else the one OpenCV negotiates). Elsewhere: the indices below `probe` that open.

    Opening a camera to ask it turns it on for a moment; `open_devices=False` skips that on
    Linux (names and v4l2-ctl modes only).
    """
    if not _is_linux():
        found = []
        for index in range(probe):
            info = _describe_opened(CameraInfo(camera=index, device=str(index)), index)
            if info.opens:
                found.append(info)
        return found
    cameras = []
    for path in linux_video_nodes():
        node = path.name
        node_index = _sysfs_text(node, "index")
        info = CameraInfo(camera=int(node.removeprefix("video")), device=str(path),
                          name=_sysfs_text(node, "name"),
                          node_index=int(node_index) if node_index and node_index.isdigit()
                          else None)
        modes = v4l2_modes(str(path))
        if modes is not None:
            info.modes, info.modes_from = modes, "v4l2-ctl"
        cameras.append(_describe_opened(info, str(path)) if open_devices else info)
    return cameras


def _linux_device_path(device: int | str) -> Path:
    return DEV / f"video{device}" if isinstance(device, int) else Path(device)


def no_camera_message() -> str:
    """What to say on a machine that has no camera at all."""
    if _is_linux():
        return ("no camera found: this machine has no video devices (/dev/video* is empty); "
                "connect a camera, or give a video file or URL with --camera")
    # Without a device list, a camera another program holds looks the same as none at all.
    hint = ("; on macOS, also allow the terminal to use the camera in System Settings > "
            "Privacy & Security > Camera") if sys.platform == "darwin" else ""
    return (f"no camera found: none of the camera indices 0..{PROBE_INDICES - 1} opens (nor "
            f"does a camera that another program is using){hint}; connect a camera, or give a "
            "video file or URL with --camera")


def open_camera(device: int | str) -> cv2.VideoCapture:
    """An opened capture for `device` (an index or a device path), or an error that says
    whether there is no camera, no such camera, or a camera that would not open."""
    if _is_linux():
        path = _linux_device_path(device)
        nodes = linux_video_nodes()
        if not path.exists():
            if not nodes:
                raise NoCameraError(no_camera_message())
            names = ", ".join(f"{n} ({_sysfs_text(n.name, 'name') or '?'})" for n in nodes)
            raise NoCameraError(f"camera {device} not found (no {path}); cameras here: {names} "
                                "(see `rtstyle cameras`)")
        capture = _try_open(str(path) if isinstance(device, str) else device)
        if capture is not None:
            return capture
        name = _sysfs_text(path.name, "name")
        raise MediaError(f"camera {device}{f' ({name})' if name else ''} exists but could not "
                         "be opened: another program may be using it, or it is not a capture "
                         "node (a camera's metadata node); see `rtstyle cameras`, and pick "
                         "another with --camera")
    capture = _try_open(device)
    if capture is not None:
        return capture
    others = [i for i in range(PROBE_INDICES) if i != device and _probe(i)]
    if not others and isinstance(device, int):
        raise NoCameraError(no_camera_message())
    listed = f"; cameras that open here: {', '.join(map(str, others))}" if others else ""
    raise MediaError(f"camera {device} could not be opened: another program may be using it"
                     f"{listed}; pick another with --camera")


def _probe(index: int) -> bool:
    capture = _try_open(index)
    if capture is None:
        return False
    capture.release()
    return True
