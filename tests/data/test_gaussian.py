import numpy as np
import pytest

from deepcollapse.data import cluster_means, gaussian_clusters


def test_layout_and_determinism():
    X, y = gaussian_clusters(K=10, d=5, n=3, sigma=0.1, seed=7)
    assert X.shape == (5, 30) and X.dtype == np.float64
    np.testing.assert_array_equal(y, np.repeat(np.arange(10), 3))
    X2, y2 = gaussian_clusters(K=10, d=5, n=3, sigma=0.1, seed=7)
    np.testing.assert_array_equal(X, X2)
    X3, _ = gaussian_clusters(K=10, d=5, n=3, sigma=0.1, seed=8)
    assert not np.allclose(X, X3)
    assert gaussian_clusters(2, 3, 4, 0.5, dtype=np.float32)[0].dtype == np.float32


def test_sigma_zero_gives_the_means():
    M = cluster_means(K=4, d=6, mean_scale=3.0, seed=2)
    np.testing.assert_allclose(np.linalg.norm(M, axis=0), 3.0, rtol=1e-12)
    X, y = gaussian_clusters(K=4, d=6, n=5, sigma=0.0, seed=2, mean_scale=3.0)
    np.testing.assert_array_equal(X, M[:, y])


def test_within_class_statistics():
    K, d, n, sigma = 3, 40, 2000, 0.7
    means = np.arange(d * K, dtype=float).reshape(d, K) / 10
    X, y = gaussian_clusters(K, d, n, sigma, seed=0, means=means)
    for k in range(K):
        Xk = X[:, y == k]
        # class mean within 5 standard errors sigma / sqrt(n) of the centre, in every coordinate
        assert np.max(np.abs(Xk.mean(1) - means[:, k])) < 5 * sigma / np.sqrt(n)
        # pooled within-class std; relative standard error 1/sqrt(2 d n) = 0.25%
        resid = Xk - means[:, [k]]
        assert abs(resid.std() - sigma) < 0.02 * sigma
    # the noise is shared across calls with the same seed, whatever the means
    X0, _ = gaussian_clusters(K, d, n, sigma, seed=0, means=np.zeros((d, K)))
    np.testing.assert_allclose(X - means[:, y], X0, atol=1e-12)


def test_bad_arguments():
    with pytest.raises(ValueError, match="K must"):
        gaussian_clusters(0, 2, 2, 0.1)
    with pytest.raises(ValueError, match="n "):
        gaussian_clusters(2, 2, 0, 0.1)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_clusters(2, 2, 2, -1.0)
    with pytest.raises(ValueError, match=r"means must be d x K = \(2, 3\)"):
        gaussian_clusters(3, 2, 2, 0.1, means=np.zeros((3, 2)))
