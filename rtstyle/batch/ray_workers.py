"""Workers on a Ray cluster: one Ray task per file, part or join.

- `address` None or "local": a cluster of this machine alone, started for the batch and shut
  down after it; "auto": the cluster this machine belongs to (`ray start`); "ray://HOST:10001":
  a remote cluster through Ray Client (KubeRay's head service, for example).
- Each task declares what it needs: `num_cpus` (also its torch thread count) and, where the
  style runs on CUDA, `num_gpus=1`; Ray places it and sets `CUDA_VISIBLE_DEVICES`.
- The style's files go into the object store once (`ray.put`); tasks get the reference, so
  each node fetches the bytes once, however many tasks it runs.
- A task whose worker process or node died is retried by Ray (`max_retries`). A task that
  raised is retried by the batch runner, as on this machine, which says why it failed: Ray's
  own retry of exceptions (`retry_exceptions`) prints each traceback on the driver's stdout,
  which `--json` keeps for its one object. Bad input is returned, not raised: no retry.
- Progress comes through a small actor that tasks post events to and the driver drains.
- Cancelling asks each task to stop (`ray.cancel`: KeyboardInterrupt in the task, which ends
  its run and removes its unfinished output), then forces the ones still running.

Every node needs rtstyle (with the `ray` extra) installed, and the inputs and the output
folder at the same paths (shared storage): a task reads and writes files, not bytes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from dataclasses import replace

from ..errors import DeviceError, RtstyleError, UserInputError
from .bundle import StyleBundle
from .work import Recipe, RetriesSpent, Task, TaskFailed, TaskResult, describe, perform

log = logging.getLogger(__name__)

CANCEL_GRACE_S = 20.0


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserInputError("--ray needs Ray on this machine and every node: "
                             "pip install 'rtstyle[ray]'") from None
    return ray


class ProgressBoard:
    """A Ray actor (no CPU of its own) that collects the tasks' events for the driver."""

    def __init__(self):
        self._events: list[tuple] = []

    def post(self, event: tuple) -> None:
        self._events.append(event)

    def take(self) -> list[tuple]:
        events, self._events = self._events, []
        return events


def _perform_on_ray(task: Task, recipe: Recipe, style: StyleBundle, board,
                    threads: int) -> TaskResult:
    if threading.current_thread() is threading.main_thread():
        # `ray.cancel` interrupts a task the way Ctrl-C would; a cluster started from a shell
        # that ignores Ctrl-C (`nohup`, `&`) passes that on, and the task would not stop.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return perform(task, recipe, style, board.post.remote, threads=threads)


@contextlib.contextmanager
def _keep_sigterm_handler():
    """`ray.init` installs its own SIGTERM handler in the driver; keep the CLI's, which
    unwinds (cancelling the tasks) like Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class RayWorkers:
    """Tasks on a Ray cluster; see the module docstring."""

    def __init__(self, recipe: Recipe, style: StyleBundle, *, address: str | None = None,
                 workers: int | None = None, cpus_per_task: int = 1, retries: int = 1):
        ray = self.ray = import_ray()
        self.local = address in (None, "local")
        if address and address.startswith("ray://"):
            try:
                import grpc  # noqa: F401 - Ray Client needs it
            except ImportError:
                raise UserInputError("--ray ray://… needs Ray Client: pip install "
                                     "'rtstyle[ray]' (or 'ray[client]')") from None
        try:
            with _keep_sigterm_handler():
                if self.local:
                    slots = workers or max(1, (os.cpu_count() or 1) // cpus_per_task)
                    ray.init(address="local", num_cpus=slots * cpus_per_task,
                             include_dashboard=False, log_to_driver=False,
                             logging_level=logging.ERROR)
                else:
                    ray.init(address=address, logging_level=logging.WARNING,
                             log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RtstyleError(f"cannot reach the Ray cluster at {address}: {exc}") from None
        try:
            resources = ray.cluster_resources()
            device = recipe.settings.device
            gpus_here = resources.get("GPU", 0)
            if device.startswith("cuda") and not gpus_here:
                raise DeviceError(f"--device {device}, but the Ray cluster has no GPU")
            gpus = 1 if device.startswith("cuda") or (device == "auto" and gpus_here) else 0
            if gpus:  # Ray picks the GPU and shows the task only that one
                recipe = replace(recipe, settings=replace(recipe.settings, device="cuda"))
            self.cpus_per_task, self.gpus_per_task = cpus_per_task, gpus
            where = "a local Ray cluster" if self.local else f"the Ray cluster at {address}"
            self.description = (f"{where}: {int(resources.get('CPU', 0))} CPUs, "
                                f"{int(gpus_here)} GPUs; each task {cpus_per_task} CPU"
                                + (" + 1 GPU" if gpus else ""))
            self._recipe = ray.put(recipe)
            self._style = ray.put(style)
            self._board = ray.remote(num_cpus=0)(ProgressBoard).remote()
            self._remote = ray.remote(_perform_on_ray).options(
                num_cpus=cpus_per_task, num_gpus=gpus, max_retries=retries,
                retry_exceptions=False)
        except BaseException:
            ray.shutdown()
            raise

    def submit(self, task: Task):
        return self._remote.remote(task, self._recipe, self._style, self._board,
                                   self.cpus_per_task)

    def wait(self, handles: list, timeout: float) -> list:
        """Polls, and waits in Python: a signal that arrives inside Ray's own wait comes out
        as a plain KeyboardInterrupt, so SIGTERM (143) would pass for Ctrl-C (130)."""
        ready, _ = self.ray.wait(handles, num_returns=len(handles), timeout=0)
        if not ready:
            time.sleep(timeout)
        return ready

    def result(self, handle) -> TaskResult:
        """The task's result; `TaskFailed` when it raised, `RetriesSpent` when Ray gave up
        on it (its worker or node died, `max_retries` times) or it was cancelled."""
        from ray.exceptions import RayError, RayTaskError

        try:
            return self.ray.get(handle)
        except RayTaskError as exc:
            cause = exc.cause if exc.cause is not None else exc
            raise TaskFailed(str(cause) if isinstance(cause, TaskFailed)
                             else describe(cause)) from None
        except RayError as exc:
            raise RetriesSpent(describe(exc)) from None

    def events(self) -> list[tuple]:
        return self.ray.get(self._board.take.remote())

    def cancel(self, handles: list) -> None:
        """Ask every task to stop, give them `CANCEL_GRACE_S` to remove their unfinished
        outputs, then force the rest."""
        ray = self.ray
        if not handles:
            return
        for handle in handles:
            ray.cancel(handle)
        running = handles
        try:
            _, running = ray.wait(handles, num_returns=len(handles), timeout=CANCEL_GRACE_S)
        finally:
            for handle in running:
                ray.cancel(handle, force=True)

    def close(self) -> None:
        """A local cluster stops; from an existing one the driver only disconnects."""
        self.ray.shutdown()

    def __enter__(self) -> RayWorkers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
