"""DNC solution of the MSE ReLU L-DUFM (Súkeník et al.): closed form vs explicit parameters and
numerical minimisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize

from deepcollapse import dufm
from deepcollapse.theory.mse import dnc_loss, dnc_solution, min_fit_plus_power
from deepcollapse.theory.srg import class_mean_matrices


def model_loss(con, lam_H, lam_W, L):
    params = {"H1": jnp.asarray(con.params["H1"]), "W": tuple(jnp.asarray(W) for W in con.params["W"])}
    Y = dufm.one_hot(con.meta["sizes"])
    total, fit, reg = dufm.loss_terms(params, Y, dufm.hyper(lam_H, lam_W, L))
    return float(total), float(fit), float(jnp.sum(reg))


@pytest.mark.parametrize("A,Bc,p", [(0.5, 0.05, 2), (0.5, 0.2, 4), (0.1, 0.03, 6), (0.5, 0.9, 3), (0.2, 0.0, 5)])
def test_min_fit_plus_power_is_global_minimum(A, Bc, p):
    g_min, c_min = min_fit_plus_power(A, Bc, p)
    c = np.linspace(0.0, 1.5, 300001)
    g = A * (c - 1) ** 2 + Bc * c ** (2.0 / p)
    assert g_min <= g.min() + 1e-15
    assert g_min == pytest.approx(A * (c_min - 1) ** 2 + Bc * c_min ** (2.0 / p), rel=1e-14)
    assert abs(c_min - c[np.argmin(g)]) < 1e-4
    if c_min > 0:  # interior: stationary to round-off
        dg = 2 * A * (c_min - 1) + Bc * (2.0 / p) * c_min ** (2.0 / p - 1)
        assert abs(dg) < 1e-12


def test_dnc_loss_L1_matches_classical_ufm():
    # L = 1: reg of Z = cY is sqrt(lam_H lam_1) ||cY||_* = sqrt(lam_H lam_1) c K sqrt(n), so
    # c = 1 - K sqrt(n lam_H lam_1) and loss = (c-1)^2/2 + K sqrt(n lam_H lam_1) c.
    K, n, lh, lw = 4, 3, 1e-3, 4e-3
    t = K * np.sqrt(n * lh * lw)
    loss, c = dnc_loss(K, 1, n, lh, lw)
    assert c == pytest.approx(1 - t, rel=1e-13)
    assert loss == pytest.approx(t**2 / 2 + t * (1 - t), rel=1e-13)


def test_dnc_loss_collapses_to_half_for_large_decay():
    loss, c = dnc_loss(5, 3, 2, 1.0, 1.0)
    assert c == 0.0 and loss == 0.5


@pytest.mark.parametrize("K,L,sizes,lam_H,lam_W,widths", [
    (4, 3, 2, 0.004, 0.004, [4, 5, 6]),
    (3, 2, [1, 2, 5], 0.01, [0.02, 0.005], [3, 4]),
    (5, 4, 1, 0.003, [0.001, 0.002, 0.004, 0.008], [7, 5, 6, 5]),
])
def test_dnc_solution_loss_equals_model_loss(K, L, sizes, lam_H, lam_W, widths):
    loss, _ = dnc_loss(K, L, sizes, lam_H, lam_W)
    con = dnc_solution(K, L, widths, sizes, lam_H, lam_W)
    total, fit, reg = model_loss(con, lam_H, lam_W, L)
    assert con.loss == pytest.approx(loss, rel=1e-14)
    assert total == pytest.approx(loss, rel=1e-10)
    assert fit == pytest.approx(con.fit, rel=1e-10)
    assert reg == pytest.approx(con.reg, rel=1e-10)
    assert loss < 0.5


def test_dnc_class_means_are_orthogonal_frames():
    K, L, sizes = 3, 3, [2, 1, 3]
    con = dnc_solution(K, L, [4, 3, 5], sizes, 0.01, [0.02, 0.01, 0.005])
    means = class_mean_matrices(con)
    for M in means["H"] + means["Z"]:
        G = M.T @ M
        assert np.all(M >= 0)
        np.testing.assert_allclose(G - np.diag(np.diag(G)), 0.0, atol=1e-15)
        assert np.linalg.matrix_rank(M) == K
    # within-class collapse of H_1 and output c_k e_k
    np.testing.assert_allclose(means["Z"][-1], np.diag(con.scales["c"]), rtol=1e-12)
    H1 = con.params["H1"]
    np.testing.assert_allclose(H1, means["H"][0][:, dufm.labels(sizes)], rtol=0, atol=0)


def test_dnc_balanced_orthogonal_frame_is_equinorm():
    con = dnc_solution(4, 2, [4, 4], 3, 0.01, 0.01)
    for M in class_mean_matrices(con)["H"]:
        G = M.T @ M
        np.testing.assert_allclose(G, G[0, 0] * np.eye(4), rtol=1e-13, atol=1e-15)


def test_dnc_loss_is_minimum_over_per_class_scales():
    # Minimise the L-DUFM loss over per-class, per-factor log-gains (no AM-GM), unequal sizes and lams.
    K, L, sizes, lam_H, lam_W = 3, 2, [1, 2, 3], 0.02, [0.03, 0.01]
    Y = jnp.asarray(dufm.one_hot(sizes))
    y = dufm.labels(sizes)
    hyp = dufm.hyper(lam_H, lam_W, L)
    E = jnp.eye(K)

    def f(theta):
        g = jnp.exp(theta.reshape(L + 1, K))
        params = {"H1": E[:, y] * g[0][y][None, :], "W": tuple(jnp.diag(g[l + 1]) for l in range(L))}
        return dufm.loss_terms(params, Y, hyp)[0]

    fg = jax.jit(jax.value_and_grad(f))
    res = minimize(lambda t: tuple(np.asarray(v, np.float64) for v in fg(jnp.asarray(t))),
                   np.zeros((L + 1) * K), jac=True, method="L-BFGS-B",
                   options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000})
    loss, c = dnc_loss(K, L, sizes, lam_H, lam_W)
    assert res.fun == pytest.approx(loss, rel=1e-9)
    g = np.exp(res.x.reshape(L + 1, K))
    np.testing.assert_allclose(np.prod(g, axis=0), c, rtol=1e-5)
    assert c[0] < c[1] < c[2]  # smaller classes get smaller output scales


def test_dnc_bad_input():
    with pytest.raises(ValueError, match="widths"):
        dnc_solution(4, 2, [4, 3], 1, 0.01, 0.01)
    with pytest.raises(ValueError, match="sizes"):
        dnc_loss(3, 2, [1, 2], 0.01, 0.01)
    with pytest.raises(ValueError, match="lam_W"):
        dnc_loss(3, 2, 1, 0.01, [0.01, -1.0])
    with pytest.raises(ValueError, match="lam_H"):
        dnc_loss(3, 2, 1, 0.0, 0.01)
