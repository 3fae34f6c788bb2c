"""Video jobs: a bounded queue, one worker per server, progress, cancellation and expiry.

A job is admitted before its upload is read (`reserve`), so a full queue costs the client one
short 503 rather than an upload. Each job owns a folder under the server's temp dir named by
its random id: the upload, an optional painting and the result. The input is removed when the
job ends; the result stays for `job_ttl_s` (or until `max_kept_jobs` newer ones push it out),
then the folder goes. The run is the same `VideoRun` as `rtstyle video`: every frame, its
timing and the audio.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import re
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import HTTPException

from ..errors import RtstyleError
from ..realtime.runs import Geometry, StyleSettings, VideoRun
from ..realtime.sinks import StopRequested
from .config import ServerConfig
from .gate import GatedProcess
from .media import VideoProbe

log = logging.getLogger(__name__)

JOB_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


@dataclass
class Job:
    id: str
    folder: Path
    input: Path
    style: str
    settings: StyleSettings
    geometry: Geometry
    probe: VideoProbe
    download_name: str
    state: str = QUEUED
    progress: float = 0.0
    error: str | None = None
    frames_written: int = 0
    frames_total: int | None = None
    fps: float | None = None
    size: tuple[int, int] | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def output(self) -> Path:
        return self.folder / "result.mp4"

    @property
    def finished(self) -> bool:
        return self.state in (DONE, FAILED)

    def status(self) -> dict:
        eta = None
        if self.state == RUNNING and self.fps and self.frames_total:
            eta = round(max(0, self.frames_total - self.frames_written) / self.fps, 1)
        return {
            "id": self.id, "state": self.state, "progress": round(self.progress, 4),
            "error": self.error, "style": self.style,
            "frames_written": self.frames_written, "frames_total": self.frames_total,
            "fps": None if self.fps is None else round(self.fps, 2), "eta_s": eta,
            "size": list(self.size) if self.size else None,
            "input": self.probe.description, "has_audio": self.probe.has_audio,
            "result_url": f"/api/jobs/{self.id}/result" if self.state == DONE else None,
        }


class Reservation:
    """A place in the queue held while the upload arrives; released unless submitted."""

    def __init__(self, jobs: JobQueue):
        self.jobs = jobs
        self.used = False

    def release(self) -> None:
        if not self.used:
            self.used = True
            self.jobs._release()


class JobQueue:
    def __init__(self, config: ServerConfig, root: Path, gate: threading.Lock):
        self.config = config
        self.root = root
        self.gate = gate
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._active = 0            # reserved + queued + running
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._stopping = threading.Event()
        self._worker = threading.Thread(target=self._work, name="rtstyle-jobs", daemon=True)
        self._janitor = threading.Thread(target=self._sweep_periodically,
                                         name="rtstyle-jobs-expiry", daemon=True)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._worker.start()
        self._janitor.start()

    def reserve(self) -> Reservation:
        with self._lock:
            if self._stopping.is_set():
                raise HTTPException(503, "the server is shutting down")
            if self._active >= self.config.max_jobs:
                raise HTTPException(
                    503, f"the video queue is full ({self.config.max_jobs} jobs waiting or "
                         "running); try again when one has finished (rtstyle serve --max-jobs)",
                    headers={"Retry-After": "30"})
            self._active += 1
        return Reservation(self)

    def _release(self) -> None:
        with self._lock:
            self._active -= 1

    def new_folder(self) -> tuple[str, Path]:
        job_id = secrets.token_urlsafe(18)
        folder = self.root / job_id
        folder.mkdir()
        return job_id, folder

    def submit(self, job: Job, reservation: Reservation) -> None:
        """The reservation passes to the job, and is given back when the job ends."""
        reservation.used = True
        with self._lock:
            self.jobs[job.id] = job
        self._queue.put(job)

    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id) if JOB_ID.match(job_id) else None
        if job is None:
            raise HTTPException(404, "no such job (finished jobs are kept for "
                                     f"{self.config.job_ttl_s / 60:g} minutes)")
        return job

    def remove(self, job_id: str) -> Job:
        """Cancel a queued or running job, or delete a finished one with its files."""
        job = self.get(job_id)
        job.cancel.set()
        if job.finished:
            self._forget(job)
        return job

    def _forget(self, job: Job) -> None:
        with self._lock:
            self.jobs.pop(job.id, None)
        shutil.rmtree(job.folder, ignore_errors=True)

    def sweep(self, now: float | None = None) -> int:
        """Drop finished jobs past their time to live, and the oldest beyond `max_kept_jobs`."""
        now = time.time() if now is None else now
        with self._lock:
            finished = sorted((j for j in self.jobs.values() if j.finished),
                              key=lambda j: j.finished_at)
        expired = [j for j in finished if now - j.finished_at > self.config.job_ttl_s]
        kept = [j for j in finished if j not in expired]
        expired += kept[:max(0, len(kept) - self.config.max_kept_jobs)]
        for job in expired:
            self._forget(job)
        return len(expired)

    def _sweep_periodically(self) -> None:
        interval = min(60.0, max(0.05, self.config.job_ttl_s / 4))
        while not self._stopping.wait(interval):
            self.sweep()

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                if job.cancel.is_set():
                    self._finish(job, FAILED, "cancelled")
                else:
                    self._run(job)
            finally:
                self._release()
                job.input.unlink(missing_ok=True)
                if job.cancel.is_set():  # cancelled: nothing of it is kept
                    self._forget(job)

    def _finish(self, job: Job, state: str, error: str | None = None) -> None:
        job.error = error
        job.finished_at = time.time()
        job.state = state

    def _run(self, job: Job) -> None:
        job.state, job.started_at = RUNNING, time.time()
        limit = None
        if job.probe.seconds is None:  # undeclared duration: stop just past the limit
            limit = math.ceil(self.config.max_video_seconds * job.probe.rate) + 1

        def on_frame(stats) -> None:
            job.frames_written = stats.written
            elapsed = time.monotonic() - stats.started_at
            job.fps = stats.written / elapsed if elapsed > 0 else None
            if job.frames_total:
                job.progress = min(0.999, stats.written / job.frames_total)
            if job.cancel.is_set():
                raise StopRequested

        try:
            with VideoRun(job.input, job.output, job.settings, geometry=job.geometry,
                          max_frames=limit) as run:
                run.process = GatedProcess(run.process, self.gate)
                job.size, job.frames_total = run.size, run.total_frames
                with self.gate:
                    run.warm_up()
                if job.cancel.is_set():
                    raise StopRequested
                report = run.run(on_frame=on_frame)
        except StopRequested:
            self._finish(job, FAILED, "cancelled")
            return
        except RtstyleError as exc:
            self._finish(job, FAILED, str(exc))
            return
        except Exception as exc:  # a job's failure must not stop the worker
            log.exception("job %s failed", job.id)
            self._finish(job, FAILED, f"internal error: {exc}")
            return
        if job.cancel.is_set():
            self._finish(job, FAILED, "cancelled" if not self._stopping.is_set()
                         else "the server shut down")
        elif limit is not None and report.stats.written >= limit:
            job.output.unlink(missing_ok=True)
            self._finish(job, FAILED, f"the video is longer than {self.config.max_video_seconds:g}"
                                      " s (rtstyle serve --max-video-seconds)")
        elif not job.output.is_file():
            self._finish(job, FAILED, "no frame could be decoded from the video")
        else:
            job.frames_written = report.stats.written
            job.frames_total = job.frames_total or report.stats.written
            job.progress = 1.0
            self._finish(job, DONE)

    def close(self) -> None:
        """Stop: queued jobs are dropped, a running one is stopped at its next frame."""
        self._stopping.set()
        with self._lock:
            jobs = list(self.jobs.values())
        for job in jobs:
            job.cancel.set()
        self._queue.put(None)
        for thread in (self._worker, self._janitor):
            if thread.is_alive():
                thread.join(timeout=30)
        with contextlib.suppress(OSError):
            shutil.rmtree(self.root)
