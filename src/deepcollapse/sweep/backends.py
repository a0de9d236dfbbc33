"""Where the tasks of a sweep run: in this process (`LocalBackend`) or as Ray tasks (`RayBackend`).

A backend knows nothing about training. It calls `worker(task, attempt)` once per task and hands
back one `TaskOutcome` per task, in the order of the tasks. `attempt` is 0 on the first try and k
on the k-th retry after the process running the task died: the worker uses it to tell its own
earlier, dead attempts from live competitors (see `sweep.PointLock`).

The worker writes its results itself (the results store is the single source of truth); the
backend only returns what the worker returns, a small record of what it did. With Ray the worker
runs on other processes or machines, so the folder it writes to must be reachable from all of
them (a shared file system on a cluster).

Ray is optional (`pip install deepcollapse[dist]`) and imported only when a `RayBackend` runs.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

Worker = Callable[[Any, int], Any]
OnDone = Callable[[int, "TaskOutcome"], None]


@dataclass
class TaskOutcome:
    """What became of one task.

    value: what `worker(task, attempt)` returned (None if no attempt finished).
    attempts: how many times the task was started (1 + the retries after worker deaths).
    error: why no attempt finished ("worker died ..." after the last allowed retry, or the
        exception a worker raised past its own handling); None when `value` is set.
    """

    value: Any = None
    attempts: int = 1
    error: str | None = None


class Backend(Protocol):
    """Runs `worker(task, attempt)` for every task; `on_done(i, outcome)` as each task ends."""

    in_process: bool  # True: the worker runs in this process (it may report step progress here)

    def run(self, tasks: Sequence[Any], worker: Worker, on_done: OnDone | None = None) -> list[TaskOutcome]:
        ...


class LocalBackend:
    """The tasks one after another in this process. An exception a worker raises propagates
    (KeyboardInterrupt stops the sweep; what was written stays and a rerun resumes)."""

    in_process = True

    def run(self, tasks: Sequence[Any], worker: Worker, on_done: OnDone | None = None) -> list[TaskOutcome]:
        outcomes = []
        for i, task in enumerate(tasks):
            outcome = TaskOutcome(value=worker(task, 0))
            outcomes.append(outcome)
            if on_done is not None:
                on_done(i, outcome)
        return outcomes


def import_ray():
    """The ray module, or an ImportError saying how to install it."""
    try:
        import ray
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the Ray backend needs the ray package: pip install 'deepcollapse[dist]'"
        ) from e
    return ray


def _run_task(worker: Worker, task: Any, attempt: int) -> Any:
    """Body of the Ray task (module level so Ray pickles it by reference)."""
    return worker(task, attempt)


def task_options(task: Any) -> dict:
    """Ray resource request of a task: its `resources` dict if it has one, else one CPU."""
    res = dict(getattr(task, "resources", None) or {})
    opts = {"num_cpus": res.pop("num_cpus", 1), "num_gpus": res.pop("num_gpus", 0)}
    if res:
        opts["resources"] = res
    return opts


class RayBackend:
    """Every task is one Ray task, started with the resources it asks for (`task_options`).

    address: a running cluster ("auto", "host:6379", "ray://host:10001"); None uses the Ray instance
        this process is already connected to, else the cluster in $RAY_ADDRESS, else starts a private
        one on this machine (no dashboard, `local_cpus` CPUs, default all) and shuts it down at the end.
    max_retries: how many times a task is started again after the process or node running it died
        (WorkerCrashedError, NodeDiedError, ...). A task is never re-run because the worker *raised*:
        the sweep worker records a point's own failure and returns normally.
    After `run`, `retried` holds the number of re-submissions.

    The worker writes its results from wherever Ray placed it: every node must see the results
    folder at the same path.
    """

    in_process = False

    def __init__(self, address: str | None = None, max_retries: int = 2, local_cpus: int | None = None):
        if max_retries < 0:
            raise ValueError(f"max_retries: must be >= 0, got {max_retries}")
        self.address = address
        self.max_retries = max_retries
        self.local_cpus = local_cpus
        self.retried = 0

    def _connect(self, ray) -> bool:
        """Connect (or start a local instance); True if this call started it and must shut it down."""
        if ray.is_initialized():
            return False
        if self.address is not None or os.environ.get("RAY_ADDRESS"):
            ray.init(address=self.address)  # None: the cluster named by RAY_ADDRESS
        else:
            # Ray 2.x serves on the node's address, not loopback (it maps 127.0.0.1 to the node IP);
            # the instance is private through Ray's token authentication, and has no dashboard.
            ray.init(address=None, num_cpus=self.local_cpus, include_dashboard=False)
        return True

    def run(self, tasks: Sequence[Any], worker: Worker, on_done: OnDone | None = None) -> list[TaskOutcome]:
        ray = import_ray()
        from ray import exceptions as rex

        died = tuple(getattr(rex, n) for n in (
            "WorkerCrashedError", "NodeDiedError", "LocalRayletDiedError", "ObjectLostError", "OwnerDiedError",
        ) if hasattr(rex, n))
        self.retried = 0
        started = self._connect(ray)
        outcomes: list[TaskOutcome | None] = [None] * len(tasks)
        pending: dict = {}
        try:
            remote = ray.remote(_run_task)
            worker_ref = ray.put(worker)

            def submit(i: int, attempt: int) -> None:
                ref = remote.options(max_retries=0, retry_exceptions=False, **task_options(tasks[i])).remote(
                    worker_ref, tasks[i], attempt)
                pending[ref] = (i, attempt)

            for i in range(len(tasks)):
                submit(i, 0)
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                i, attempt = pending.pop(ref)
                try:
                    outcome = TaskOutcome(value=ray.get(ref), attempts=attempt + 1)
                except died as e:
                    if attempt < self.max_retries:
                        self.retried += 1
                        submit(i, attempt + 1)
                        continue
                    outcome = TaskOutcome(attempts=attempt + 1,
                                          error=f"worker died {attempt + 1} times: {type(e).__name__}: {e}")
                except rex.RayTaskError as e:
                    outcome = TaskOutcome(attempts=attempt + 1, error=f"{type(e).__name__}: {e}")
                outcomes[i] = outcome
                if on_done is not None:
                    on_done(i, outcome)
        except BaseException:
            for ref in pending:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - best effort while stopping
                    traceback.print_exc()
            raise
        finally:
            if started:
                ray.shutdown()
        return outcomes  # type: ignore[return-value]


def make_backend(name: str, ray_address: str | None = None, max_retries: int = 2) -> Backend:
    """`"local"` or `"ray"` -> a backend."""
    if name == "local":
        if ray_address is not None:
            raise ValueError("ray_address: only used with backend='ray'")
        return LocalBackend()
    if name == "ray":
        return RayBackend(address=ray_address, max_retries=max_retries)
    raise ValueError(f"backend: must be 'local' or 'ray', got {name!r}")
