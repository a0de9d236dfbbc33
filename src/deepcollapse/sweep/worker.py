"""The sweep worker: train the points of one group that are neither complete nor locked, write each.

A group is a list of points with equal shapes (`grid.plan_groups`). A group of one point trains
straight into its folder (`train.train(config, out=<out>/points)`), checkpointing as it goes, so a
worker killed mid-run is retried by the backend and resumes from the last checkpoint. A group of
several DUFM points trains as lanes of one program and each point's lanes are written afterwards.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .. import results, train
from ..config import RunConfig
from .lock import PointLock
from .store import is_complete, point_dir


@dataclass
class GroupTask:
    """Points with equal shapes, trained as lanes of one program. Picklable (sent to Ray workers)."""

    configs: list[RunConfig]
    out: str
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def resources(self) -> dict:
        """What one run of this group asks of a Ray node: the configs' own request (`resources()`:
        a network config may ask for a GPU; a DUFM config asks for one CPU)."""
        return self.configs[0].resources()


@dataclass
class GroupOutcome:
    """Per point of a group: "ran", "skipped" (found complete), "busy" (locked by a live worker) or
    "failed", and the error message of each failed point."""

    status: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)


def write_error(d: Path, config: RunConfig, exc: BaseException | str) -> str:
    """Record why point `d` failed in its error.json; returns the one-line message."""
    if isinstance(exc, BaseException):
        msg = f"{type(exc).__name__}: {exc}"
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    else:
        msg, tb = exc, None
    results.save_json(Path(d) / "error.json", {
        "run_id": config.run_id(), "error": msg, "traceback": tb, "host": socket.gethostname(),
        "pid": os.getpid(), "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })
    return msg


def run_group(task: GroupTask, attempt: int = 0, progress: train.ProgressFn | None = None) -> GroupOutcome:
    """Train the group's points that are neither complete nor locked, and write each.

    Locks every point first (re-checking completion once locked), trains the locked points as lanes
    of one program, and writes each point's record. If the joint run raises, every point is trained
    alone so the failure is charged to the point that causes it; a point's failure is written to its
    error.json and reported, never raised. Locks are released on any exit (and by the kernel if the
    process dies). `attempt` (the backend's retry count) is accepted for the backend's protocol.
    """
    status: dict[str, str] = {}
    errors: dict[str, str] = {}
    locks: dict[int, PointLock] = {}
    root = Path(task.out) / "points"
    try:
        for i, cfg in enumerate(task.configs):
            rid, d = cfg.run_id(), point_dir(task.out, cfg)
            if is_complete(d):
                status[rid] = "skipped"
                continue
            lock = PointLock(d)
            if not lock.acquire():
                status[rid] = "busy"
                continue
            if is_complete(d):
                status[rid] = "skipped"
                lock.release()
                continue
            locks[i] = lock
        todo = [task.configs[i] for i in locks]
        if not todo:
            return GroupOutcome(status, errors)

        def done(cfg):
            (point_dir(task.out, cfg) / "error.json").unlink(missing_ok=True)
            status[cfg.run_id()] = "ran"

        if len(todo) > 1:
            try:
                joint = train.train(todo, progress=progress)
            except Exception:  # noqa: BLE001 - find the point(s) to blame by training each alone
                joint = None
            if joint is not None:
                for k, cfg in enumerate(todo):
                    try:
                        results.write_run(joint.select(k), point_dir(task.out, cfg))
                        done(cfg)
                    except Exception as e:  # noqa: BLE001
                        errors[cfg.run_id()] = write_error(point_dir(task.out, cfg), cfg, e)
                        status[cfg.run_id()] = "failed"
                return GroupOutcome(status, errors)
        for cfg in todo:
            try:
                train.train(cfg, out=root, progress=progress)
                done(cfg)
            except Exception as e:  # noqa: BLE001 - a point's own failure is recorded
                errors[cfg.run_id()] = write_error(point_dir(task.out, cfg), cfg, e)
                status[cfg.run_id()] = "failed"
        return GroupOutcome(status, errors)
    finally:
        for lock in locks.values():
            lock.release()
