"""The minimum-norm interpolating deep linear network (theory.interpolant), the delta -> 0 limit of
Zangrando et al.'s Fig. 2: explicit factors, optimality against other interpolants, balance, collapse."""

import numpy as np
import pytest

from deepcollapse import dufm
from deepcollapse.data.gaussian import gaussian_clusters
from deepcollapse.theory.interpolant import (balanced_factors, interpolates, min_norm_interpolant,
                                              min_weight_norm, predicted_singular_values)


@pytest.fixture
def clusters():
    K, n, d = 4, 3, 20
    X, y = gaussian_clusters(K, d, n, 0.2, seed=3)
    return X, dufm.one_hot([n] * K), y, K


def _product(Ws):
    A = Ws[0]
    for W in Ws[1:]:
        A = W @ A
    return A


@pytest.mark.parametrize("L", [1, 2, 3, 5])
def test_balanced_factors_interpolate_at_the_predicted_cost(clusters, L):
    X, Y, _, K = clusters
    A0 = min_norm_interpolant(X, Y)
    Ws = balanced_factors(A0, [7] * (L - 1))
    assert [W.shape for W in Ws] == [(7, 20)] * (L > 1) + [(7, 7)] * max(L - 2, 0) + [(K, 7 if L > 1 else 20)]
    np.testing.assert_allclose(_product(Ws) @ X, Y, atol=1e-10)
    cost = sum(np.sum(W**2) for W in Ws)
    np.testing.assert_allclose(cost, min_weight_norm(X, Y, L), rtol=1e-12)
    s_pred = predicted_singular_values(X, Y, L)
    for W in Ws:
        s = np.linalg.svd(W, compute_uv=False)
        np.testing.assert_allclose(s[:K], s_pred, rtol=1e-10)
        assert np.all(s[K:] < 1e-10)


def test_balanced_factors_are_balanced(clusters):
    """W_{l+1}^T W_{l+1} = W_l W_l^T: the condition every critical point with equal weight decay meets."""
    X, Y, _, _ = clusters
    Ws = balanced_factors(min_norm_interpolant(X, Y), [6, 6, 6])
    for W, V in zip(Ws[:-1], Ws[1:]):
        np.testing.assert_allclose(V.T @ V, W @ W.T, atol=1e-12)


def test_every_other_interpolant_has_larger_singular_values(clusters):
    """A = A0 + C with C X = 0 interpolates too; each singular value of A is >= that of A0 (Weyl),
    so the deep representation cost L sum s^(2/L) is larger for every L."""
    X, Y, _, _ = clusters
    A0 = min_norm_interpolant(X, Y)
    P_null = np.eye(X.shape[0]) - X @ np.linalg.pinv(X)
    rng = np.random.default_rng(0)
    s0 = np.linalg.svd(A0, compute_uv=False)
    for _ in range(20):
        A = A0 + rng.standard_normal(A0.shape) @ P_null * rng.uniform(0.01, 1)
        np.testing.assert_allclose(A @ X, Y, atol=1e-10)
        s = np.linalg.svd(A, compute_uv=False)
        assert np.all(s >= s0 - 1e-12)
        for L in (2, 4):
            assert L * np.sum(s ** (2 / L)) > min_weight_norm(X, Y, L)


def test_gradient_descent_from_random_init_reaches_the_prediction():
    """Small weight decay: gradient descent from a random start ends balanced, at singular values
    s_i(Y X^+)^(1/L) shrunk by O(lam) (the Gamma-limit, module docstring).

    L = 2, d = N (no directions outside the data) and hidden width K, so nothing decays slowly."""
    import jax
    import jax.numpy as jnp

    K, n, d, L, lam, lr = 3, 2, 6, 2, 3e-3, 0.05
    X, _ = gaussian_clusters(K, d, n, 0.3, seed=1)
    Y = dufm.one_hot([n] * K)
    rng = np.random.default_rng(0)
    W0 = [jnp.asarray(rng.standard_normal((K, d)) * 0.5), jnp.asarray(rng.standard_normal((K, K)) * 0.5)]

    def loss(Ws):
        return 0.5 * jnp.sum((Ws[1] @ (Ws[0] @ X) - Y) ** 2) + lam / 2 * sum(jnp.sum(w**2) for w in Ws)

    grad = jax.grad(loss)
    run = jax.jit(lambda W: jax.lax.scan(lambda W, _: ([w - lr * g for w, g in zip(W, grad(W))], None),
                                         W, None, length=40000)[0])
    W = run(W0)
    assert max(float(jnp.abs(g).max()) for g in grad(W)) < 1e-6
    pred = predicted_singular_values(X, Y, L)
    s1, s2 = (np.linalg.svd(np.asarray(w), compute_uv=False) for w in W)
    np.testing.assert_allclose(s1, s2, rtol=1e-5)  # balanced
    assert np.all(s1 < pred) and np.max(1 - s1 / pred) < 3 * lam  # shrunk by O(lam) only
    assert np.max(np.abs(s1 - pred**1.5) / pred) > 10 * lam  # a wrong exponent would be seen


def test_collapse_of_the_intermediate_features(clusters):
    """When X can be interpolated, every layer's features B_l X of the balanced interpolant are
    constant within a class (DNC1, zero TCV)."""
    from deepcollapse import metrics

    X, Y, y, K = clusters
    assert interpolates(X, Y)
    Ws = balanced_factors(min_norm_interpolant(X, Y), [6, 6])
    H = X
    for W in Ws[:-1]:
        H = W @ H
        assert float(metrics.tcv(H, y, K)) < 1e-20 * max(1.0, float(np.sum(H**2)))


def test_not_interpolable_data_and_bad_input():
    X, _ = gaussian_clusters(3, 2, 4, 0.5, seed=0)  # d = 2 < N = 12
    Y = dufm.one_hot([4] * 3)
    assert not interpolates(X, Y)
    assert predicted_singular_values(X, Y, 3).shape == (2,)  # rank(Y X^+) <= d
    with pytest.raises(ValueError, match="L"):
        predicted_singular_values(X, Y, 0)
    with pytest.raises(ValueError, match="columns"):
        min_norm_interpolant(X, Y[:, :5])
    with pytest.raises(ValueError, match="hidden width"):
        balanced_factors(min_norm_interpolant(X, Y), [1])
