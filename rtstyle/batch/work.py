"""What a worker does with one task: a still, a video (whole, or one part of a long one), or
the join of a video's parts. The same code runs in a local worker process and in a Ray task.

Every output is written under a hidden scratch folder beside the outputs and renamed into
place only when complete, so a finished name is always a finished file, and an interrupted or
failed task leaves nothing under it (a rerun redoes it). A task says how it is doing through
`report(event)`: ("start", key, node) and ("frames", key, written).

A task that fails on bad input (`UserInputError`: unreadable file, unknown codec) returns its
reason and is not tried again; any other failure is raised, for a retry.

Test hook: with `RTSTYLE_BATCH_FAIL_ONCE=FOLDER` in a worker's environment, a video or still
task whose input name is a file in FOLDER removes that file and fails once (a video after its
first written frame, so the cleanup of a half-written output is exercised too); its retry
finds no flag and succeeds. The removal is atomic, so exactly one attempt fails.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import MediaError, RtstyleError, UserInputError
from ..realtime.runs import Geometry, Span, StyleSettings, VideoRun
from .bundle import StyleBundle
from .join import join_parts

log = logging.getLogger(__name__)

FAIL_ONCE_ENV = "RTSTYLE_BATCH_FAIL_ONCE"
REPORT_EVERY_S = 0.5

Report = Callable[[tuple], None]


class Cancelled(Exception):  # noqa: N818 - a request, not a failure
    """The batch is stopping (Ctrl-C in the driver); the task ends and removes its output."""


class InjectedFailure(RuntimeError):
    """The `RTSTYLE_BATCH_FAIL_ONCE` test hook."""


@dataclass(frozen=True)
class Recipe:
    """How every file of a batch is painted and written: the options of `video` and `image`.
    The style in `settings` is replaced, on each worker, by that worker's copy of its files."""

    settings: StyleSettings
    geometry: Geometry = Geometry()
    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    max_frames: int | None = None


@dataclass(frozen=True)
class TaskResult:
    key: str
    frames: int
    seconds: float
    node: str
    error: str | None = None  # set for bad input, which a retry would not fix


@dataclass
class WorkerContext:
    """What a running task can use: the recipe with local style files, progress, cancel."""

    recipe: Recipe
    report: Report
    cancelled: Callable[[], bool]
    key: str = ""
    _last_report: float = 0.0

    def frames_done(self, written: int, final: bool = False) -> None:
        """Progress, at most every `REPORT_EVERY_S`; raises `Cancelled` when asked to stop."""
        if self.cancelled():
            raise Cancelled
        now = time.monotonic()
        if final or now - self._last_report >= REPORT_EVERY_S:
            self._last_report = now
            self.report(("frames", self.key, written))


def _fail_once_flag(source: Path) -> bool:
    """The test hook (module doc): True for exactly one attempt per flag file."""
    folder = os.environ.get(FAIL_ONCE_ENV)
    if not folder:
        return False
    try:
        (Path(folder) / source.name).unlink()
    except FileNotFoundError:
        return False
    return True


def _check_input(source: Path) -> None:
    if not source.exists():
        raise MediaError(f"input not found on {socket.gethostname()}: {source} (every worker "
                         "needs the inputs and the output folder at the same path)")


@functools.lru_cache(maxsize=2)
def _stylizer(weights: str, painting: Path | None, device: str):
    """A worker keeps the net it built for stills: a folder of photos is one style."""
    from ..models.loading import load_stylizer

    return load_stylizer(weights, device=device, style_image=painting)


@dataclass(frozen=True)
class StillTask:
    key: str
    source: Path
    target: Path
    scratch: Path
    frames: int = 1

    def perform(self, ctx: WorkerContext) -> int:
        from ..devices import resolve_device
        from ..images import read_image, write_image
        from ..models.style_scale import with_style_scale
        from ..realtime.finishing import make_finish
        from ..stills import stylize_rgb

        _check_input(self.source)
        if ctx.cancelled():
            raise Cancelled
        if _fail_once_flag(self.source):
            raise InjectedFailure(f"{FAIL_ONCE_ENV} flag for {self.source.name}")
        s, g = ctx.recipe.settings, ctx.recipe.geometry
        device = resolve_device(s.device)
        stylizer = with_style_scale(_stylizer(s.styles[0], s.style_image, str(device)),
                                    s.style_scale)
        finish = make_finish(photoreal=s.photoreal, radius=s.photoreal_radius,
                             eps=s.photoreal_eps, device=device)
        rgb = stylize_rgb(stylizer, read_image(self.source), device, size=g.size,
                          scale=g.scale, max_side=g.max_side, strength=s.strength,
                          preserve_color=s.preserve_color, finish=finish)
        work = self.scratch / self.target.name
        try:
            write_image(work, rgb)
            os.replace(work, self.target)
        finally:
            work.unlink(missing_ok=True)
        return 1


@dataclass(frozen=True)
class VideoTask:
    """A whole video into `target`, or with a `span`, one part of it into a part file."""

    key: str
    source: Path
    target: Path
    scratch: Path
    frames: int = 0
    span: Span | None = None

    def perform(self, ctx: WorkerContext) -> int:
        _check_input(self.source)
        fail_once = _fail_once_flag(self.source)
        r = ctx.recipe
        work = self.scratch / f"{self.target.stem}.writing{self.target.suffix}"

        def on_frame(stats) -> None:
            ctx.frames_done(stats.written)
            if fail_once:
                raise InjectedFailure(f"{FAIL_ONCE_ENV} flag for {self.source.name}")

        try:
            with VideoRun(self.source, work, r.settings, geometry=r.geometry, codec=r.codec,
                          crf=r.crf, preset=r.preset, overwrite=True,
                          max_frames=None if self.span else r.max_frames,
                          span=self.span) as run:
                if ctx.cancelled():
                    raise Cancelled
                run.warm_up()
                report = run.run(on_frame=on_frame)
            if report.stats.written == 0:
                raise MediaError(f"{self.source.name}: no frame could be read "
                                 + ("in this part" if self.span else ""))
            os.replace(work, self.target)
        finally:
            work.unlink(missing_ok=True)
        if report.warning:
            log.warning("%s: %s", self.source.name, report.warning)
        ctx.frames_done(report.stats.written, final=True)
        return report.stats.written


@dataclass(frozen=True)
class JoinTask:
    """The parts of a long video, joined into `target` with the source's audio."""

    key: str
    source: Path
    target: Path
    scratch: Path
    parts: tuple[Path, ...]
    frames: int = 0

    def perform(self, ctx: WorkerContext) -> int:
        if ctx.cancelled():
            raise Cancelled
        work = self.scratch / f"{self.target.stem}.joining{self.target.suffix}"
        try:
            written = join_parts(list(self.parts), self.source, work)
            if self.frames and written != self.frames:
                raise RtstyleError(f"{self.source.name}: the parts hold {written} frames, "
                                   f"but {self.frames} were written")
            os.replace(work, self.target)
        finally:
            work.unlink(missing_ok=True)
        for part in self.parts:
            part.unlink(missing_ok=True)
        return written


Task = StillTask | VideoTask | JoinTask


def perform(task: Task, recipe: Recipe, style: StyleBundle, report: Report, *,
            cancelled: Callable[[], bool] = lambda: False,
            threads: int | None = None) -> TaskResult:
    """Run one task in this process (a local worker or a Ray task) and say how it went.

    Bad input comes back as `TaskResult.error`; anything else is raised as `TaskFailed` (a
    plain message, which pickles between processes), so that it can be tried again.
    """
    node = socket.gethostname()
    report(("start", task.key, node))
    started = time.monotonic()
    try:
        if threads:
            limit_threads(threads)
        weights, painting = style.local_files()
        settings = replace(recipe.settings, styles=(str(weights),), style_image=painting)
        ctx = WorkerContext(replace(recipe, settings=settings), report, cancelled, task.key)
        frames = task.perform(ctx)
    except UserInputError as exc:
        return TaskResult(task.key, 0, time.monotonic() - started, node, error=str(exc))
    except Exception as exc:
        raise TaskFailed(describe(exc)) from None
    return TaskResult(task.key, frames, time.monotonic() - started, node)


class TaskFailed(RuntimeError):
    """A task's failure, as one line; raised so the task can be tried again."""


class RetriesSpent(TaskFailed):
    """A failure the workers already tried again (Ray, when a worker or node died)."""


def describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def limit_threads(threads: int) -> None:
    """Each worker's torch and OpenCV use `threads` cores, so that workers side by side do not
    fight over the same cores."""
    import cv2
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
