"""What a batch will do, decided before any work starts.

Inputs (files, folders, glob patterns) are expanded to videos and images; each output is
named after its input in the output folder; an output that exists is a finished one (every
output appears under its name only when complete) and is skipped unless `--overwrite`; a video
longer than `split_seconds` is cut at keyframes into parts that run side by side.

Two inputs with the same output name, or an output that would replace its input, fail here
with exit code 2, before anything is written.
"""

from __future__ import annotations

import bisect
import glob
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from ..errors import MediaError, UserInputError
from ..images import IMAGE_SUFFIXES
from ..realtime.runs import Span

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".wmv", ".flv", ".mpg",
                  ".mpeg", ".ts", ".mts", ".m2ts", ".3gp", ".ogv", ".gif"}
"""Suffixes picked up from folders and patterns (a file named on its own may be anything
FFmpeg reads)."""
KEPT_VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm"}
"""Containers an output keeps; other inputs (.avi, .ts, .gif, ...) become .mp4."""
MAX_PREROLL_FRAMES = 120
_GLOB_CHARS = set("*?[")


def preroll_frames(smooth: float) -> int:
    """Frames stylized before a part's start so that its smoother enters the part as a run over
    the whole file would: the history's weight falls at least by `smooth` per frame, so after n
    frames what the part could not know weighs below half a code value (smooth**n < 1/510).
    0.7 (the default) needs 18; no smoothing needs none. Capped at `MAX_PREROLL_FRAMES`.
    """
    if smooth <= 0:
        return 0
    if smooth >= 1:
        return MAX_PREROLL_FRAMES
    return min(MAX_PREROLL_FRAMES, math.ceil(math.log(1 / 510) / math.log(smooth)))


@dataclass(frozen=True)
class Part:
    """A piece of a long video: its span of the source and the frames it writes."""

    index: int
    span: Span
    frames: int


@dataclass(frozen=True)
class Item:
    """One input and its output. `frames` is what the output will have (0: unknown);
    `parts` is empty for a file done in one piece; `problem` says why it cannot be done."""

    source: Path
    target: Path
    kind: str  # "image" | "video"
    frames: int = 1
    parts: tuple[Part, ...] = ()
    done: bool = False
    problem: str | None = None


@dataclass(frozen=True)
class BatchPlan:
    outdir: Path
    items: tuple[Item, ...]

    @property
    def todo(self) -> list[Item]:
        return [i for i in self.items if not i.done and i.problem is None]

    @property
    def skipped(self) -> list[Item]:
        return [i for i in self.items if i.done]


def _known(path: Path) -> bool:
    suffix = path.suffix.lower()
    return suffix in IMAGE_SUFFIXES or suffix in VIDEO_SUFFIXES


def expand_inputs(args: list[str]) -> list[Path]:
    """Files as given; folders to their videos and images (sorted, not recursive); glob
    patterns (quoted, so the shell leaves them alone, `**` included) to the same."""
    found: list[Path] = []
    for arg in args:
        path = Path(arg).expanduser()
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and _known(p))
            if not inside:
                raise MediaError(f"no videos or images in folder {path}")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        elif _GLOB_CHARS & set(arg):
            matches = sorted(Path(m) for m in glob.glob(os.path.expanduser(arg), recursive=True))
            matches = [m for m in matches if m.is_file() and _known(m)]
            if not matches:
                raise MediaError(f"no videos or images match {arg}")
            found.extend(matches)
        else:
            raise MediaError(f"input not found: {arg}")
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def output_name(source: Path) -> str:
    """The input's name; a video in a container we do not write keeps its stem, as .mp4."""
    suffix = source.suffix.lower()
    if suffix in IMAGE_SUFFIXES or suffix in KEPT_VIDEO_SUFFIXES:
        return source.name
    return source.stem + ".mp4"


@dataclass(frozen=True)
class FrameIndex:
    """Presentation times of a video's frames and of its keyframes (seconds, exact), read from
    the packets without decoding."""

    times: list[Fraction]
    keyframes: list[Fraction]


def index_frames(path: Path) -> FrameIndex | None:
    """None when some packet has no timestamp (it could not be cut by time) or the file cannot
    be read through (the worker will say why)."""
    times, keys = [], []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            time_base = Fraction(stream.time_base)
            for packet in container.demux(stream):
                if packet.size == 0:  # the demuxer's flush packet
                    continue
                if packet.pts is None:
                    return None
                t = packet.pts * time_base
                times.append(t)
                if packet.is_keyframe:
                    keys.append(t)
    except (av.error.FFmpegError, OSError):
        return None
    times.sort()
    return FrameIndex(times, sorted(keys))


def cut_points(index: FrameIndex, seconds: float) -> list[Fraction]:
    """Keyframes where parts start: the first keyframe at least `seconds` after the previous
    cut, unless less than a quarter of that would be left for the last part."""
    if not index.times:
        return []
    step, end = Fraction(seconds), index.times[-1]
    cuts: list[Fraction] = []
    next_at = index.times[0] + step
    for key in index.keyframes:
        if key >= next_at and end - key >= step / 4:
            cuts.append(key)
            next_at = key + step
    return cuts


def split_parts(index: FrameIndex, seconds: float, preroll: int) -> tuple[Part, ...]:
    """Parts of at least `seconds` each, starting at keyframes; each but the first is warmed up
    on the `preroll` frames before it (stylized, not written)."""
    cuts = cut_points(index, seconds)
    if not cuts:
        return ()
    bounds: list[Fraction | None] = [None, *cuts, None]
    times = index.times
    parts = []
    for n, (start, end) in enumerate(zip(bounds, bounds[1:], strict=False)):
        first = 0 if start is None else bisect.bisect_left(times, start)
        last = len(times) if end is None else bisect.bisect_left(times, end)
        warm_from = None
        if start is not None and preroll:
            warm_from = times[max(0, first - preroll)]
        parts.append(Part(n, Span(start=start, end=end, warm_from=warm_from), last - first))
    return tuple(parts)


def _probe_video(path: Path) -> tuple[float, int]:
    """Duration in seconds (0 when unknown) and declared frame count (0 when unknown)."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path.name} has no video stream")
            stream = container.streams.video[0]
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            else:
                duration = (container.duration or 0) / 1_000_000
            return duration, stream.frames or 0
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(f"cannot open {path.name} as a video: {exc}") from None


def plan_item(source: Path, target: Path, *, overwrite: bool, split_seconds: float,
              preroll: int, max_frames: int | None) -> Item:
    if source.suffix.lower() in IMAGE_SUFFIXES:
        return Item(source, target, "image", frames=1, done=target.exists() and not overwrite)
    done = target.exists() and not overwrite
    if done:
        return Item(source, target, "video", frames=0, done=True)
    try:
        duration, frames = _probe_video(source)
    except MediaError as exc:
        return Item(source, target, "video", frames=0, problem=str(exc))
    parts: tuple[Part, ...] = ()
    long = max_frames is None and split_seconds > 0 and duration > split_seconds
    if long or not frames:  # the container may not say how many frames it holds
        index = index_frames(source)
        if index is not None:
            frames = len(index.times)
            if long:
                parts = split_parts(index, split_seconds, preroll)
    if max_frames is not None:
        frames = min(frames, max_frames) if frames else max_frames
    return Item(source, target, "video", frames=frames, parts=parts)


def plan_batch(inputs: list[str], outdir: Path, *, overwrite: bool = False,
               split_seconds: float = 60.0, preroll: int = 0,
               max_frames: int | None = None) -> BatchPlan:
    """Expand, name, skip the finished, cut the long; raises `UserInputError` on a clash."""
    if split_seconds < 0:
        raise UserInputError("--split-seconds must be 0 (never split) or more")
    outdir = outdir.expanduser()
    if outdir.exists() and not outdir.is_dir():
        raise UserInputError(f"output {outdir} is a file; give a folder")
    sources = expand_inputs(inputs)
    if not sources:
        raise MediaError("no inputs given")
    claimed: dict[str, Path] = {}
    for source in sources:
        name = output_name(source)
        if name in claimed:
            raise UserInputError(f"{claimed[name]} and {source} would both be written to "
                                 f"{outdir / name}; batch them into different folders")
        claimed[name] = source
        if (outdir / name).resolve() == source.resolve():
            raise UserInputError(f"the output {outdir / name} would replace its input; "
                                 "choose another output folder")
    outdir.mkdir(parents=True, exist_ok=True)
    items = tuple(plan_item(source, outdir / output_name(source), overwrite=overwrite,
                            split_seconds=split_seconds, preroll=preroll, max_frames=max_frames)
                  for source in sources)
    return BatchPlan(outdir, items)
