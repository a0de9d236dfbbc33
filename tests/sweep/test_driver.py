"""Running sweeps: points trained in shared programs and written once, the store read back, resumption
without recomputing, failures recorded per point, busy points left alone, network points, damage."""

import json
import sys

import jax
import numpy as np
import pandas as pd
import pytest
import yaml
from jax.experimental.compilation_cache import compilation_cache

from deepcollapse import results, sweep, train
from deepcollapse.config import DUFMConfig, NetConfig

BASE = dict(K=3, n=2, L=2, width=3, steps=40, log_every=20, dtype="float64", seeds=2, lr=0.1)
GRID = {"activation": ["relu", "linear"], "lam_H": [0.01, 0.02, 0.05]}  # 6 points, 2 shapes
NET = dict(kind="net", dataset="synthetic", synthetic_K=3, n_per_class=3, synthetic_shape=(8, 8, 1),
           channels=(2, 2, 4), L=2, width=4, batch_size=None, epochs=2, eval_every=1)
REAL_TRAIN = train.train


def six_points():
    return sweep.expand_grid(BASE, GRID)


def record_files(d):
    return sorted(f.name for f in d.iterdir() if not f.name.startswith("."))


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
    real_write = results.write_run
    counter = CountingTrain(REAL_TRAIN)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train, "train", counter)
        mp.setattr(results, "write_run", lambda res, d=None: (writes.append(d), real_write(res, d))[1])
        report = sweep.run_sweep(six_points(), out, progress=True)
    return out, report, counter.calls, writes


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
        assert record_files(d) == ["config.yaml", "history.csv", "history.parquet", "params.npz", "summary.json"]
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
    assert not any(sweep.is_locked(d) for d in (tmp_path / "points").iterdir())  # released on the way out

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
    with pytest.raises(ValueError, match="max_retries"):
        sweep.run_sweep(six_points(), "/nonexistent", max_retries=-1)


def test_ray_backend_without_ray_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"deepcollapse\[dist\]"):
        sweep.backends.import_ray()
    with pytest.raises(ValueError, match="max_retries"):
        sweep.RayBackend(max_retries=-1)
    with pytest.raises(ValueError, match="ray_address"):
        sweep.make_backend("local", ray_address="auto")


def test_locked_point_is_left_to_its_owner(tmp_path, monkeypatch):
    cs = six_points()[:2]
    cs.append(DUFMConfig(**cs[1].model_dump()))  # identical configs are one point
    held = sweep.PointLock(sweep.point_dir(tmp_path, cs[0]))
    assert held.acquire()
    counter = CountingTrain(REAL_TRAIN)
    monkeypatch.setattr(train, "train", counter)
    report = sweep.run_sweep(cs, tmp_path, progress=False)
    assert (report.ran, report.busy) == (1, 1) and counter.calls == [[cs[1]]]
    assert len(report.point_dirs) == 2
    assert not sweep.is_complete(sweep.point_dir(tmp_path, cs[0]))
    held.release()
    report = sweep.run_sweep(cs, tmp_path, progress=False)
    assert (report.ran, report.skipped, report.busy) == (1, 1, 0)




def test_task_resources_come_from_the_configs():
    task = sweep.GroupTask(six_points()[:2], "out")
    assert task.resources == {"num_cpus": 1, "num_gpus": 0}
    assert sweep.backends.task_options(task) == {"num_cpus": 1, "num_gpus": 0}
    gpu = sweep.GroupTask([NetConfig(**{**NET, "num_gpus": 1, "num_cpus": 4})], "out")
    assert sweep.backends.task_options(gpu) == {"num_cpus": 4, "num_gpus": 1}

    class Custom:
        resources = {"num_cpus": 4, "num_gpus": 1, "big_memory": 1}

    assert sweep.backends.task_options(Custom()) == {"num_cpus": 4, "num_gpus": 1, "resources": {"big_memory": 1}}


def test_network_points_run_like_dufm_points(tmp_path):
    """A sweep over network configs: each point is a run record like a DUFM point's; a point whose data
    is missing fails on its own, the other is written."""
    good = NetConfig(**{k: v for k, v in NET.items() if k != "kind"})
    bad = NetConfig(**{**{k: v for k, v in NET.items() if k != "kind"}, "dataset": "mnist", "n_per_class": 2,
                       "data_root": str(tmp_path / "empty")})
    mixed = [good, bad, *six_points()[:2]]
    report = sweep.run_sweep(mixed, tmp_path, progress=False)
    assert (report.ran, report.failed) == (3, 1) and list(report.errors) == [bad.run_id()]
    assert "not found" in report.errors[bad.run_id()] or "No such" in report.errors[bad.run_id()]
    d = sweep.point_dir(tmp_path, good)
    assert record_files(d) == record_files(sweep.point_dir(tmp_path, mixed[2]))
    pts = sweep.load_points(tmp_path)
    assert set(pts["run_id"]) == {good.run_id(), mixed[2].run_id(), mixed[3].run_id()}
    net_row = pts[pts["run_id"] == good.run_id()].iloc[0]
    assert net_row["kind"] == "net" and 0 <= net_row["train_accuracy"] <= 1
    again = train.train(good)
    np.testing.assert_array_equal(results.load_run(d).logs["loss"], again.logs["loss"])


def test_damaged_point_counts_as_not_done(tmp_path):
    cs = six_points()[:2]
    sweep.run_sweep(cs, tmp_path, progress=False)
    d = sweep.point_dir(tmp_path, cs[1])
    h = d / "history.parquet"
    h.write_bytes(h.read_bytes()[:50])
    assert len(sweep.load_points(tmp_path)) == 2 and len(sweep.load_histories(tmp_path)["run_id"].unique()) == 1
    with pytest.warns(RuntimeWarning, match="history.parquet"):
        report = sweep.run_sweep(cs, tmp_path, progress=False)
    assert (report.ran, report.skipped) == (1, 1)
    assert len(sweep.load_histories(tmp_path)["run_id"].unique()) == 2
