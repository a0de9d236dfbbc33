"""Streamed class statistics equal the metrics computed on all features at once."""

import jax.numpy as jnp
import numpy as np
import pytest

from deepcollapse import metrics
from deepcollapse.stats import StreamStats, stream_summary


def _features(seed, d=6, K=4, sizes=(3, 5, 4, 6)):
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat(np.arange(K), sizes))
    H = rng.standard_normal((d, y.size)) + 3 * rng.standard_normal((d, K))[:, y] + 1.0
    return H, y


@pytest.mark.parametrize("seed", [0, 1])
def test_streamed_summary_equals_all_at_once(seed):
    H, y = _features(seed)
    d, K = H.shape[0], 4
    st = StreamStats.zeros(d, K)
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
    st = StreamStats.zeros(K, K).accumulate(jnp.asarray(H[:, :5]), jnp.asarray(y[:5]))
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
