"""The Ray backend on a private local Ray instance: same numbers as local, worker deaths, resumption."""

import json
import os

import jax
import numpy as np
import pandas as pd
import pytest
from jax.experimental.compilation_cache import compilation_cache

from deepcollapse import sweep
from deepcollapse.config import DUFMConfig, NetConfig
from deepcollapse.sweep import RayBackend

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")]

BASE = dict(K=3, n=2, L=2, width=3, steps=40, log_every=20, dtype="float64", seeds=2, lr=0.1)
GRID = {"activation": ["relu", "linear"], "lam_H": [0.01, 0.02, 0.05]}  # 6 points, 2 shapes
CACHE_ENV = {"JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1"}


def six_points():
    return sweep.expand_grid(BASE, GRID)


@pytest.fixture(scope="module")
def ray_instance(tmp_path_factory):
    """One Ray instance for the module: 2 CPUs, no dashboard. The driver and the workers
    share a persistent XLA cache, so equal programs compile once (seconds each on 2 cores)."""
    cache = str(tmp_path_factory.mktemp("xla_cache"))
    options = {"jax_compilation_cache_dir": cache, "jax_persistent_cache_min_compile_time_secs": 0.0,
               "jax_persistent_cache_min_entry_size_bytes": -1}
    old = {k: getattr(jax.config, k) for k in options}
    for k, v in options.items():
        jax.config.update(k, v)
    compilation_cache.reset_cache()
    mp = pytest.MonkeyPatch()
    mp.delenv("RAY_ADDRESS", raising=False)
    env = {"JAX_COMPILATION_CACHE_DIR": cache, **CACHE_ENV}
    ray.init(address=None, num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": env})
    try:
        yield
    finally:
        ray.shutdown()
        mp.undo()
        for k, v in old.items():
            jax.config.update(k, v)
        compilation_cache.reset_cache()


@pytest.fixture(scope="module")
def local_ref(ray_instance, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    report = sweep.run_sweep(six_points(), out, backend="local", progress=False)
    assert report.ran == 6
    return out


def assert_same_points(a, b):
    """Every point of store a is in store b once, with bit-identical numbers."""
    ids = sorted(d.name for d in (a / "points").iterdir())
    assert ids == sorted(d.name for d in (b / "points").iterdir())
    for rid in ids:
        da, db = a / "points" / rid, b / "points" / rid
        assert sorted(f.name for f in db.iterdir() if f.name[0] != ".") == \
            sorted(f.name for f in da.iterdir() if f.name[0] != ".")
        sa, sb = (json.loads((d / "summary.json").read_text()) for d in (da, db))
        assert sa["lanes"] == sb["lanes"]
        pd.testing.assert_frame_equal(pd.read_parquet(da / "history.parquet"), pd.read_parquet(db / "history.parquet"))
        pa, pb = np.load(da / "params.npz"), np.load(db / "params.npz")
        assert sorted(pa.files) == sorted(pb.files)
        for k in pa.files:
            np.testing.assert_array_equal(pa[k], pb[k])


def test_ray_sweep_matches_local(local_ref, tmp_path):
    report = sweep.run_sweep(six_points(), tmp_path, backend="ray", progress=True)
    assert (report.ran, report.skipped, report.failed, report.retried) == (6, 0, 0, 0)
    assert ray.is_initialized()  # the backend used the running instance and left it alone
    assert_same_points(local_ref, tmp_path)


def test_worker_death_is_retried(local_ref, tmp_path):
    """The first worker to finish a training chunk dies (os._exit) while it holds its points' locks;
    the kernel frees them, the group is submitted again and writes every point once."""
    marker = tmp_path / "crashed"

    def crash_once(task, attempt, progress=None):
        def die(*_):
            if not marker.exists():
                marker.touch()
                os._exit(1)

        return sweep.run_group(task, attempt, progress=die)

    out = tmp_path / "out"
    report = sweep.run_sweep(six_points(), out, backend=RayBackend(max_retries=2), progress=False, worker=crash_once)
    assert marker.exists()
    assert report.retried >= 1
    assert (report.ran, report.failed, report.busy) == (6, 0, 0), report.errors
    assert not any(sweep.is_locked(d) for d in (out / "points").iterdir())
    assert_same_points(local_ref, out)


def test_ray_resume_and_own_failures(ray_instance, tmp_path):
    """A sweep run in part, then in full: only the missing points run; a point that fails for its
    own reason is recorded once, not retried."""
    cs = six_points()
    report = sweep.run_sweep(cs[:3], tmp_path, backend="ray", progress=False)
    assert report.ran == 3
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.glob("points/*/summary.json")}
    assert len(mtimes) == 3

    bad = DUFMConfig(**{**BASE, "width": 10**8})  # refused by its memory estimate
    report = sweep.run_sweep([*cs, bad], tmp_path, backend="ray", progress=False)
    assert (report.ran, report.skipped, report.failed, report.retried) == (3, 3, 1, 0)
    assert list(report.errors) == [bad.run_id()] and "GiB" in report.errors[bad.run_id()]
    assert (tmp_path / "points" / bad.run_id() / "error.json").exists()
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())  # not recomputed

    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.glob("points/*/summary.json")}
    report = sweep.run_sweep(cs, tmp_path, backend="ray", progress=False)
    assert (report.ran, report.skipped, report.failed) == (0, 6, 0)
    assert mtimes == {p: p.stat().st_mtime_ns for p in tmp_path.glob("points/*/summary.json")}
    assert len(sweep.load_points(tmp_path)) == 12


def test_network_point_killed_mid_run_resumes_from_its_checkpoint(ray_instance, tmp_path):
    """A network point on Ray whose worker dies after its first checkpoint: the retried task resumes
    there (it trains fewer chunks than the whole run) and the record equals the local one."""
    cfg = NetConfig(dataset="synthetic", synthetic_K=3, n_per_class=3, synthetic_shape=(8, 8, 1), channels=(2, 2, 4),
                    L=2, width=4, batch_size=None, epochs=4, eval_every=1)
    marker, chunks = tmp_path / "crashed", tmp_path / "chunks"
    chunks.mkdir()

    def crash_after_first_chunk(task, attempt, progress=None):
        def hook(step, *_):
            (chunks / f"{attempt}-{step}").touch()
            if not marker.exists():
                marker.touch()
                os._exit(1)

        return sweep.run_group(task, attempt, progress=hook)

    out = tmp_path / "out"
    report = sweep.run_sweep([cfg], out, backend=RayBackend(max_retries=2), progress=False,
                             worker=crash_after_first_chunk)
    assert report.retried == 1 and (report.ran, report.failed) == (1, 0), report.errors
    assert sorted(p.name for p in chunks.iterdir()) == ["0-1", "1-2", "1-3", "1-4"]  # resumed after epoch 1
    local = sweep.run_sweep([cfg], tmp_path / "local", backend="local", progress=False)
    assert local.ran == 1
    assert_same_points(tmp_path / "local", out)
