"""Sweep runner: grid expansion, grouping into programs, the point store, resumption, failures, locks."""

import json
import os
import subprocess
import sys
import time

import jax
import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from jax.experimental.compilation_cache import compilation_cache

from deepcollapse import backends, sweep, train
from deepcollapse.config import DUFMConfig
from deepcollapse.cli import app as cli_app

BASE = dict(K=3, n=2, L=2, width=3, steps=40, log_every=20, dtype="float64", seeds=2, lr=0.1)
GRID = {"activation": ["relu", "linear"], "lam_H": [0.01, 0.02, 0.05]}  # 6 points, 2 shapes
REAL_TRAIN = train.train


def six_points():
    return sweep.expand_grid(BASE, GRID)


CACHE_OPTIONS = {"jax_compilation_cache_dir": None, "jax_persistent_cache_min_compile_time_secs": 0.0,
                 "jax_persistent_cache_min_entry_size_bytes": -1}


@pytest.fixture(scope="module", autouse=True)
def compilation_cache_dir(tmp_path_factory):
    """A persistent XLA cache for this module: every `train.train` builds fresh jitted closures, so
    programs of equal shapes would otherwise compile again in each test (seconds each on 2 cores)."""
    old = {k: getattr(jax.config, k) for k in CACHE_OPTIONS}
    new = dict(CACHE_OPTIONS, jax_compilation_cache_dir=str(tmp_path_factory.mktemp("xla_cache")))
    for k, v in new.items():
        jax.config.update(k, v)
    compilation_cache.reset_cache()
    yield new["jax_compilation_cache_dir"]
    for k, v in old.items():
        jax.config.update(k, v)
    compilation_cache.reset_cache()


class CountingTrain:
    """Wraps train.train, recording the configs of every call; optionally misbehaves."""

    def __init__(self, real, raise_on=None):
        self.real, self.calls, self.raise_on = real, [], raise_on

    def __call__(self, configs, *args, **kwargs):
        configs = list(configs) if not isinstance(configs, DUFMConfig) else [configs]
        self.calls.append(configs)
        if self.raise_on is not None:
            self.raise_on(configs, len(self.calls))
        return self.real(configs, *args, **kwargs)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """The 6-point sweep run once, with every train.train call and every write_run recorded."""
    out = tmp_path_factory.mktemp("sweep")
    writes = []
    real_write = train.write_run
    counter = CountingTrain(REAL_TRAIN)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train, "train", counter)
        mp.setattr(train, "write_run", lambda res: (writes.append(res.run_dir), real_write(res))[1])
        report = sweep.run_sweep(six_points(), out, progress=True)
    return out, report, counter.calls, writes


# ---- grid ----------------------------------------------------------------------------------------
def test_expand_grid_is_the_cartesian_product_in_order():
    cs = sweep.expand_grid(BASE, {"lam_H": [0.1, 0.2], "optimizer.name": ["sgd", "adam"], "L": [1, 2, 3]})
    assert len(cs) == 12
    combos = [(c.lam_H, c.optimizer.name, c.L) for c in cs]
    assert combos[:4] == [(0.1, "sgd", 1), (0.1, "sgd", 2), (0.1, "sgd", 3), (0.1, "adam", 1)]
    assert len(set(combos)) == 12
    assert all(c.K == 3 and c.dtype == "float64" for c in cs)
    assert sweep.expand_grid(BASE, {}) == [DUFMConfig(**BASE)]


@pytest.mark.parametrize("grid, match", [
    ({"lam_H": []}, "non-empty list"),
    ({"lam_H": 0.1}, "non-empty list"),
    ({"bogus": [1]}, "grid point"),
    ({"width": [3, 2]}, r"width=2"),
    ({"K.x": [1]}, "not a mapping"),
])
def test_expand_grid_rejects_bad_grids(grid, match):
    with pytest.raises(ValueError, match=match):
        sweep.expand_grid(BASE, grid)


def test_plan_groups_by_shape_and_lane_cap():
    cs = six_points()
    groups = sweep.plan_groups(cs)
    assert sorted(map(sorted, groups)) == [[0, 1, 2], [3, 4, 5]]
    for g in groups:
        assert len({cs[i].shape_key() for i in g}) == 1
    # 2 seeds per config: a cap of 4 lanes splits each shape group of 3 configs into 2 + 1
    capped = sweep.plan_groups(cs, max_lanes=4)
    assert sorted(map(sorted, capped)) == [[0, 1], [2], [3, 4], [5]]
    # a config with more seeds than the cap runs alone
    big = DUFMConfig(**{**BASE, "seeds": 5})
    assert sweep.plan_groups([big, cs[0]], max_lanes=4) == [[0], [1]]
    with pytest.raises(ValueError, match="max_lanes"):
        sweep.plan_groups(cs, max_lanes=0)


# ---- running -------------------------------------------------------------------------------------
def test_six_points_in_two_programs_each_written_once(swept):
    out, report, calls, writes = swept
    assert (report.ran, report.skipped, report.failed, report.retried, report.busy) == (6, 0, 0, 0, 0)
    assert len(calls) == 2 and sorted(len(c) for c in calls) == [3, 3]
    ids = [c.run_id() for c in six_points()]
    assert sorted(report.point_dirs) == sorted(ids)
    assert sorted(p.name for p in writes) == sorted(ids)  # each point written exactly once
    for rid in ids:
        d = out / "points" / rid
        assert sorted(f.name for f in d.iterdir()) == [
            "config.yaml", "history.csv", "history.parquet", "params.npz", "summary.json"]
        s = json.loads((d / "summary.json").read_text())
        assert s["run_id"] == rid and [l["lane"] for l in s["lanes"]] == [0, 1]
        assert [l["seed"] for l in s["lanes"]] == [0, 1]
        cfg = DUFMConfig(**yaml.safe_load((d / "config.yaml").read_text()))
        assert cfg.run_id() == rid


def test_point_equals_its_config_run_alone(swept):
    """Lanes of a shared program give the numbers of the config trained by itself (float64)."""
    out, *_ = swept
    cs = six_points()
    for cfg in (cs[4],):  # the middle point of the second program
        alone = REAL_TRAIN(cfg)
        d = out / "points" / cfg.run_id()
        s = json.loads((d / "summary.json").read_text())
        for got, want in zip(s["lanes"], alone.summary):
            for k in ("loss", "fit", "reg"):
                np.testing.assert_allclose(got[k], want[k], rtol=1e-10, atol=0)
            assert got["ranks"] == want["ranks"] and got["found_dnc"] == want["found_dnc"]
        hist = pd.read_parquet(d / "history.parquet")
        ref = alone.history()
        assert list(hist.columns) == list(ref.columns) and len(hist) == len(ref)
        np.testing.assert_allclose(hist["value"], ref["value"], rtol=1e-10, atol=1e-14)
        pz = np.load(d / "params.npz")
        for lane in alone.lanes:
            np.testing.assert_allclose(pz[f"lane{lane.index}/W/2"], alone.lane_params(lane.index)["W"][1],
                                       rtol=1e-10, atol=1e-14)


def test_load_points_and_histories(swept):
    out, *_ = swept
    df = sweep.load_points(out)
    assert len(df) == 12  # 6 points x 2 seeds
    for col in ("K", "n", "L", "width", "lam_H", "lam_W", "lr", "init_scale", "activation", "loss_fn",
                "optimizer", "lane", "seed", "loss", "fit", "reg", "found_dnc", "diverged",
                "rank_H1", "rank_H2", "rank_Z", "run_id"):
        assert col in df.columns, col
    assert sorted(df.groupby(["activation", "lam_H"]).size().tolist()) == [2] * 6
    np.testing.assert_allclose(df["loss"], df["fit"] + df["reg"], rtol=1e-12)
    h = sweep.load_histories(out)
    assert set(h["run_id"]) == set(df["run_id"])
    last = h[(h.step == 40) & (h.metric == "loss")].merge(df, on=["run_id", "lane"])
    np.testing.assert_allclose(last["value"], last["loss"], rtol=1e-12)


def test_load_from_empty_store(tmp_path):
    assert len(sweep.load_points(tmp_path)) == 0 and "run_id" in sweep.load_points(tmp_path).columns
    assert len(sweep.load_histories(tmp_path)) == 0


def test_interrupted_sweep_resumes_without_recomputing(tmp_path, monkeypatch):
    def stop_second_program(configs, n_calls):
        if n_calls == 2:
            raise KeyboardInterrupt

    counter = CountingTrain(REAL_TRAIN, raise_on=stop_second_program)
    monkeypatch.setattr(train, "train", counter)
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(six_points(), tmp_path, progress=False)
    first = {c.run_id() for c in counter.calls[0]}
    done = {d.name for d in (tmp_path / "points").iterdir() if sweep.is_complete(d)}
    assert done == first and len(first) == 3
    assert not list(tmp_path.glob("points/*/.lock*"))  # locks released on the way out

    counter = CountingTrain(REAL_TRAIN)
    monkeypatch.setattr(train, "train", counter)
    report = sweep.run_sweep(six_points(), tmp_path, progress=False)
    assert (report.ran, report.skipped, report.failed) == (3, 3, 0)
    assert len(counter.calls) == 1 and {c.run_id() for c in counter.calls[0]}.isdisjoint(first)
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.glob("points/*/summary.json")}
    assert len(mtimes) == 6

    counter = CountingTrain(REAL_TRAIN)
    monkeypatch.setattr(train, "train", counter)
    report = sweep.run_sweep(six_points(), tmp_path, progress=False)
    assert (report.ran, report.skipped) == (0, 6) and counter.calls == []
    assert mtimes == {p: p.stat().st_mtime_ns for p in tmp_path.glob("points/*/summary.json")}


def test_failing_point_is_recorded_and_others_finish(tmp_path, monkeypatch):
    cs = six_points()[:2]  # one program of 2 points
    bad = cs[1]

    def fail_with_bad(configs, n_calls):
        if bad in configs:
            raise FloatingPointError("boom")

    counter = CountingTrain(REAL_TRAIN, raise_on=fail_with_bad)
    monkeypatch.setattr(train, "train", counter)
    report = sweep.run_sweep(cs, tmp_path, progress=False)
    assert (report.ran, report.failed, report.skipped) == (1, 1, 0)
    assert list(report.errors) == [bad.run_id()] and "FloatingPointError: boom" in report.errors[bad.run_id()]
    err = json.loads((tmp_path / "points" / bad.run_id() / "error.json").read_text())
    assert err["run_id"] == bad.run_id() and "boom" in err["traceback"]
    assert not sweep.is_complete(tmp_path / "points" / bad.run_id())
    assert sweep.is_complete(tmp_path / "points" / cs[0].run_id())
    assert len(counter.calls) == 3  # the joint program, then each point alone

    # once the cause is gone, a rerun trains only the failed point and clears its error.json
    counter = CountingTrain(REAL_TRAIN)
    monkeypatch.setattr(train, "train", counter)
    report = sweep.run_sweep(cs, tmp_path, progress=False)
    assert (report.ran, report.skipped, report.failed) == (1, 1, 0)
    assert counter.calls == [[bad]]
    assert not (tmp_path / "points" / bad.run_id() / "error.json").exists()


def test_bad_backend_and_configs():
    with pytest.raises(ValueError, match="backend"):
        sweep.run_sweep(six_points(), "/nonexistent", backend="slurm")
    with pytest.raises(ValueError, match="configs"):
        sweep.run_sweep([dict(BASE)], "/nonexistent")
    with pytest.raises(ValueError, match="lock_timeout"):
        sweep.run_sweep(six_points(), "/nonexistent", lock_timeout=0)
    with pytest.raises(ValueError, match="max_retries"):
        sweep.run_sweep(six_points(), "/nonexistent", max_retries=-1)


def test_ray_backend_without_ray_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"deepcollapse\[dist\]"):
        backends.import_ray()
    with pytest.raises(ValueError, match="max_retries"):
        backends.RayBackend(max_retries=-1)
    with pytest.raises(ValueError, match="ray_address"):
        backends.make_backend("local", ray_address="auto")


def test_task_resources():
    task = sweep.GroupTask(six_points()[:2], "out")
    assert task.resources == {"num_cpus": 1, "num_gpus": 0}
    assert backends.task_options(task) == {"num_cpus": 1, "num_gpus": 0}

    class Gpu:
        resources = {"num_cpus": 4, "num_gpus": 1, "big_memory": 1}

    assert backends.task_options(Gpu()) == {"num_cpus": 4, "num_gpus": 1, "resources": {"big_memory": 1}}


# ---- locks ---------------------------------------------------------------------------------------
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _plant_lock(d, owner, pid, age=0.0):
    d.mkdir(parents=True, exist_ok=True)
    lock = d / sweep.LOCK_NAME
    lock.write_text(json.dumps({"owner": owner, "host": __import__("socket").gethostname(), "pid": pid}))
    t = time.time() - age
    os.utime(lock, (t, t))
    return lock


def test_point_lock_is_exclusive_and_breaks_only_stale_locks(tmp_path):
    d = tmp_path / "p"
    a = sweep.PointLock(d, "a")
    assert a.acquire()
    assert not sweep.PointLock(d, "b").acquire()  # held by a live process (this one)
    a.release()
    assert not (d / sweep.LOCK_NAME).exists()
    b = sweep.PointLock(d, "b")
    assert b.acquire()
    sweep.PointLock(d, "c").release()  # never acquired: must not remove b's lock
    assert (d / sweep.LOCK_NAME).exists()
    b.release()

    _plant_lock(d, "x", _dead_pid())  # process gone
    assert sweep.PointLock(d, "c").acquire()
    (d / sweep.LOCK_NAME).unlink()
    _plant_lock(d, "x", os.getpid(), age=100.0)  # alive but no heartbeat for longer than the timeout
    assert not sweep.PointLock(d, "c", timeout=1000).acquire()
    assert sweep.PointLock(d, "c", timeout=10).acquire()
    (d / sweep.LOCK_NAME).unlink()
    _plant_lock(d, "task:0", os.getpid())  # alive, fresh, but an earlier attempt known to be dead
    assert not sweep.PointLock(d, "task:1").acquire()
    assert sweep.PointLock(d, "task:1", dead_owners=["task:0"]).acquire()
    assert not list(d.glob(".lock.stale*"))


def test_stopped_driver_drops_only_its_own_tasks_locks(tmp_path):
    cs = six_points()[:2]
    task = sweep.GroupTask(cs, str(tmp_path))
    mine = _plant_lock(sweep.point_dir(tmp_path, cs[0]), f"{task.token}:1", os.getpid())
    other = _plant_lock(sweep.point_dir(tmp_path, cs[1]), "other-sweep:0", os.getpid())
    sweep._drop_task_locks([task])
    assert not mine.exists() and other.exists()


def test_locked_point_is_left_to_its_owner(tmp_path, monkeypatch):
    cs = six_points()[:2]
    cs.append(DUFMConfig(**cs[1].model_dump()))  # identical configs are one point
    held = sweep.PointLock(sweep.point_dir(tmp_path, cs[0]), "another-sweep")
    assert held.acquire()
    counter = CountingTrain(REAL_TRAIN)
    monkeypatch.setattr(train, "train", counter)
    report = sweep.run_sweep(cs, tmp_path, progress=False)
    assert (report.ran, report.busy) == (1, 1) and counter.calls == [[cs[1]]]
    assert len(report.point_dirs) == 2
    assert not sweep.is_complete(sweep.point_dir(tmp_path, cs[0]))
    held.release()
    # a stale lock of a dead process is broken and the point runs
    _plant_lock(sweep.point_dir(tmp_path, cs[0]), "crashed", _dead_pid())
    report = sweep.run_sweep(cs, tmp_path, progress=False)
    assert (report.ran, report.skipped, report.busy) == (1, 1, 0)


# ---- command -------------------------------------------------------------------------------------
def _app():
    return cli_app


def test_sweep_command_runs_records_failures_and_resumes(tmp_path):
    """Two points; the second asks Optax for a keyword it does not take: it fails on its own."""
    spec = tmp_path / "sweep.yaml"
    grid = {"optimizer.kwargs": [{}, {"no_such_option": 1.0}]}
    spec.write_text(yaml.safe_dump({"base": {**BASE, "seeds": 1}, "grid": grid}))
    good, bad = sweep.read_sweep_file(spec)
    out = tmp_path / "out"
    runner = CliRunner()
    res = runner.invoke(_app(), ["sweep", str(spec), "--out", str(out), "--json"])
    assert res.exit_code == 1, res.output  # a failed point makes the command fail
    rep = json.loads(res.stdout)
    assert (rep["ran"], rep["skipped"], rep["failed"], rep["retried"]) == (1, 0, 1, 0)
    assert list(rep["errors"]) == [bad.run_id()] and "no_such_option" in rep["errors"][bad.run_id()]
    assert list(sweep.load_points(out)["run_id"]) == [good.run_id()]
    res = runner.invoke(_app(), ["sweep", str(spec), "--out", str(out)])
    assert res.exit_code == 1, res.output
    assert "0 ran, 1 skipped, 0 busy, 1 failed" in res.stdout and bad.run_id() in res.stdout


@pytest.mark.parametrize("args, text", [
    (["--backend", "slurm"], "local, ray"),
    (["--ray-address", "auto"], "--backend ray"),
])
def test_sweep_command_rejects_bad_options(tmp_path, args, text):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump({"base": BASE, "grid": {}}))
    res = CliRunner().invoke(_app(), ["sweep", str(spec), "--out", str(tmp_path / "o"), *args])
    assert res.exit_code == 2 and text in res.output


def test_sweep_command_rejects_bad_file(tmp_path):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump({"base": BASE, "grids": {"lam_H": [0.1]}}))
    res = CliRunner().invoke(_app(), ["sweep", str(spec), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "unknown keys" in res.output
