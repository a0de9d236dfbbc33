"""Grid sweeps over run configs (DUFM and real networks): each config is one *point*, stored once as a
run folder `out/points/<run_id>/` (the record format of `deepcollapse.results`).

Reading order, one module per job:
  grid      base + grid -> configs; points with equal shapes grouped into programs (`plan_groups`)
  lock      exclusive ownership of a point folder while a worker trains it (`PointLock`)
  worker    `run_group`: lock the points of a group, train them (`deepcollapse.train.train`), write each
  driver    `run_sweep`: skip complete points, hand the groups to a backend, count what happened
  backends  where the groups run: this process or Ray tasks
  progress  the progress bar of a sweep
  store     `load_points` / `load_histories`: the store read back as tables

The results store is the single source of truth: workers write points themselves, wherever they run,
so `out` must be a folder every worker can reach (a shared file system for a multi-node Ray cluster).
"""

from .backends import LocalBackend, RayBackend, TaskOutcome, make_backend
from .driver import SweepReport, run_sweep
from .grid import MAX_LANES, expand_grid, plan_groups, read_sweep_file
from .lock import LOCK_NAME, PointLock, is_locked
from .store import is_complete, load_histories, load_points, point_dir
from .worker import GroupOutcome, GroupTask, run_group

__all__ = [
    "GroupOutcome", "GroupTask", "LOCK_NAME", "LocalBackend", "MAX_LANES", "PointLock", "RayBackend",
    "SweepReport", "TaskOutcome", "expand_grid", "is_complete", "is_locked", "load_histories", "load_points",
    "make_backend", "plan_groups", "point_dir", "read_sweep_file", "run_group", "run_sweep",
]
