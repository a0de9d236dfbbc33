"""`run_sweep`: run every point not yet complete, grouped into shared programs, on a backend."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ..config import RunConfig, is_run_config
from .backends import Backend, TaskOutcome, make_backend
from .grid import MAX_LANES, plan_groups
from .progress import SweepProgress
from .store import is_complete, point_dir
from .worker import GroupOutcome, GroupTask, run_group, write_error


@dataclass
class SweepReport:
    """What a sweep did. ran: points trained and written now; skipped: complete before (or found
    complete by their worker); busy: held by another live worker, left alone; retried: task
    re-submissions after a worker died; failed: points with an error (see `errors`, run_id -> message,
    and the point's error.json). point_dirs: run_id -> folder of every point of the sweep."""

    ran: int = 0
    skipped: int = 0
    retried: int = 0
    failed: int = 0
    busy: int = 0
    point_dirs: dict[str, Path] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def line(self) -> str:
        return (f"{len(self.point_dirs)} points: {self.ran} ran, {self.skipped} skipped, {self.busy} busy, "
                f"{self.failed} failed; {self.retried} task(s) retried; {self.seconds:.1f} s")

    def as_dict(self) -> dict:
        return {"ran": self.ran, "skipped": self.skipped, "retried": self.retried, "failed": self.failed,
                "busy": self.busy, "seconds": round(self.seconds, 3), "errors": dict(self.errors),
                "point_dirs": {k: str(v) for k, v in self.point_dirs.items()}}


def run_sweep(configs: Sequence[RunConfig], out: str | Path, backend: str | Backend = "local",
              ray_address: str | None = None, progress: bool = True, max_retries: int = 2, *,
              max_lanes: int = MAX_LANES, worker: Callable[..., GroupOutcome] = run_group) -> SweepReport:
    """Run every point (config) not yet complete under `out/points/`, grouped into shared programs.

    configs: DUFM and network configs (`deepcollapse.config`), mixed as they come; each network config
        is a group of its own (one Ray task, with the resources it asks for).
    backend: "local" (this process, groups in sequence), "ray" (one Ray task per group; connects to
        `ray_address` or starts a local instance), or a Backend instance. With Ray, `out` must be a
        folder all workers reach at the same path: the workers write the points.
    max_retries: re-submissions of a group whose Ray worker died (a point's own error is not retried).
    max_lanes: most lanes (config x seed) in one compiled program.
    worker: the function run per group, `worker(task, attempt, progress=None)` (default `run_group`);
        with Ray it must be picklable (a module-level function, or a closure cloudpickle can ship).
    Identical configs are one point. If the run is stopped (Ctrl-C), what was written stays (a network
    point keeps its last checkpoint) and the same call later resumes. Returns a SweepReport.
    """
    if max_retries < 0:
        raise ValueError(f"max_retries: must be >= 0, got {max_retries}")
    t0 = time.perf_counter()
    be = make_backend(backend, ray_address, max_retries) if isinstance(backend, str) else backend
    unique: dict[str, RunConfig] = {}
    for c in configs:
        if not is_run_config(c):
            raise ValueError(f"configs: expected DUFMConfig or NetConfig items, got {type(c).__name__}")
        unique.setdefault(c.run_id(), c)
    report = SweepReport(point_dirs={rid: point_dir(out, c) for rid, c in unique.items()})
    todo = [c for rid, c in unique.items() if not is_complete(report.point_dirs[rid])]
    report.skipped = len(unique) - len(todo)
    tasks = [GroupTask([todo[i] for i in g], str(out)) for g in plan_groups(todo, max_lanes)]

    with SweepProgress(progress, len(todo)) as bar:
        def on_done(i: int, outcome: TaskOutcome) -> None:
            _account(report, tasks[i], outcome)
            bar.points_done(len(tasks[i].configs))

        run = functools.partial(worker, progress=bar.steps) if (be.in_process and progress) else worker
        be.run(tasks, run, on_done=on_done)
    report.retried = int(getattr(be, "retried", 0))
    report.seconds = time.perf_counter() - t0
    return report


def _account(report: SweepReport, task: GroupTask, outcome: TaskOutcome) -> None:
    """Add one finished task to the report; a task whose every attempt died fails its unfinished points."""
    if outcome.value is not None:
        for st in outcome.value.status.values():
            setattr(report, st, getattr(report, st) + 1)
        report.errors.update(outcome.value.errors)
        return
    for cfg in task.configs:
        d = point_dir(task.out, cfg)
        if is_complete(d):
            report.ran += 1
            continue
        report.failed += 1
        report.errors[cfg.run_id()] = write_error(d, cfg, outcome.error or "unknown error")
