"""The training engine: lanes of one program equal separate runs, resume equals uninterrupted,
divergence is recorded, and the history table is tidy."""

import json

import numpy as np
import pytest

from deepcollapse import metrics
from deepcollapse.config import DUFMConfig
from deepcollapse.engine import layer_names
from deepcollapse.train import train

TINY = dict(K=3, n=2, L=2, width=4, lam_H=0.01, lam_W=0.01, lr=0.3, init_scale=0.5,
            steps=60, log_every=20, dtype="float64")


def _same(a, b):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_vmapped_seeds_equal_separate_runs():
    together = train(DUFMConfig(**TINY, seeds=[0, 1, 2]))
    for p, seed in enumerate([0, 1, 2]):
        alone = train(DUFMConfig(**TINY, seeds=[seed]))
        np.testing.assert_allclose(together.logs["loss"][:, p], alone.logs["loss"][:, 0], rtol=1e-12)
        for a, b in zip(together.lane_params(p)["W"], alone.lane_params(0)["W"]):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_hyperparameter_lanes_equal_separate_runs():
    cfgs = [DUFMConfig(**(TINY | {"lam_H": lam, "lr": lr}), seeds=[0]) for lam, lr in [(0.01, 0.3), (0.05, 0.1)]]
    assert len({c.shape_key() for c in cfgs}) == 1
    together = train(cfgs)
    for i, c in enumerate(cfgs):
        alone = train(c)
        np.testing.assert_allclose(together.logs["loss"][:, i], alone.logs["loss"][:, 0], rtol=1e-12)


def test_loss_decreases_and_logs_are_complete():
    res = train(DUFMConfig(**TINY, seeds=2))
    assert res.logs["loss"].shape == (4, 2)  # steps 0, 20, 40, 60
    assert np.all(res.logs["loss"][-1] < res.logs["loss"][0])
    np.testing.assert_allclose(res.logs["loss"], res.logs["fit"] + res.logs["reg"], rtol=1e-12)
    df = res.history()
    n_metrics = len(metrics.SUMMARY_KEYS) * len(layer_names(2)) + len(metrics.WEIGHT_KEYS) * 2 + 3
    assert len(df) == 4 * 2 * n_metrics
    assert set(df.columns) >= {"step", "lane", "seed", "layer", "metric", "value", "run_id"}


def test_logged_metric_equals_direct_computation():
    res = train(DUFMConfig(**TINY, seeds=1))
    from deepcollapse import dufm

    Hs, Zs = dufm.forward(res.lane_params(0), "relu")
    y = dufm.labels([2, 2, 2])
    assert res.logs["H2/nc1_trace"][-1, 0] == pytest.approx(float(metrics.nc1_trace_ratio(Hs[1], y, 3)), rel=1e-10)
    assert res.logs["Z2/tcv"][-1, 0] == pytest.approx(float(metrics.tcv(Zs[1], y, 3)), rel=1e-10)
    for l, W in enumerate(res.lane_params(0)["W"], start=1):  # weights: against NumPy's SVD
        s = np.linalg.svd(np.asarray(W, np.float64), compute_uv=False)
        assert res.logs[f"W{l}/dist_rank_K"][-1, 0] == pytest.approx(np.sum(s[3:] ** 2) / np.sum(s**2), rel=1e-8, abs=1e-14)
        assert res.logs[f"W{l}/norm"][-1, 0] == pytest.approx(np.sqrt(np.sum(s**2)), rel=1e-10)
        assert res.logs[f"W{l}/rank"][-1, 0] == np.sum(s > 1e-3 * s[0])


def test_resume_equals_uninterrupted(tmp_path):
    cfg = DUFMConfig(**TINY, seeds=2)
    full = train(cfg)
    part = train(cfg, out=tmp_path, max_chunks=1)
    assert not part.complete and (tmp_path / cfg.run_id() / "checkpoint.npz").exists()
    resumed = train(cfg, out=tmp_path)
    assert resumed.complete and not (tmp_path / cfg.run_id() / "checkpoint.npz").exists()
    _same(resumed.logs["loss"], full.logs["loss"])
    for a, b in zip(resumed.lane_params(1)["W"], full.lane_params(1)["W"]):
        _same(a, b)
    for name in ["config.yaml", "history.parquet", "history.csv", "params.npz", "summary.json"]:
        assert (tmp_path / cfg.run_id() / name).exists()


def test_divergence_is_recorded_and_other_lanes_go_on():
    cfgs = [DUFMConfig(**(TINY | {"lr": lr}), seeds=[0]) for lr in (0.3, 1e6)]
    res = train(cfgs)
    assert res.diverged_at[0] == -1 and res.diverged_at[1] >= 0
    assert np.isnan(res.logs["loss"][-1, 1]) and np.isfinite(res.logs["loss"][-1, 0])
    rows = res.summary
    assert rows[1]["diverged"] and rows[1]["loss"] is None and rows[1]["found_dnc"] is None
    assert not rows[0]["diverged"] and rows[0]["loss"] is not None


def test_optax_optimizer_by_name():
    res = train(DUFMConfig(**(TINY | {"lr": 0.05}), seeds=1, optimizer={"name": "adam", "kwargs": {"b1": 0.8}}))
    assert res.logs["loss"][-1, 0] < res.logs["loss"][0, 0]


def test_summary_ranks_of_low_rank_and_dnc_runs():
    """A run started at the constructed DNC solution stays there and is judged DNC."""

    from deepcollapse.theory.mse import dnc_solution
    from deepcollapse.train import dnc_verdict

    cfg = DUFMConfig(K=3, n=2, L=3, width=4, lam_H=0.01, lam_W=0.01, steps=10, log_every=10, seeds=1,
                     dtype="float64")
    con = dnc_solution(3, 3, [4, 4, 4], [2, 2, 2], 0.01, 0.01)
    v = dnc_verdict(con.params, cfg)
    assert v["found_dnc"] and set(v["ranks"].values()) == {3}
    low = {"H1": con.params["H1"], "W": list(con.params["W"])}
    low["H1"] = np.asarray(low["H1"]).copy()
    low["H1"][:, 4:] = low["H1"][:, :1]  # class 3 collapses onto class 1: rank 2
    v2 = dnc_verdict(low, cfg)
    assert not v2["found_dnc"] and v2["ranks"]["H1"] == 2


def test_finished_run_is_read_back_not_recomputed(tmp_path, monkeypatch):
    from deepcollapse import engine as T

    cfg = DUFMConfig(**TINY, seeds=2)
    first = train(cfg, out=tmp_path)
    monkeypatch.setattr(T.Program, "chunk", lambda *a: (_ for _ in ()).throw(AssertionError("recomputed")))
    again = train(cfg, out=tmp_path)
    _same(again.logs["loss"], first.logs["loss"])
    _same(again.logs["H2/rank_means"], first.logs["H2/rank_means"])
    for a, b in zip(again.lane_params(1)["W"], first.lane_params(1)["W"]):
        _same(a, b)
    assert again.summary == json.loads(json.dumps(first.summary))


# ---- convergence ---------------------------------------------------------------------------------
def test_converged_at_on_constructed_histories():
    from deepcollapse.config import Convergence
    from deepcollapse.train import converged_at

    steps = np.arange(0, 1100, 100)
    flat_after_500 = np.r_[np.linspace(2.0, 1.0, 6), np.full(5, 1.0)]
    slow = 1.0 + 1e-3 * (10 - np.arange(11))  # keeps moving by 1e-3 per 100 steps
    nan = np.full(11, np.nan)
    loss = np.stack([flat_after_500, slow, nan], axis=1)
    got = converged_at(steps, loss, Convergence(rtol=1e-6, window=200), total_steps=1000)
    assert got.tolist() == [700, -1, -1]  # 700 - 200 = 500, the first flat pair
    assert converged_at(steps, loss, Convergence(rtol=2.5e-3, window=200), 1000).tolist() == [700, 200, -1]
    acc = np.stack([np.r_[np.zeros(8), np.ones(3)]] * 3, axis=1)
    crit = Convergence(rtol=1e-6, window=200, min_accuracy=0.99)
    assert converged_at(steps, loss, crit, 1000, accuracy=acc).tolist() == [800, -1, -1]
    # default window: a tenth of the steps, at least one logged interval
    assert converged_at(steps, loss, Convergence(rtol=1e-6), 1000).tolist() == [600, -1, -1]


def test_a_run_stops_on_its_criterion_and_resumes_the_same(tmp_path):
    crit = {"rtol": 1e-3, "window": 200}
    cfg = DUFMConfig(**(TINY | {"steps": 4000, "log_every": 100, "converge": crit}), seeds=2)
    res = train(cfg)
    assert res.complete and res.steps[-1] < 4000
    last = res.steps[-1]
    assert max(r["converged_at"] for r in res.summary) == last and all(r["converged"] for r in res.summary)
    loss = res.logs["loss"]
    for r in res.summary:  # the criterion holds at converged_at and not one logged step before
        t = list(res.steps).index(r["converged_at"])
        assert abs(loss[t, r["lane"]] - loss[t - 2, r["lane"]]) <= 1e-3 * abs(loss[t, r["lane"]])
    part = train(cfg, out=tmp_path, max_chunks=3)
    assert not part.complete
    again = train(cfg, out=tmp_path)
    _same(again.logs["loss"], res.logs["loss"])
    assert [r["converged_at"] for r in again.summary] == [r["converged_at"] for r in res.summary]
    # without the criterion the run goes on to the cap and still says when it converged (default rule)
    plain = train(DUFMConfig(**(TINY | {"steps": 4000, "log_every": 100}), seeds=2))
    assert plain.steps[-1] == 4000 and all(isinstance(r["converged"], bool) for r in plain.summary)
    _same(plain.logs["loss"][: len(res.steps)], res.logs["loss"])
    assert cfg.run_id() != plain.configs[0].run_id()


def test_lanes_split_across_cpu_devices_give_the_numbers_of_one_device(tmp_path):
    """The lanes of one program in groups spread over the CPU devices (one per core,
    `engine.lane_devices`; here groups of 3, the last one padded) give the losses and parameters of
    the same program on one device (DEEPCOLLAPSE_CPU_DEVICES=1: one group of 5), in a fresh process
    since the device count is fixed when JAX starts."""
    import os
    import subprocess
    import sys

    import jax

    cfg = DUFMConfig(**TINY, seeds=[0, 1, 2, 3, 4])  # odd: shares of 2 and 3 lanes
    split = train(cfg, out=tmp_path / "split")
    code = ("import sys, deepcollapse, jax; from deepcollapse.config import DUFMConfig; "
            "from deepcollapse.train import train; assert len(jax.devices()) == 1; "
            f"train(DUFMConfig(**{TINY!r}, seeds=[0, 1, 2, 3, 4]), out=sys.argv[1])")
    env = dict(os.environ, DEEPCOLLAPSE_CPU_DEVICES="1")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "one")], env=env, check=True)
    from deepcollapse.results import load_run

    one = load_run(tmp_path / "one" / cfg.run_id())
    if jax.devices()[0].platform == "cpu" and len(jax.devices()) > 1:
        from deepcollapse.engine import Program

        groups = Program([cfg])._groups  # this process did split the lanes over its devices
        assert len({dev for _, dev in groups}) > 1
    np.testing.assert_allclose(split.logs["loss"], one.logs["loss"], rtol=1e-12)
    for p in range(5):
        for a, b in zip(split.lane_params(p)["W"], one.lane_params(p)["W"]):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
