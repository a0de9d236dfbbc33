"""Streamed class statistics equal the metrics computed on all features at once."""

import itertools

import jax.numpy as jnp
import numpy as np
import pytest

from deepcollapse import metrics
from deepcollapse.stats import (
    METRIC_KEYS,
    StreamStats,
    accumulate_rows,
    cdnv,
    collapse_metrics,
    stream_summary,
)


def _features(seed, d=6, K=4, sizes=(3, 5, 4, 6)):
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat(np.arange(K), sizes))
    H = rng.standard_normal((d, y.size)) + 3 * rng.standard_normal((d, K))[:, y] + 1.0
    return H, y


@pytest.mark.parametrize("seed", [0, 1])
def test_streamed_summary_equals_all_at_once(seed):
    H, y = _features(seed)
    d, K = H.shape[0], 4
    st = StreamStats.zeros(d, K, covariance=True)
    for sl in (slice(0, 5), slice(5, 6), slice(6, 13), slice(13, None)):
        st = st.accumulate(jnp.asarray(H[:, sl]), jnp.asarray(y[sl]))
    # a padded batch (labels -1) must change nothing
    st = st.accumulate(jnp.asarray(np.full((d, 3), 7.0)), jnp.asarray([-1, -1, -1]))
    fin = st.finalize()
    Hj, yj = jnp.asarray(H), jnp.asarray(y)
    np.testing.assert_allclose(fin.means, metrics.class_means(Hj, yj, K), rtol=1e-12)
    np.testing.assert_allclose(fin.sigma_W, metrics.within_class_cov(Hj, yj, K), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fin.sigma_B, metrics.between_class_cov(Hj, yj, K), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(fin.counts, np.bincount(y))
    got = stream_summary(fin, feature_dtype=jnp.float64)
    want = metrics.layer_summary(Hj, yj, K)
    for k in metrics.SUMMARY_KEYS:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-9, err_msg=k)
    np.testing.assert_allclose(got["singular_values"], metrics.singular_values(metrics.class_means(Hj, yj, K)),
                               rtol=1e-10)


def test_collapsed_features_give_zero_within_variation():
    """Every sample at its class mean: Sigma_W = 0, TCV = 0, NC1 = 0, rank = K (orthogonal means)."""
    K, n = 3, 4
    y = np.repeat(np.arange(K), n)
    H = 2.0 * np.eye(K)[:, y]
    st = StreamStats.zeros(K, K, covariance=True).accumulate(jnp.asarray(H[:, :5]), jnp.asarray(y[:5]))
    st = st.accumulate(jnp.asarray(H[:, 5:]), jnp.asarray(y[5:]))
    s = stream_summary(st.finalize(), feature_dtype=jnp.float64)
    assert abs(float(s["tcv"])) < 1e-12 and abs(float(s["nc1"])) < 1e-12
    assert int(s["rank_means"]) == K
    np.testing.assert_allclose(s["singular_values"], [2.0, 2.0, 2.0], rtol=1e-12)
    assert float(s["nc2_orth"]) < 1e-12


def test_bad_shapes():
    st = StreamStats.zeros(3, 2)
    with pytest.raises(ValueError, match="F must be"):
        st.accumulate(jnp.zeros((4, 5)), jnp.zeros(5, jnp.int32))
    with pytest.raises(ValueError, match="one label per column"):
        st.accumulate(jnp.zeros((3, 5)), jnp.zeros(4, jnp.int32))


def _stream(H, y, K, covariance, cuts=(0, 5, 6, 13, None)):
    st = StreamStats.zeros(H.shape[0], K, covariance=covariance)
    for a, b in itertools.pairwise(cuts):
        st = st.accumulate(jnp.asarray(H[:, a:b]), jnp.asarray(y[a:b]))
    return st


@pytest.mark.parametrize("seed", [0, 3])
def test_without_covariance_the_trace_metrics_agree_and_nc1_is_nan(seed):
    """Without the d x d second moment every trace quantity equals the full statistics' (and the
    all-at-once metrics), NC1 and the feature ranks are nan, and no d x d array is held."""
    H, y = _features(seed)
    K = 4
    full = collapse_metrics(_stream(H, y, K, True).finalize(), feature_dtype=jnp.float64)
    st = _stream(H, y, K, False)
    assert st.second_moment is None
    fin = st.finalize()
    assert fin.sigma_W is None
    lean = collapse_metrics(fin, feature_dtype=jnp.float64)
    for k in ("dnc1", "nc1_cdnv", "tcv", "tcv_norm", "nc2_etf", "nc2_orth", "rank_means", "rank_centred_means"):
        np.testing.assert_allclose(lean[k], full[k], rtol=1e-11, err_msg=k)
    for k in ("nc1", "nc1_sum", "rank_features", "dist_rank_K"):
        assert np.isnan(float(lean[k])), k
    Hj, yj = jnp.asarray(H), jnp.asarray(y)
    np.testing.assert_allclose(full["dnc1"], metrics.nc1_trace_ratio(Hj, yj, K), rtol=1e-10)
    np.testing.assert_allclose(full["nc1"], metrics.nc1(Hj, yj, K), rtol=1e-9)
    np.testing.assert_allclose(full["nc1_sum"], K * metrics.nc1(Hj, yj, K), rtol=1e-9)
    # features' singular values and distance to rank K from Q = H H^T
    s = np.linalg.svd(H, compute_uv=False)
    np.testing.assert_allclose(full["feature_singular_values"], s, rtol=1e-9)
    np.testing.assert_allclose(full["dist_rank_K"], np.sum(s[K:] ** 2) / np.sum(s**2), rtol=1e-9)
    assert int(full["rank_features"]) == int(np.sum(s > 1e-3 * s[0]))


def test_cdnv_closed_form():
    """Two classes at +-a e_1 with per-class spread +-b e_2: sigma_k^2 = b^2, ||mu_1 - mu_2||^2 = 4a^2,
    CDNV = (b^2 + b^2) / (2 * 4 a^2) = b^2 / (4 a^2)."""
    a, b = 2.0, 0.5
    H = np.array([[a, a, -a, -a], [b, -b, b, -b]])
    y = np.array([0, 0, 1, 1])
    st = StreamStats.zeros(2, 2).accumulate(jnp.asarray(H), jnp.asarray(y)).finalize()
    np.testing.assert_allclose(st.class_var, [b**2, b**2], rtol=1e-14)
    np.testing.assert_allclose(cdnv(st), b**2 / (4 * a**2), rtol=1e-14)


def test_nc3_with_a_self_dual_classifier_is_zero_and_keys_complete():
    H, y = _features(5)
    K = 4
    fin = _stream(H, y, K, False).finalize()
    Mc = np.asarray(fin.means) - np.asarray(fin.means).mean(axis=1, keepdims=True)
    m = collapse_metrics(fin, W=3.0 * Mc.T, feature_dtype=jnp.float64)
    assert abs(float(m["nc3"])) < 1e-12
    assert set(METRIC_KEYS) <= set(m)
    assert np.isnan(float(collapse_metrics(fin)["nc3"]))


def test_accumulate_rows_equals_columns():
    """The jitted rows-layout accumulation of two layers equals `accumulate` on the transposes."""
    H, y = _features(2)
    G = np.tanh(H[:3])
    K = 4
    stats = (StreamStats.zeros(6, K, covariance=True), StreamStats.zeros(3, K))
    for a, b in ((0, 7), (7, None)):
        stats = accumulate_rows(stats, (jnp.asarray(H[:, a:b].T), jnp.asarray(G[:, a:b].T)), jnp.asarray(y[a:b]))
    ref = (_stream(H, y, K, True, (0, None)), _stream(G, y, K, False, (0, None)))
    for s, r in zip(stats, ref):
        for a, b in zip(s, r):
            if a is None:
                assert b is None
            else:
                np.testing.assert_allclose(a, b, rtol=1e-12)


def test_stream_batches_of_any_framework_equal_all_at_once():
    """Feature batches as rows from any framework (here NumPy and JAX) give the all-at-once metrics;
    covariance='auto' keeps Q for small layers; bad batches are refused."""
    from deepcollapse.stats import stream_batches

    H, y = _features(4)
    G = np.maximum(H[:2] - 1.0, 0.0)
    K = 4
    batches = [({"h": H[:, a:b].T, "g": jnp.asarray(G[:, a:b].T)}, y[a:b]) for a, b in ((0, 9), (9, None))]
    ms = stream_batches(batches, K)
    assert list(ms.layers) == ["h", "g"] and ms.info["N"] == y.size
    assert ms.info["covariance"] == {"h": True, "g": True}
    got = ms.metrics()
    for name, F in (("h", H), ("g", G)):
        want = metrics.layer_summary(F, y, K)
        np.testing.assert_allclose(got[name]["nc1"], want["nc1"], rtol=1e-9)
        np.testing.assert_allclose(got[name]["dnc1"], want["nc1_trace"], rtol=1e-9)
    lean = stream_batches(batches, K, covariance=False)
    assert lean.layers["h"].second_moment is None
    with pytest.raises(ValueError, match="every batch must hold"):
        stream_batches([({"h": H[:, :3].T}, y[:3]), ({"x": H[:, 3:6].T}, y[3:6])], K)
    with pytest.raises(ValueError, match="labels must lie in"):
        stream_batches([({"h": H[:, :3].T}, np.array([0, 1, 4]))], K)
    with pytest.raises(ValueError, match="no batches"):
        stream_batches([], K)


@pytest.mark.parametrize("seed", [0, 6])
def test_projected_second_moment_gives_the_exact_nc1(seed):
    """A second pass that keeps only P^T Q P, P a basis of the class means' span (r <= K), gives the
    NC1 of the full d x d statistics: every u_j of Sigma_B^+ lies in span(P)."""
    from deepcollapse.stats import projection_basis

    H, y = _features(seed, d=11)
    K = 4
    full = _stream(H, y, K, True).finalize()
    P = projection_basis(_stream(H, y, K, False).finalize())
    assert P.shape == (11, K)
    np.testing.assert_allclose(P.T @ P, np.eye(K), atol=1e-12)
    st = StreamStats.zeros(11, K, basis=P)
    for a, b in ((0, 4), (4, None)):
        st = st.accumulate(jnp.asarray(H[:, a:b]), jnp.asarray(y[a:b]))
    assert st.second_moment.shape == (K, K)
    proj = collapse_metrics(st.finalize(), feature_dtype=jnp.float64)
    want = collapse_metrics(full, feature_dtype=jnp.float64)
    np.testing.assert_allclose(proj["nc1"], want["nc1"], rtol=1e-10)
    np.testing.assert_allclose(proj["dnc1"], want["dnc1"], rtol=1e-12)
    assert np.isnan(float(proj["rank_features"]))
    with pytest.raises(ValueError, match="basis must be d x r"):
        StreamStats.zeros(5, K, basis=P)


@pytest.mark.slow
def test_a_flax_model_streamed_through_stream_batches_equals_the_networks_own_metric_pass():
    """One statistics type for every model: the project's Flax NNX network, its features fed batch by
    batch to `stream_batches` as a user's Flax model would be, gives the numbers of `nets.train.evaluate`."""
    pytest.importorskip("flax")
    from flax import nnx

    from deepcollapse.nets import NetConfig, build_net, load_data
    from deepcollapse.nets.train import evaluate, layer_names, make_eval_batch
    from deepcollapse.stats import stream_batches

    cfg = NetConfig(dataset="synthetic", synthetic_K=3, n_per_class=5, synthetic_shape=(8, 8, 1), channels=(4, 4, 8),
                    L=2, width=6, batch_size=None, eval_batch_size=5)
    ds = load_data(cfg)
    model = build_net(cfg, 1, 3, seed=0)
    graphdef, params, bstats = nnx.split(model, nnx.Param, nnx.BatchStat)
    x, y = jnp.asarray(ds.x), jnp.asarray(ds.y)
    own = evaluate(model, graphdef, params, bstats, x, y, cfg, make_eval_batch(graphdef, cfg))["layers"]
    names = layer_names(2)

    import jax

    @jax.jit
    def features(xb):  # rows = samples, as a user's Flax model would return them
        Hs, Zs = nnx.merge(graphdef, params, bstats).features(xb, train=False)
        return [F.T for F in list(Hs) + list(Zs)]

    def batches():
        for s in range(0, len(ds), 5):
            yield dict(zip(names, features(x[s:s + 5]))), ds.y[s:s + 5]

    got = stream_batches(batches(), 3).metrics(cfg.rank_rtol)
    for name in names:
        for ours, theirs in (("nc1", "nc1"), ("dnc1", "nc1_trace"), ("tcv", "tcv"), ("nc2_etf", "nc2_etf")):
            np.testing.assert_allclose(got[name][ours], own[name][theirs], rtol=1e-5, err_msg=f"{name} {ours}")
        assert int(got[name]["rank_means"]) == int(own[name]["rank_means"])
