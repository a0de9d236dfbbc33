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

A local Ray instance that `RayBackend` starts itself (no cluster address given) is private to this
machine and to the driver: every process of it listens on 127.0.0.1 only, there is no dashboard and
no metrics endpoint, and it ends with the driver, also when the driver is killed (`start_local_ray`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

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


# Environment of the processes of a local instance (each inherits the driver's when Ray starts it).
LOCAL_RAY_ENV = {
    # Ray's local-only mode (the default on macOS and Windows): 127.0.0.1 stays the node address
    # instead of being replaced by the machine's address, and Ray's servers bind to it.
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    # The autoscaler monitor and the dashboard head each serve Prometheus /metrics, without a token,
    # on a fixed port; Ray has no switch for them. With an unusable port the bind fails: Ray logs
    # the error and goes on without the endpoint.
    "AUTOSCALER_METRIC_PORT": "-1",
    "DASHBOARD_METRIC_PORT": "-1",
    "RAY_USAGE_STATS_ENABLED": "0",  # what ray.init sets for a local instance anyway, but for nightly wheels
}
# No metrics are recorded or exported (the dashboard agent gets --disable-metrics-collection).
LOCAL_RAY_SYSTEM_CONFIG = {"enable_metrics_collection": False}


def _minimal_dashboard() -> ImportError:
    return ImportError("deepcollapse: a local Ray instance runs the dashboard processes in minimal mode")


@contextlib.contextmanager
def _local_only_ray() -> Iterator[None]:
    """While Ray starts a local instance: `LOCAL_RAY_ENV` in os.environ and two of Ray's internals set.

    - `ray_constants.ENABLE_RAY_CLUSTER` False: what `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` does in a
      process where Ray was imported before (this one), so `_node_ip_address="127.0.0.1"` is kept.
    - `utils.get_dashboard_dependency_error` reports the dashboard packages (`ray[default]`) missing:
      the dashboard head and agent start as in a plain `pip install ray`, without the agent's HTTP
      and gRPC servers (job submission, metrics), which the sweep does not use.
    Both are restored afterwards; a Ray without them is left as it is (the caller checks the result).
    """
    saved_env = {k: os.environ.get(k) for k in LOCAL_RAY_ENV}
    patches: list[tuple[Any, str, Any]] = []
    try:
        from ray._private import ray_constants, utils
        patches = [(ray_constants, "ENABLE_RAY_CLUSTER", False),
                   (utils, "get_dashboard_dependency_error", _minimal_dashboard)]
    except ImportError:  # pragma: no cover - depends on the Ray version
        pass
    saved = [(mod, name, getattr(mod, name)) for mod, name, _ in patches if hasattr(mod, name)]
    os.environ.update(LOCAL_RAY_ENV)
    for mod, name, value in patches:
        if hasattr(mod, name):
            setattr(mod, name, value)
    try:
        yield
    finally:
        for mod, name, value in saved:
            setattr(mod, name, value)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def start_local_ray(ray, num_cpus: int | None = None) -> subprocess.Popen | None:
    """Start a private Ray instance on this machine, connect this process to it; return its reaper.

    What the instance exposes (measured with Ray 2.60, see tests/sweep/test_backends.py): the GCS
    server, the raylet (node manager, object manager), the core worker of the driver and of each
    worker, and the runtime-env agent, each on a TCP port of 127.0.0.1 that needs Ray's cluster
    token; no dashboard, no /metrics endpoint, no usage statistics. `address="local"` always starts
    a new instance (never joins one that `ray start` runs here). Raises RuntimeError, after shutting
    it down, if Ray did not keep the instance on the loopback address.

    The reaper (`_ray_reaper.py`, a small process of its own session, so a Ctrl-C or a kill of the
    driver's process group leaves it to do its job) waits for the driver to close its stdin or die,
    then ends every process of the instance still there: Ray ends the GCS server and raylet with
    the driver, but not the raylet's agents. None if psutil is missing (no reaper then).
    """
    psutil = _import_psutil()
    before = {p.pid for p in psutil.Process().children()} if psutil else set()
    with _local_only_ray():
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                 _system_config=dict(LOCAL_RAY_SYSTEM_CONFIG))
    try:
        ip = ray.util.get_node_ip_address()
        if not ipaddress.ip_address(ip).is_loopback:
            raise RuntimeError(
                f"this Ray ({ray.__version__}) serves the local instance on {ip}, not on 127.0.0.1; start "
                "Ray yourself as you want it (ray start --head ...) and pass its address (--ray-address)")
        if psutil is None:
            return None
        ray_dirs = {os.path.dirname(os.path.abspath(ray.__file__)), str(Path(ray.__file__).resolve().parent)}
        roots = [p.pid for p in psutil.Process().children() if p.pid not in before and _runs_from(p, ray_dirs)]
        return subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("_ray_reaper.py")),
             str(Path(psutil.__file__).resolve().parent.parent), *map(str, roots)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
    except BaseException:
        ray.shutdown()
        raise


def stop_reaper(reaper: subprocess.Popen, timeout: float = 10.0) -> None:
    """Close the reaper's stdin (it then ends what `ray.shutdown` left, and exits) and wait for it."""
    try:
        if reaper.stdin is not None:
            reaper.stdin.close()
        reaper.wait(timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):  # pragma: no cover - it exits on its own anyway
        pass


def _runs_from(proc, folders: set[str]) -> bool:
    """Whether a process's command line names a file in one of `folders` (Ray's processes all do)."""
    try:
        return any(f in arg for arg in proc.cmdline() for f in folders)
    except Exception:  # noqa: BLE001 - psutil.Error: gone or not ours
        return False


def _import_psutil():
    try:
        import psutil  # a Ray dependency (Ray ships one and puts it on sys.path)
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    return psutil


class RayBackend:
    """Every task is one Ray task, started with the resources it asks for (`task_options`).

    address: a running cluster ("auto", "host:6379", "ray://host:10001"), joined as it is configured;
        None uses the Ray instance this process is already connected to, else the cluster in
        $RAY_ADDRESS, else starts a private one on this machine (`start_local_ray`: loopback only, no
        dashboard or metrics endpoint, `local_cpus` CPUs, default all) and shuts it down at the end.
        A cluster that `ray start` runs on this machine is used only when named ("auto" finds it).
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
        self._reaper: subprocess.Popen | None = None

    def _connect(self, ray) -> bool:
        """Connect (or start a local instance); True if this call started it and must shut it down."""
        if ray.is_initialized():
            return False
        if self.address is not None or os.environ.get("RAY_ADDRESS"):
            ray.init(address=self.address)  # None: the cluster named by RAY_ADDRESS; as the user set it up
        else:
            self._reaper = start_local_ray(ray, num_cpus=self.local_cpus)
        return True

    def _disconnect(self, ray) -> None:
        """Shut down the instance `_connect` started (and let its reaper clear what is left)."""
        try:
            ray.shutdown()
        finally:
            reaper, self._reaper = self._reaper, None
            if reaper is not None:
                stop_reaper(reaper)

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
                self._disconnect(ray)
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
