"""Workers on this machine: a small pool of processes, each with a few torch threads.

Processes, not threads: every run holds a model, a decoder and an encoder, and Python's lock
would serialize the parts that are not in C. Each process is started fresh (`spawn`: torch's
thread pools do not survive a fork) and limited to `threads` torch/OpenCV threads, so that
`workers × threads` stays within the machine's cores. With CUDA, each worker takes one GPU.

Ctrl-C reaches every process of the terminal's group; the workers ignore it and stop when the
driver sets the shared `cancel` event instead, which a running video checks between frames,
so each ends its run the normal way and removes its unfinished output.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import queue
import signal
from concurrent.futures.process import BrokenProcessPool

from .bundle import StyleBundle
from .work import Recipe, Task, TaskFailed, TaskResult, describe, limit_threads, perform

_events = None
_cancel = None
_threads: int | None = None


def default_workers(cores: int, gpus: int = 0) -> int:
    """One per GPU; on CPUs one per core, at most 8. Decoding and x264 run threads of their
    own, so a worker with one torch thread already keeps more than one core busy: on 2 cores,
    2 workers × 1 thread did three clips 1.5× as fast as 1 worker × 2 threads
    (benchmarks/batch_speedup.py)."""
    if gpus:
        return gpus
    return max(1, min(8, cores))


def _init_worker(events, cancel, threads: int, gpu_counter, gpus: tuple[int, ...]) -> None:
    global _events, _cancel, _threads
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver stops us through `cancel`
    _events, _cancel, _threads = events, cancel, threads
    if gpus:  # before CUDA is first used in this process
        with gpu_counter.get_lock():
            index = gpu_counter.value
            gpu_counter.value += 1
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpus[index % len(gpus)])
    limit_threads(threads)


def _perform_here(task: Task, recipe: Recipe, style: StyleBundle) -> TaskResult:
    return perform(task, recipe, style, _events.put, cancelled=_cancel.is_set, threads=_threads)


class LocalWorkers:
    """`workers` processes on this machine."""

    def __init__(self, recipe: Recipe, style: StyleBundle, *, workers: int, threads: int,
                 gpus: tuple[int, ...] = ()):
        self.recipe, self.style = recipe, style
        self.workers, self.threads, self.gpus = workers, threads, gpus
        self.description = (f"{workers} local worker{'s' if workers > 1 else ''}, "
                            f"{threads} thread{'s' if threads > 1 else ''} each"
                            + (f", GPUs {','.join(map(str, gpus))}" if gpus else ""))
        self._context = mp.get_context("spawn")
        self._events = self._context.Queue()
        self._cancel = self._context.Event()
        self._gpu_counter = self._context.Value("i", 0)
        self._pool = self._new_pool()
        self._pool_of: dict[cf.Future, cf.ProcessPoolExecutor] = {}

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(
            self.workers, mp_context=self._context, initializer=_init_worker,
            initargs=(self._events, self._cancel, self.threads, self._gpu_counter, self.gpus))

    def submit(self, task: Task) -> cf.Future:
        future = self._pool.submit(_perform_here, task, self.recipe, self.style)
        self._pool_of[future] = self._pool
        return future

    def wait(self, handles: list[cf.Future], timeout: float) -> list[cf.Future]:
        done, _ = cf.wait(handles, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return list(done)

    def result(self, handle: cf.Future) -> TaskResult:
        """The task's result; `TaskFailed` when it raised or its process died."""
        pool = self._pool_of.pop(handle, None)
        try:
            return handle.result()
        except BrokenProcessPool:
            if pool is self._pool:  # the first to see it replaces the pool, once
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()
            raise TaskFailed("a worker process died (out of memory?)") from None
        except TaskFailed:
            raise
        except Exception as exc:
            raise TaskFailed(describe(exc)) from None

    def events(self) -> list[tuple]:
        taken = []
        while True:
            try:
                taken.append(self._events.get_nowait())
            except queue.Empty:
                return taken

    def cancel(self, handles: list[cf.Future]) -> None:
        """Stop: queued tasks never start, running ones end at their next frame and remove
        what they were writing; returns when every worker has stopped."""
        self._cancel.set()
        for future in handles:
            future.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> LocalWorkers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
