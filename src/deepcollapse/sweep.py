"""Grid sweeps over DUFM configs: each config is one *point*, stored once under `out/points/<run_id>/`.

Reading order: `expand_grid` (base + grid -> configs) -> `plan_groups` (points with equal shapes,
`DUFMConfig.shape_key`, become the lanes of one compiled program, at most `max_lanes` lanes each)
-> `run_group` (the worker: lock the points, train them together with `train.train`, split the
result per point, write each point) -> `run_sweep` (skip complete points, hand the groups to a
backend, count what happened) -> `load_points` / `load_histories` (read the store back).

A point folder holds the files `train.write_run` writes for a single config run (config.yaml,
history.parquet/.csv, params.npz, summary.json); summary.json is written last and marks the point
complete. A point that failed for its own reason holds error.json instead (a rerun tries it again).
While a worker owns a point it holds `.lock` in the folder (see `PointLock`), so two workers, or two
sweeps over the same folder, never train or write the same point twice.

The results store is the single source of truth: workers write points themselves, wherever they run,
so `out` must be a folder every worker can reach (a shared file system for a multi-node Ray cluster).
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import socket
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import numpy as np

from . import results, train
from .backends import Backend, TaskOutcome, make_backend
from .config import DUFMConfig

MAX_LANES = 64  # lanes (config x seed) of one compiled program
LOCK_TIMEOUT = 3600.0  # seconds without a heartbeat after which a point lock counts as abandoned
LOCK_NAME = ".lock"


# ---- grid ----------------------------------------------------------------------------------------
def expand_grid(base: dict, grid: dict[str, list]) -> list[DUFMConfig]:
    """Every combination of the grid values on top of `base`, as validated configs.

    Keys are config fields; dotted keys set nested fields ("optimizer.name"). The order is that of
    `itertools.product` over the grid keys in their given order (last key varies fastest). An empty
    grid gives the single config `base`.
    """
    if not isinstance(base, dict):
        raise ValueError(f"base: expected a mapping of config fields, got {type(base).__name__}")
    if not isinstance(grid, dict):
        raise ValueError(f"grid: expected a mapping field -> list of values, got {type(grid).__name__}")
    for key, values in grid.items():
        if not isinstance(values, (list, tuple)) or len(values) == 0:
            raise ValueError(f"grid: {key!r} needs a non-empty list of values, got {values!r}")
    keys = list(grid)
    configs = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        data = json.loads(json.dumps(base))
        for key, value in zip(keys, combo):
            _set_dotted(data, key, value)
        try:
            configs.append(DUFMConfig(**data))
        except ValueError as e:
            point = ", ".join(f"{k}={v!r}" for k, v in zip(keys, combo))
            raise ValueError(f"grid point ({point}) is not a valid config: {e}") from e
    return configs


def _set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    target = data
    for p in parts[:-1]:
        nxt = target.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ValueError(f"grid: {key!r} goes into {p!r}, which is not a mapping")
        target = nxt
    target[parts[-1]] = value


def read_sweep_file(path: str | Path) -> list[DUFMConfig]:
    """Configs of a sweep YAML file with `base:` (config fields) and `grid:` (field -> list of values)."""
    import yaml

    with open(path) as f:
        spec = yaml.safe_load(f) or {}
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: expected a mapping with keys 'base' and 'grid', got {type(spec).__name__}")
    unknown = set(spec) - {"base", "grid"}
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; allowed are 'base' and 'grid'")
    return expand_grid(spec.get("base") or {}, spec.get("grid") or {})


def plan_groups(configs: Sequence[DUFMConfig], max_lanes: int = MAX_LANES) -> list[list[int]]:
    """Indices of configs grouped into programs: equal shape keys, at most `max_lanes` lanes each.

    Groups keep first-seen order; a config with more seeds than `max_lanes` forms a group alone.
    """
    if max_lanes < 1:
        raise ValueError(f"max_lanes: must be >= 1, got {max_lanes}")
    groups: list[list[int]] = []
    for same_shape in train.group_configs(configs):
        current: list[int] = []
        lanes = 0
        for i in same_shape:
            n = len(configs[i].seed_list)
            if current and lanes + n > max_lanes:
                groups.append(current)
                current, lanes = [], 0
            current.append(i)
            lanes += n
        groups.append(current)
    return groups


# ---- the store -----------------------------------------------------------------------------------
def point_dir(out: str | Path, config: DUFMConfig) -> Path:
    return Path(out) / "points" / config.run_id()


def is_complete(d: Path) -> bool:
    """A point is complete once its summary.json exists (written last, atomically)."""
    return (Path(d) / "summary.json").exists()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purpose
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class PointLock:
    """Exclusive ownership of one point folder: `.lock` created with O_CREAT | O_EXCL.

    The file records host, pid, owner token and time. An existing lock may be broken when it is
    stale: its owner is one of `dead_owners` (earlier attempts of this task, known dead), or it was
    not touched (`touch`, the heartbeat after every training chunk) for `timeout` seconds, or it is
    held by a process of this host that no longer exists. Breaking renames the file to a private
    name first, so of two workers breaking the same lock only one wins.
    """

    def __init__(self, d: Path, owner: str, dead_owners: Sequence[str] = (), timeout: float = LOCK_TIMEOUT):
        self.path = Path(d) / LOCK_NAME
        self.owner = owner
        self.dead_owners = set(dead_owners)
        self.timeout = timeout
        self.held = False

    def _info(self) -> dict:
        return {"owner": self.owner, "host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}

    def acquire(self) -> bool:
        """True if we now hold the lock; False if another live worker does."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._break_if_stale():
                    continue
                return False
            with os.fdopen(fd, "w") as f:
                json.dump(self._info(), f)
            self.held = True
            return True
        return False

    def _read(self) -> tuple[str, float] | None:
        try:
            return self.path.read_text(), self.path.stat().st_mtime
        except FileNotFoundError:
            return None

    def _is_stale(self, text: str, mtime: float) -> bool:
        if time.time() - mtime > self.timeout:
            return True
        try:
            info = json.loads(text)
        except ValueError:
            return False  # being written right now
        if info.get("owner") in self.dead_owners:
            return True
        return info.get("host") == socket.gethostname() and not _pid_alive(int(info.get("pid", -1)))

    def _break_if_stale(self) -> bool:
        seen = self._read()
        if seen is None:
            return True  # released meanwhile: try again
        if not self._is_stale(*seen):
            return False
        grave = self.path.with_name(f"{LOCK_NAME}.stale.{uuid.uuid4().hex}")
        try:
            os.rename(self.path, grave)
        except FileNotFoundError:
            return True
        if grave.read_text() != seen[0]:  # someone re-locked between our read and rename: give it back
            try:
                os.link(grave, self.path)
            except FileExistsError:
                pass
            grave.unlink()
            return False
        grave.unlink()
        return True

    def touch(self) -> None:
        if self.held:
            try:
                os.utime(self.path)
            except FileNotFoundError:
                pass

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        seen = self._read()
        if seen is not None:
            try:
                if json.loads(seen[0]).get("owner") == self.owner:
                    self.path.unlink(missing_ok=True)
            except ValueError:
                pass


# ---- the worker ----------------------------------------------------------------------------------
@dataclass
class GroupTask:
    """Points with equal shapes, trained as lanes of one program. Picklable (sent to Ray workers)."""

    configs: list[DUFMConfig]
    out: str
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    lock_timeout: float = LOCK_TIMEOUT

    @property
    def resources(self) -> dict:
        """What one run of this group asks of a Ray node: optional `num_cpus` / `num_gpus` fields
        of the configs (DUFM configs have neither: one CPU)."""
        c = self.configs[0]
        return {"num_cpus": getattr(c, "num_cpus", None) or 1, "num_gpus": getattr(c, "num_gpus", None) or 0}


@dataclass
class GroupOutcome:
    """Per point of a group: "ran", "skipped" (found complete), "busy" (locked by a live worker) or
    "failed", and the error message of each failed point."""

    status: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)


def split_result(res: train.TrainResult, i: int, run_dir: Path | None = None) -> train.TrainResult:
    """The lanes of config i of a multi-config result, renumbered 0.. as if the config ran alone."""
    idx = [lane.index for lane in res.lanes if lane.config_index == i]
    lanes = [train.Lane(j, 0, res.lanes[p].seed) for j, p in enumerate(idx)]
    sel = np.asarray(idx)
    return train.TrainResult(
        configs=[res.configs[i]],
        lanes=lanes,
        steps=np.array(res.steps),
        logs={k: np.asarray(v)[:, sel] for k, v in res.logs.items()},
        params=jax.tree.map(lambda a: np.asarray(a)[sel], res.params),
        diverged_at=np.asarray(res.diverged_at)[sel],
        summary=[dict(res.summary[p], lane=j, config=0) for j, p in enumerate(idx)],
        run_dir=run_dir,
        complete=res.complete,
    )


def write_point(res: train.TrainResult, d: Path) -> None:
    """One single-config result into point folder d: config.yaml, then `train.write_run`'s files
    (summary.json last, so a point is complete only when every file is in place)."""
    res.run_dir = Path(d)
    results.save_config(res.run_dir / "config.yaml", res.configs[0])
    train.write_run(res)
    (res.run_dir / "error.json").unlink(missing_ok=True)


def _write_error(d: Path, config: DUFMConfig, exc: BaseException) -> str:
    msg = f"{type(exc).__name__}: {exc}"
    results.save_json(Path(d) / "error.json", {
        "run_id": config.run_id(), "error": msg,
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        "host": socket.gethostname(), "pid": os.getpid(), "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })
    return msg


def run_group(task: GroupTask, attempt: int = 0, progress: train.ProgressFn | None = None) -> GroupOutcome:
    """The sweep worker: train the group's points that are neither complete nor locked, write each.

    Locks every point first (re-checking completion once locked), trains the locked points as lanes
    of one program, splits the result and writes each point. If the joint run raises, every point
    is trained alone so the failure is charged to the point that causes it; a point's failure is
    written to its error.json and reported, never raised. Locks are released on any exit; the
    heartbeat touches them after every chunk. attempt: see `backends` (earlier attempts of this
    task are dead, their locks may be broken).
    """
    owner = f"{task.token}:{attempt}"
    dead = [f"{task.token}:{j}" for j in range(attempt)]
    status: dict[str, str] = {}
    errors: dict[str, str] = {}
    locks: dict[int, PointLock] = {}

    def heartbeat(step, total, loss, n_div):
        for lock in locks.values():
            lock.touch()
        if progress is not None:
            progress(step, total, loss, n_div)

    try:
        for i, cfg in enumerate(task.configs):
            rid, d = cfg.run_id(), point_dir(task.out, cfg)
            if is_complete(d):
                status[rid] = "skipped"
                continue
            lock = PointLock(d, owner, dead, task.lock_timeout)
            if not lock.acquire():
                status[rid] = "busy"
                continue
            locks[i] = lock
            if is_complete(d):
                status[rid] = "skipped"
                locks.pop(i).release()
        todo = list(locks)
        if not todo:
            return GroupOutcome(status, errors)
        try:
            joint = train.train([task.configs[i] for i in todo], progress=heartbeat)
            parts = {i: (joint, k) for k, i in enumerate(todo)}
        except Exception:  # noqa: BLE001 - find the point(s) to blame by training each alone
            parts = {}
            for i in todo:
                cfg = task.configs[i]
                try:
                    parts[i] = (train.train([cfg], progress=heartbeat), 0)
                except Exception as e:  # noqa: BLE001 - a point's own failure is recorded
                    errors[cfg.run_id()] = _write_error(point_dir(task.out, cfg), cfg, e)
                    status[cfg.run_id()] = "failed"
        for i, (res, k) in parts.items():
            cfg = task.configs[i]
            d = point_dir(task.out, cfg)
            try:
                write_point(split_result(res, k), d)
                status[cfg.run_id()] = "ran"
            except Exception as e:  # noqa: BLE001
                errors[cfg.run_id()] = _write_error(d, cfg, e)
                status[cfg.run_id()] = "failed"
        return GroupOutcome(status, errors)
    finally:
        for lock in locks.values():
            lock.release()


# ---- the driver ----------------------------------------------------------------------------------
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


def run_sweep(configs: Sequence[DUFMConfig], out: str | Path, backend: str | Backend = "local",
              ray_address: str | None = None, progress: bool = True, max_retries: int = 2, *,
              max_lanes: int = MAX_LANES, lock_timeout: float = LOCK_TIMEOUT,
              worker: Callable[..., GroupOutcome] = run_group) -> SweepReport:
    """Run every point (config) not yet complete under `out/points/`, grouped into shared programs.

    backend: "local" (this process, groups in sequence), "ray" (one Ray task per group; connects to
        `ray_address` or starts a local instance), or a Backend instance. With Ray, `out` must be a
        folder all workers reach at the same path: the workers write the points.
    max_retries: re-submissions of a group whose Ray worker died (a point's own error is not retried).
    max_lanes: most lanes (config x seed) in one compiled program.
    lock_timeout: seconds after which an untouched point lock is taken as abandoned.
    worker: the function run per group, `worker(task, attempt, progress=None)` (default `run_group`);
        with Ray it must be picklable (a module-level function, or a closure cloudpickle can ship).
    Identical configs are one point. If the run is stopped (Ctrl-C), what was written stays, the
    locks of the stopped groups are removed, and the same call later resumes. Returns a SweepReport.
    """
    if not lock_timeout > 0:
        raise ValueError(f"lock_timeout: must be > 0 seconds, got {lock_timeout}")
    if max_retries < 0:
        raise ValueError(f"max_retries: must be >= 0, got {max_retries}")
    t0 = time.perf_counter()
    be = make_backend(backend, ray_address, max_retries) if isinstance(backend, str) else backend
    unique: dict[str, DUFMConfig] = {}
    for c in configs:
        if not isinstance(c, DUFMConfig):
            raise ValueError(f"configs: expected DUFMConfig items, got {type(c).__name__}")
        unique.setdefault(c.run_id(), c)
    report = SweepReport(point_dirs={rid: point_dir(out, c) for rid, c in unique.items()})
    todo = [c for rid, c in unique.items() if not is_complete(report.point_dirs[rid])]
    report.skipped = len(unique) - len(todo)
    tasks = [GroupTask([todo[i] for i in g], str(out), lock_timeout=lock_timeout)
             for g in plan_groups(todo, max_lanes)]

    with _Progress(progress, len(todo)) as bar:
        def on_done(i: int, outcome: TaskOutcome) -> None:
            _account(report, tasks[i], outcome)
            bar.points_done(len(tasks[i].configs))

        if be.in_process and progress:
            run = functools.partial(worker, progress=bar.steps)
        else:
            run = worker
        try:
            be.run(tasks, run, on_done=on_done)
        except BaseException:
            if not be.in_process:  # workers were killed holding locks: free them for the next run
                _drop_task_locks(tasks)
            raise
    report.retried = int(getattr(be, "retried", 0))
    report.seconds = time.perf_counter() - t0
    return report


def _drop_task_locks(tasks: Sequence[GroupTask]) -> None:
    """Remove the point locks held by any attempt of these tasks (after the driver stopped them)."""
    for task in tasks:
        for cfg in task.configs:
            lock = point_dir(task.out, cfg) / LOCK_NAME
            try:
                if json.loads(lock.read_text()).get("owner", "").split(":")[0] == task.token:
                    lock.unlink(missing_ok=True)
            except (OSError, ValueError):
                pass


def _account(report: SweepReport, task: GroupTask, outcome: TaskOutcome) -> None:
    """Add one finished task to the report; a task whose every attempt died fails its unfinished points."""
    if outcome.value is not None:
        for rid, st in outcome.value.status.items():
            setattr(report, st, getattr(report, st) + 1)
        report.errors.update(outcome.value.errors)
        return
    for cfg in task.configs:
        d = point_dir(task.out, cfg)
        if is_complete(d):
            report.ran += 1
            continue
        report.failed += 1
        report.errors[cfg.run_id()] = outcome.error or "unknown error"
        results.save_json(d / "error.json", {"run_id": cfg.run_id(), "error": outcome.error,
                                             "time": time.strftime("%Y-%m-%dT%H:%M:%S")})


class _Progress:
    """A rich progress bar over points (and over the steps of the running group, in process)."""

    def __init__(self, enabled: bool, total: int):
        self.enabled = enabled
        self.total = total

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                               TimeElapsedColumn(), console=Console(stderr=True))
            self._p.__enter__()
            self._points = self._p.add_task("points", total=self.total)
            self._steps = self._p.add_task("steps", total=1, visible=False)
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._p.__exit__(*exc)
        return False

    def points_done(self, n: int) -> None:
        if self.enabled:
            self._p.advance(self._points, n)

    def steps(self, step: int, total: int, loss: float, n_div: int) -> None:
        if self.enabled:
            self._p.update(self._steps, completed=step, total=total, visible=True,
                           description=f"steps (mean loss {loss:.3g}, {n_div} diverged)")


# ---- reading back ---------------------------------------------------------------------------------
LANE_COLUMNS = ("lane", "seed", "loss", "fit", "reg", "found_dnc", "diverged", "diverged_at")


def _complete_points(out: str | Path) -> list[Path]:
    root = Path(out) / "points"
    return sorted(d for d in root.iterdir() if is_complete(d)) if root.is_dir() else []


def _config_columns(cfg: dict) -> dict:
    """Config fields as table columns: `loss` (mse/ce) becomes `loss_fn` (the lanes' `loss` is the
    final loss value), the optimizer becomes `optimizer` (name) and `optimizer_kwargs` (JSON), lists
    become tuples."""
    row = {}
    for k, v in cfg.items():
        if k == "optimizer":
            row["optimizer"] = v.get("name")
            row["optimizer_kwargs"] = json.dumps(v.get("kwargs") or {}, sort_keys=True)
        elif k == "loss":
            row["loss_fn"] = v
        else:
            row[k] = tuple(v) if isinstance(v, list) else v
    return row


def load_points(out: str | Path):
    """One row per (point, lane) of every complete point under `out/points/`.

    Columns: the point's config fields (K, n, L, width, lam_H, lam_W, lr, init_scale, activation,
    loss_fn = the config's `loss` mse/ce, optimizer, optimizer_kwargs, steps, seeds, dtype, ...), the
    lane's lane, seed, loss, fit, reg (final values; NaN if diverged), found_dnc, diverged,
    diverged_at, rank_<layer> (H1..HL, Z), nc2_<layer>, and run_id.
    """
    import pandas as pd
    import yaml

    rows = []
    for d in _complete_points(out):
        summary = json.loads((d / "summary.json").read_text())
        cfg = _config_columns(yaml.safe_load((d / "config.yaml").read_text()))
        for lane in summary["lanes"]:
            row = dict(cfg)
            row.update({k: lane.get(k) for k in LANE_COLUMNS})
            for name, r in (lane.get("ranks") or {}).items():
                row[f"rank_{name}"] = r
            for name, v in (lane.get("nc2") or {}).items():
                row[f"nc2_{name}"] = v
            row["run_id"] = d.name
            rows.append(row)
    if not rows:
        return pd.DataFrame(columns=["run_id", *LANE_COLUMNS])
    df = pd.DataFrame(rows)
    for k in ("loss", "fit", "reg"):
        df[k] = df[k].astype(float)  # None (diverged) -> NaN
    return df


def load_histories(out: str | Path):
    """The history tables of every complete point, concatenated (each carries its run_id)."""
    import pandas as pd

    frames = [results.load_table(d / "history.parquet") for d in _complete_points(out)]
    if not frames:
        return pd.DataFrame(columns=["step", "lane", "layer", "metric", "value", "run_id"])
    return pd.concat(frames, ignore_index=True)
