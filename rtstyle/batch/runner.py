"""The driver of a batch: hands tasks to workers, joins parts, retries, counts, reports.

Workers (`LocalWorkers` on this machine, `RayWorkers` on a cluster) take tasks and say how
they went; the runner decides what happens next: a part's completion may make its video ready
to join, a failure is tried again (`retries` times), then reported with its reason while the
rest goes on. All of a batch's unfinished files live
in one hidden scratch folder in the output folder, removed at the end on every path, Ctrl-C
included (after the workers were told to stop and have stopped).
"""

from __future__ import annotations

import logging
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .join import PART_SUFFIX
from .plan import BatchPlan, Item
from .work import JoinTask, RetriesSpent, StillTask, Task, TaskFailed, TaskResult, VideoTask

log = logging.getLogger(__name__)

POLL_S = 0.25
SCRATCH_PREFIX = ".rtstyle-batch-"


class Workers(Protocol):
    """Where tasks run. `result` raises `TaskFailed` for a task to try again, `RetriesSpent`
    for one the workers already tried again."""

    description: str

    def submit(self, task: Task): ...

    def wait(self, handles: list, timeout: float) -> list: ...

    def result(self, handle) -> TaskResult: ...

    def events(self) -> list[tuple]: ...

    def cancel(self, handles: list) -> None: ...


@dataclass
class ItemReport:
    """How one input went: done, skipped (finished by an earlier run) or failed (why)."""

    input: str
    output: str
    kind: str
    status: str = "pending"
    frames: int = 0
    expected_frames: int = 0
    parts: int = 0
    attempts: int = 0
    seconds: float = 0.0
    nodes: set[str] = field(default_factory=set)
    reason: str | None = None

    def to_dict(self) -> dict:
        return {"input": self.input, "output": self.output, "kind": self.kind,
                "status": self.status, "frames": self.frames, "parts": self.parts,
                "attempts": self.attempts, "seconds": round(self.seconds, 3),
                "nodes": sorted(self.nodes), "reason": self.reason}


@dataclass
class BatchReport:
    items: list[ItemReport]
    workers: str
    wall_s: float = 0.0
    interrupted: bool = False

    def with_status(self, status: str) -> list[ItemReport]:
        return [i for i in self.items if i.status == status]

    @property
    def frames(self) -> int:
        return sum(i.frames for i in self.items if i.status == "done")

    def to_dict(self) -> dict:
        return {"workers": self.workers, "wall_s": round(self.wall_s, 3),
                "done": len(self.with_status("done")),
                "skipped": len(self.with_status("skipped")),
                "failed": len(self.with_status("failed")), "frames": self.frames,
                "fps": round(self.frames / self.wall_s, 2) if self.wall_s else None,
                "interrupted": self.interrupted,
                "items": [i.to_dict() for i in self.items]}


@dataclass(frozen=True)
class BatchProgress:
    """A snapshot for a progress display."""

    files_total: int
    files_done: int
    files_failed: int
    frames_total: int | None
    frames_done: int
    running: int


class BatchRunner:
    """Runs a plan on workers; `on_progress` gets snapshots, `on_message` one-line news
    (a failed attempt, a retry), both in the calling thread."""

    def __init__(self, plan: BatchPlan, workers: Workers | None, *, retries: int = 1,
                 on_progress: Callable[[BatchProgress], None] | None = None,
                 on_message: Callable[[str], None] | None = None):
        self.plan, self.workers, self.retries = plan, workers, retries
        self.on_progress, self.on_message = on_progress, on_message
        self.started = time.monotonic()
        self.reports = {item.source: ItemReport(
            str(item.source), str(item.target), item.kind, expected_frames=item.frames,
            parts=len(item.parts), status="skipped" if item.done else "pending",
            reason=item.problem) for item in plan.items}
        for item in plan.items:
            if item.problem is not None:
                self.reports[item.source].status = "failed"
        self._item_of: dict[str, Item] = {}
        self._submitted: dict[str, int] = {}
        self._starts: dict[str, int] = {}
        self._frames: dict[str, int] = {}
        self._parts_left: dict[Path, set[str]] = {}
        self._completed: set[str] = set()
        self._pending: dict = {}
        self.scratch: Path | None = None

    def report(self, interrupted: bool = False) -> BatchReport:
        return BatchReport(list(self.reports.values()),
                           self.workers.description if self.workers else "none needed",
                           time.monotonic() - self.started, interrupted)

    def _tasks_of(self, item: Item) -> list[Task]:
        name = item.target.name
        if item.kind == "image":
            return [StillTask(name, item.source, item.target, self.scratch)]
        if not item.parts:
            return [VideoTask(name, item.source, item.target, self.scratch, item.frames)]
        self._parts_left[item.source] = {f"{name}#{p.index}" for p in item.parts}
        return [VideoTask(f"{name}#{p.index}", item.source,
                          self.scratch / f"{name}.part{p.index:03d}{PART_SUFFIX}",
                          self.scratch, p.frames, p.span) for p in item.parts]

    def _submit(self, task: Task, item: Item) -> None:
        self._item_of[task.key] = item
        self._submitted[task.key] = self._submitted.get(task.key, 0) + 1
        self._pending[self.workers.submit(task)] = task

    def run(self) -> BatchReport:
        """Run every task to an end; on Ctrl-C, stop the workers, clean up, re-raise."""
        self.scratch = self.plan.outdir / f"{SCRATCH_PREFIX}{secrets.token_hex(4)}"
        self.scratch.mkdir()
        try:
            for item in self.plan.items:
                if item.problem is not None:
                    self._message(f"{item.source.name} failed: {item.problem}")
            for item in self.plan.todo:
                for task in self._tasks_of(item):
                    self._submit(task, item)
            self._progress()
            while self._pending:
                done = self.workers.wait(list(self._pending), POLL_S)
                self._take_events()
                for handle in done:
                    self._finished(self._pending.pop(handle), handle)
                self._progress()
            self._take_events()
        except BaseException:
            pending, self._pending = list(self._pending), {}
            if pending:
                self._message(f"stopping {len(pending)} task(s)…")
                self.workers.cancel(pending)
            raise
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)
        return self.report()

    def _take_events(self) -> None:
        for kind, key, *value in self.workers.events():
            item = self._item_of.get(key)
            if item is None or key in self._completed:  # news that came after the result
                continue
            report = self.reports[item.source]
            if kind == "start":
                self._starts[key] = self._starts.get(key, 0) + 1
                self._frames[key] = 0
                report.nodes.add(value[0])
                report.attempts = max(report.attempts, self._starts[key])
            elif kind == "frames":
                self._frames[key] = value[0]

    def _finished(self, task: Task, handle) -> None:
        item = self._item_of[task.key]
        report = self.reports[item.source]
        report.attempts = max(report.attempts, self._submitted[task.key],
                              self._starts.get(task.key, 0))
        try:
            result = self.workers.result(handle)
        except TaskFailed as exc:
            if not isinstance(exc, RetriesSpent) and self._submitted[task.key] <= self.retries:
                self._message(f"{task.key} failed: {exc}; trying again "
                              f"({self._submitted[task.key] + 1}/{self.retries + 1})")
                self._frames[task.key] = 0
                self._submit(task, item)
            else:
                self._fail(item, task, str(exc))
            return
        if result.error is not None:
            self._fail(item, task, result.error)
            return
        self._completed.add(task.key)
        if report.status == "failed":  # another part of this video failed for good
            return
        self._frames[task.key] = result.frames if not isinstance(task, JoinTask) else 0
        report.seconds += result.seconds
        report.nodes.add(result.node)
        parts_left = self._parts_left.get(item.source)
        if parts_left is not None and isinstance(task, VideoTask):
            parts_left.discard(task.key)
            report.frames += result.frames
            if not parts_left:
                parts = tuple(self.scratch / f"{item.target.name}.part{p.index:03d}{PART_SUFFIX}"
                              for p in item.parts)
                self._submit(JoinTask(f"{item.target.name}#join", item.source, item.target,
                                      self.scratch, parts, report.frames), item)
            return
        if not isinstance(task, JoinTask):
            report.frames = result.frames
        report.status = "done"

    def _fail(self, item: Item, task: Task, reason: str) -> None:
        report = self.reports[item.source]
        for key in self._parts_left.get(item.source, ()):
            self._frames.pop(key, None)
        self._frames.pop(task.key, None)
        if report.status != "failed":  # the first part to fail for good says why
            report.status, report.reason = "failed", reason
            self._message(f"{task.key} failed: {reason}")

    def _message(self, text: str) -> None:
        log.info("%s", text)
        if self.on_message is not None:
            self.on_message(text)

    def _progress(self) -> None:
        if self.on_progress is None:
            return
        todo = [r for r in self.reports.values() if r.status != "skipped"]
        failed = sum(r.status == "failed" for r in todo)
        done = sum(r.status == "done" for r in todo)
        frames_total = sum(r.expected_frames for r in todo if r.status != "failed")
        unknown = any(r.expected_frames == 0 for r in todo if r.status == "pending")
        frames_done = sum(r.frames for r in todo if r.status == "done") + sum(
            n for key, n in self._frames.items()
            if self.reports[self._item_of[key].source].status == "pending")
        self.on_progress(BatchProgress(len(todo), done, failed,
                                       None if unknown else frames_total, frames_done,
                                       len(self._pending)))
