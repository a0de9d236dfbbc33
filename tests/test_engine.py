"""The engine on fixed data (an MLP, H_1 = X given, not optimised): the loss is the L-DUFM loss with
H1=X, only the weights move, the data's metrics are logged, and resumption is exact."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from pydantic import ValidationError

from deepcollapse import dufm, metrics
from deepcollapse.config import DUFMConfig, GaussianData
from deepcollapse.data.gaussian import gaussian_clusters
from deepcollapse.engine import Program, dnc_verdict, final_features, input_data
from deepcollapse.train import train

DATA = dict(dim=4, sigma=0.2, mean_scale=2.0, seed=3)
TINY = dict(K=3, n=4, L=3, width=5, lam_H=0.01, lam_W=0.01, lr=0.2, init_scale=0.5,
            steps=40, log_every=20, dtype="float64", data=DATA)


def _X(cfg):
    d = cfg.data
    return gaussian_clusters(cfg.K, d.dim, cfg.n, d.sigma, seed=d.seed, mean_scale=d.mean_scale)[0]


def _hyper(cfg):
    return dufm.hyper(cfg.lam_H, cfg.lam_W, cfg.L)


def test_config_shapes_and_data_matrix():
    cfg = DUFMConfig(**TINY, seeds=1)
    assert cfg.widths == (4, 5, 5) and cfg.hidden_widths == (5, 5)
    assert isinstance(cfg.data, GaussianData)
    np.testing.assert_array_equal(input_data(cfg), _X(cfg))
    assert input_data(DUFMConfig(**(TINY | {"dtype": "float32"}))).dtype == np.float32
    assert input_data(DUFMConfig(K=3, n=2, L=2, width=4)) is None
    params = Program([cfg]).init().params
    assert set(params) == {"W"}
    assert [w.shape[1:] for w in params["W"]] == [(5, 4), (5, 5), (3, 5)]
    one = DUFMConfig(**(TINY | {"L": 1, "lam_W": 0.01}))
    assert one.widths == (4,) and Program([one]).init().params["W"][0].shape[1:] == (3, 4)


def test_logged_loss_equals_dufm_loss_with_data():
    cfg = DUFMConfig(**TINY, seeds=[0, 1])
    res = train(cfg)
    X, Y = jnp.asarray(_X(cfg)), jnp.asarray(dufm.one_hot(cfg.sizes))
    for p in range(2):
        params = jax.tree.map(jnp.asarray, res.lane_params(p))
        total, fit, reg = dufm.loss_terms(params, Y, _hyper(cfg), cfg.activation, cfg.loss, H1=X)
        assert res.logs["loss"][-1, p] == pytest.approx(float(total), rel=1e-12)
        assert res.logs["fit"][-1, p] == pytest.approx(float(fit), rel=1e-12)
        assert float(reg[0]) == 0.0  # no H1 term: lam_H is unused
    # lam_H changes nothing with data
    other = train(DUFMConfig(**(TINY | {"lam_H": 0.5}), seeds=[0, 1]))
    np.testing.assert_array_equal(other.logs["loss"], res.logs["loss"])


def test_one_step_is_gradient_descent_on_weights_only():
    cfg = DUFMConfig(**(TINY | {"steps": 1, "log_every": 1}), seeds=[0])
    prog = Program([cfg])
    W0 = jax.tree.map(lambda a: a[0], prog.init().params)
    res = train(cfg)
    X, Y = jnp.asarray(_X(cfg)), jnp.asarray(dufm.one_hot(cfg.sizes))
    g = jax.grad(dufm.total_loss)(W0, Y, _hyper(cfg), cfg.activation, cfg.loss, X)
    assert set(g) == {"W"} and set(res.lane_params(0)) == {"W"}
    for w0, gw, w1 in zip(W0["W"], g["W"], res.lane_params(0)["W"]):
        assert float(jnp.abs(gw).max()) > 0
        np.testing.assert_allclose(w1, w0 - cfg.lr * gw, rtol=1e-12, atol=1e-15)
    Hs, _ = final_features(res.lane_params(0), cfg)
    np.testing.assert_array_equal(np.asarray(Hs[0]), _X(cfg))  # the data is not changed


def test_sigma_zero_data_has_zero_tcv_and_positive_sigma_matches_direct():
    zero = train(DUFMConfig(**(TINY | {"data": DATA | {"sigma": 0.0}}), seeds=1))
    assert np.all(np.abs(zero.logs["H1/tcv"]) < 1e-20)
    for name in ("H2/tcv", "H3/tcv", "Z3/tcv"):  # collapsed data stays collapsed in every layer
        assert np.all(np.abs(zero.logs[name]) < 1e-20)
    np.testing.assert_allclose(zero.logs["W3/dist_rank_K"], 0.0, atol=1e-12)  # W_L has K rows
    cfg = DUFMConfig(**TINY, seeds=1)
    res = train(cfg)
    want = float(metrics.tcv(_X(cfg), dufm.labels(cfg.sizes), cfg.K))
    assert want > 0
    np.testing.assert_allclose(res.logs["H1/tcv"], want, rtol=1e-12)
    Hs, Zs = dufm.forward(res.lane_params(0), cfg.activation, _X(cfg))
    y = dufm.labels(cfg.sizes)
    assert res.logs["Z3/tcv"][-1, 0] == pytest.approx(float(metrics.tcv(Zs[2], y, 3)), rel=1e-10)
    assert set(dnc_verdict(res.lane_params(0), cfg)["ranks"]) == {"H1", "H2", "H3", "Z"}


def test_short_run_lowers_the_loss():
    res = train(DUFMConfig(**TINY, seeds=2))
    assert np.all(res.logs["loss"][-1] < 0.9 * res.logs["loss"][0])
    np.testing.assert_allclose(res.logs["loss"], res.logs["fit"] + res.logs["reg"], rtol=1e-12)


def test_resume_equals_uninterrupted(tmp_path):
    cfg = DUFMConfig(**TINY, seeds=2)
    full = train(cfg)
    part = train(cfg, out=tmp_path, max_chunks=1)
    assert not part.complete
    resumed = train(cfg, out=tmp_path)
    assert resumed.complete
    np.testing.assert_array_equal(resumed.logs["loss"], full.logs["loss"])
    for a, b in zip(resumed.lane_params(1)["W"], full.lane_params(1)["W"]):
        np.testing.assert_array_equal(a, b)
    again = train(cfg, out=tmp_path)  # read back from the finished folder
    assert set(again.lane_params(0)) == {"W"}
    np.testing.assert_array_equal(again.logs["loss"], full.logs["loss"])


def test_data_is_part_of_the_program_key_and_ids_of_free_features_are_unchanged():
    a = DUFMConfig(**TINY)
    b = DUFMConfig(**(TINY | {"data": DATA | {"seed": 4}}))
    c = DUFMConfig(**(TINY | {"lam_W": 0.02}))
    assert a.shape_key() == c.shape_key() != b.shape_key()
    free = DUFMConfig(K=3, n=2, L=2, width=4)
    assert "data" not in free.model_dump(mode="json", exclude_none=True)
    assert free.run_id() == DUFMConfig(K=3, n=2, L=2, width=4, data=None).run_id()
    assert a.run_id() != b.run_id()


@pytest.mark.parametrize("bad, field", [
    ({"class_sizes": (2, 3, 4), "n": None}, "data"),
    ({"width": 2}, "width"),                       # hidden width < K
    ({"width": (5, 2)}, "width"),                  # one hidden width < K
    ({"width": (5, 5, 5)}, "width"),               # L = 3 needs L-1 = 2 hidden widths
    ({"L": 1, "width": (5,), "lam_W": 0.01}, "width"),  # L = 1 has no hidden widths
    ({"data": DATA | {"dim": 0}}, "dim"),
    ({"data": DATA | {"sigma": -0.1}}, "sigma"),
    ({"data": DATA | {"mean_scale": 0.0}}, "mean_scale"),
    ({"data": DATA | {"kind": "mnist"}}, "kind"),
])
def test_bad_fixed_data_configs(bad, field):
    with pytest.raises(ValidationError, match=field):
        DUFMConfig(**(TINY | bad))


def test_data_dim_below_K_is_allowed():
    cfg = DUFMConfig(**(TINY | {"data": DATA | {"dim": 2}}))
    assert cfg.widths == (2, 5, 5)


# ---- starting at an explicit solution ------------------------------------------------------------
@pytest.mark.parametrize("kw, name", [
    (dict(K=6, n=2, L=3, width=6, activation="relu", loss="mse"), "srg"),
    (dict(K=3, n=2, L=3, width=4, activation="relu", loss="mse"), "dnc"),
    (dict(K=4, n=2, L=2, width=4, activation="linear", loss="ce"), "pairs"),
    (dict(K=4, n=2, L=3, width=4, activation="relu", loss="ce"), "relu-pairs"),
])
def test_start_at_a_construction_logs_its_closed_form_loss(kw, name):
    from deepcollapse.theory.constructions import build

    cfg = DUFMConfig(**kw, lam_H=0.01, lam_W=0.01, lr=0.01, steps=10, log_every=10, seeds=2, dtype="float64",
                     start={"structure": name})
    res = train(cfg)
    con = build(cfg, name)
    np.testing.assert_allclose(res.logs["loss"][0], [con.loss, con.loss], rtol=1e-10)
    # the theory oracle of every summary: the structure it sits at, its loss against L_DNC and the best
    row = res.summary[0]
    from deepcollapse.reference import reference_losses
    from deepcollapse.theory.constructions import known_constructions

    assert row["structure"] == {"srg": "srg(3)" if kw["K"] == 3 else "srg(4)", "dnc": "dnc", "pairs": "pairs",
                                "relu-pairs": "pairs"}[name]
    best = min(b().loss for b in known_constructions(cfg).values())
    assert row["loss_best"] == pytest.approx(best, rel=1e-12)
    assert row["loss_vs_best"] == pytest.approx(row["loss"] / best, rel=1e-12)
    assert row["loss_vs_dnc"] == pytest.approx(row["loss"] / reference_losses(cfg)["L_DNC"], rel=1e-12)
    noisy = train(DUFMConfig(**{**cfg.to_dict(), "start": {"structure": name, "noise": 0.05}}))
    assert noisy.logs["loss"][0, 0] != noisy.logs["loss"][0, 1]  # each seed draws its own noise
    assert abs(noisy.logs["loss"][0, 0] - con.loss) < 0.5 * con.loss


def test_start_names_the_constructions_a_config_has():
    with pytest.raises(ValidationError, match="it has: dnc, srg, srg-balanced, srg-relaxed"):
        DUFMConfig(K=10, n=5, L=4, width=30, start={"structure": "pairs"})
    with pytest.raises(ValidationError, match="it has: dnc$|it has: dnc "):
        DUFMConfig(K=9, n=5, L=4, width=30, start={"structure": "srg"})


@pytest.mark.parametrize("P, devices, group", [(1, 2, 20), (5, 2, 20), (10, 2, 2.77), (10, 2, 0.3), (1000, 2, 22.8),
                                             (7, 1, 3), (3, 4, 8), (9, 2, 4), (11, 3, 2), (299, 7, 1.5)])
def test_lane_groups_cover_every_lane_once_with_even_shares(P, devices, group):
    from deepcollapse.engine import lane_groups

    groups = lane_groups(P, devices, group)
    covered = np.concatenate([np.arange(sl.start, sl.stop) for sl, _ in groups])
    np.testing.assert_array_equal(covered, np.arange(P))  # every lane once, in order, no padding
    sizes = np.array([sl.stop - sl.start for sl, _ in groups])
    dev = np.array([d for _, d in groups])
    assert sizes.min() >= 1 and sizes.max() <= max(1, np.ceil(group))
    assert np.all(np.diff(dev) >= 0)  # a device's lanes are consecutive
    share = np.bincount(dev, weights=sizes, minlength=devices)
    assert share.max() - share.min() <= 1  # every core has the same work, to one lane
    m = int(np.ceil(share.max() / group))  # groups of the largest share, for a mean size <= group
    for d in range(devices):
        mine = sizes[dev == d]
        assert len(mine) == min(int(share[d]), m)
        assert len(mine) == 0 or mine.max() - mine.min() <= 1
    assert len(set(sizes.tolist())) <= 2  # at most two compiled chunk programs


def test_lane_groups_refuses_empty_inputs():
    from deepcollapse.engine import lane_groups

    for bad in [(0, 2, 2), (4, 0, 2), (4, 2, 0.0)]:
        with pytest.raises(ValueError, match="need P, n_devices >= 1 and group > 0"):
            lane_groups(*bad)


def test_group_size_follows_the_memory_of_a_lane():
    """Lanes per CPU group: the budget over `lane_bytes`, which is `planned_bytes` per lane."""
    from deepcollapse.engine import (
        GROUP_BYTES_CPU,
        group_size,
        lane_bytes,
        planned_bytes,
    )

    small, large = DUFMConfig(K=10, n=5, L=4, width=30), DUFMConfig(K=10, n=50, L=4, width=30)
    for c in (small, large):
        assert planned_bytes(c, 7) - planned_bytes(c, 6) == lane_bytes(c)
        assert group_size(c) == GROUP_BYTES_CPU / lane_bytes(c)
    # n = 5: H_1 30 x 50 and W 3 x 30 x 30 + 10 x 30, three copies, 5 N sum(dims) features; float32
    assert lane_bytes(small) == 4 * (3 * (30 * 50 + 3 * 900 + 300) + 5 * 50 * 130)
    assert group_size(small) > group_size(large) >= 1
    assert group_size(DUFMConfig(K=10, n=50, L=4, width=256)) < 1  # a lane over the budget: groups of one


@pytest.mark.parametrize("kw", [dict(TINY), TINY | {"data": None}, TINY | {"data": None, "residual": True},
                                TINY | {"data": None, "activation": "linear", "class_sizes": [2, 5, 3]}])
def test_class_means_of_every_lane_in_one_program_equal_each_lane_alone(kw):
    """`lanes_class_means` (one vmapped program, used by every run's summary and the census) gives
    each lane's `final_class_means` (its own forward pass): fixed data, free features, residual,
    imbalanced linear."""
    from deepcollapse.engine import final_class_means, lanes_class_means
    from deepcollapse.results import unflatten_params

    kw = {k: v for k, v in kw.items() if not (k == "n" and "class_sizes" in kw)}
    res = train(DUFMConfig(**kw, seeds=3))
    every = lanes_class_means(unflatten_params(res.params), res.configs[0])
    for p in range(3):
        alone = final_class_means(res.lane_params(p), res.configs[0])
        assert set(alone) == set(every)
        for k, M in alone.items():
            np.testing.assert_allclose(every[k][p], M, rtol=1e-12, atol=1e-14)
        assert np.abs(alone["Z3"]).max() > 0  # a trained lane, not zeros
