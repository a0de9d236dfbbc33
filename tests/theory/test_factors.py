"""Reduced loss and balanced factors of the deep linear UFM (Garrod & Keating, Lemma 1)."""

import jax.numpy as jnp
import numpy as np
import pytest

from deepcollapse import dufm
from deepcollapse.theory.factors import (
    balanced_factors,
    fit_ce_np,
    lam_geo,
    product,
    reduced_loss,
)


def _full_loss(params, Y, L, lam_H, lam_W, loss):
    p = {"H1": jnp.asarray(params["H1"]), "W": tuple(jnp.asarray(w) for w in params["W"])}
    total, fit, reg = dufm.loss_terms(p, jnp.asarray(Y), dufm.hyper(lam_H, lam_W, L), "linear", loss)
    return float(total), float(fit), np.asarray(reg)


def _low_rank(K, N, r, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(K, r)) @ rng.normal(size=(r, N))


@pytest.mark.parametrize("loss", ["ce", "mse"])
@pytest.mark.parametrize(
    "L,widths,lam_W",
    [(1, [3], 0.02), (2, [4, 3], 0.01), (3, [5, 3, 6], [0.01, 0.03, 0.002]), (4, [3, 3, 3, 3], 0.005)],
)
def test_balanced_factors_realise_Z_and_reduced_loss(loss, L, widths, lam_W):
    K, sizes = 4, [2, 3, 1, 2]
    Y = dufm.one_hot(sizes)
    Z = _low_rank(K, Y.shape[1], 3, seed=L)
    lam_H = 0.03
    params = balanced_factors(Z, L, widths, lam_H, lam_W)
    assert params["H1"].shape == (widths[0], Y.shape[1])
    assert [w.shape for w in params["W"]] == [(d2, d1) for d1, d2 in zip(widths, list(widths[1:]) + [K])]
    np.testing.assert_allclose(product(params), Z, atol=1e-12)
    total, _, reg = _full_loss(params, Y, L, lam_H, lam_W, loss)
    np.testing.assert_allclose(total, reduced_loss(Z, Y, L, lam_H, lam_W, loss=loss), rtol=1e-10)
    # Lemma 1 balance: every factor carries the same regularisation lam_geo/2 sum_i s_i^(2/(L+1)).
    s = np.linalg.svd(Z, compute_uv=False)[:3]
    per_factor = 0.5 * lam_geo(lam_H, lam_W, L) * np.sum(s ** (2 / (L + 1)))
    np.testing.assert_allclose(reg, per_factor, rtol=1e-10)


def test_reduced_loss_is_a_lower_bound_for_unbalanced_factors():
    """Rescaling factors (same product) can only raise the regularisation (AM-GM, Lemma 1)."""
    K, L, lam = 3, 3, 0.01
    Y = dufm.one_hot([2, 2, 2])
    Z = _low_rank(K, 6, 2, seed=7)
    params = balanced_factors(Z, L, 3, lam, lam)
    c = [2.0, 0.5, 1.5, 1 / 1.5]
    skew = {"H1": c[0] * params["H1"], "W": tuple(ci * w for ci, w in zip(c[1:], params["W"]))}
    np.testing.assert_allclose(product(skew), Z, atol=1e-12)
    assert _full_loss(skew, Y, L, lam, lam, "ce")[0] > reduced_loss(Z, Y, L, lam, lam) + 1e-4


def test_reduced_loss_closed_form_dnc():
    """Z = s (I - 11^T/K) kron 1_n^T: fit log(1+(K-1)e^{-s}), singular values s sqrt(n) (K-1 times)."""
    K, n, L, lam, s = 5, 3, 2, 0.01, 1.7
    Z = np.kron(s * (np.eye(K) - 1 / K), np.ones((1, n)))
    Y = dufm.one_hot([n] * K)
    expect = np.log1p((K - 1) * np.exp(-s)) + 1.5 * lam * (K - 1) * (np.sqrt(n) * s) ** (2 / 3)
    np.testing.assert_allclose(reduced_loss(Z, Y, L, lam, lam), expect, rtol=1e-12)


def test_fit_ce_accurate_for_tiny_losses():
    """At scale 60 the CE fit is ~(K-1) e^{-60} ~ 3e-26; a naive logsumexp would return 0."""
    K, s = 4, 60.0
    Z = s * (np.eye(K) - 1 / K)
    np.testing.assert_allclose(fit_ce_np(Z, np.eye(K)), (K - 1) * np.exp(-s), rtol=1e-12)
    Z3 = np.random.default_rng(1).normal(size=(K, 7))
    Y3 = np.eye(K)[:, [0, 1, 2, 3, 0, 1, 2]]
    np.testing.assert_allclose(fit_ce_np(Z3, Y3), float(dufm.fit_ce(jnp.asarray(Z3), jnp.asarray(Y3))), rtol=1e-12)


def test_bad_input():
    Z = _low_rank(3, 4, 2, seed=0)
    with pytest.raises(ValueError, match="widths"):
        balanced_factors(Z, 2, [1, 3], 0.1, 0.1)
    with pytest.raises(ValueError, match="lam_W"):
        balanced_factors(Z, 2, 3, 0.1, [0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match="> 0"):
        balanced_factors(Z, 2, 3, 0.0, 0.1)
    with pytest.raises(ValueError, match="loss"):
        reduced_loss(Z, np.eye(3)[:, [0, 1, 2, 0]], 2, 0.1, 0.1, loss="hinge")
