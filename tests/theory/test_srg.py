"""SRG low-rank solution of the MSE ReLU L-DUFM (Súkeník et al., Fig. 1 and Fig. 3 left)."""

import time
from math import comb

import jax.numpy as jnp
import numpy as np
import pytest

from deepcollapse import dufm
from deepcollapse.theory.mse import dnc_loss
from deepcollapse.theory.srg import (class_mean_matrices, incidence_matrix, nuclear_norm_B, srg_loss,
                                     srg_loss_numerical, srg_ratio_table, srg_solution, triangular_graph)


def model_loss(con, lam_H, lam_W, L):
    params = {"H1": jnp.asarray(con.params["H1"]), "W": tuple(jnp.asarray(W) for W in con.params["W"])}
    Y = dufm.one_hot(con.meta["sizes"])
    total, fit, reg = dufm.loss_terms(params, Y, dufm.hyper(lam_H, lam_W, L))
    return float(total), float(fit), float(jnp.sum(reg))


def numerical_rank(M, rtol=1e-10):
    s = np.linalg.svd(M, compute_uv=False)
    return int(np.sum(s > rtol * s[0]))


@pytest.mark.parametrize("r", [4, 5, 6, 7])
def test_incidence_and_triangular_graph(r):
    B, A = incidence_matrix(r), triangular_graph(r)
    K = comb(r, 2)
    assert B.shape == (r, K) and A.shape == (K, K)
    np.testing.assert_array_equal(B.sum(axis=0), 2)
    np.testing.assert_array_equal(B.sum(axis=1), r - 1)
    np.testing.assert_array_equal(B.T @ B, 2 * np.eye(K) + A)
    np.testing.assert_array_equal(B @ B.T, (r - 2) * np.eye(r) + np.ones((r, r)))
    # strongly regular (v, k, lambda, mu) = (C(r,2), 2(r-2), r-2, 4): A^2 = k I + lambda A + mu (J - I - A)
    k, lam, mu = 2 * (r - 2), r - 2, 4
    np.testing.assert_array_equal(A, A.T)
    np.testing.assert_array_equal(np.diag(A), 0)
    np.testing.assert_array_equal(A.sum(axis=1), k)
    J, I = np.ones((K, K)), np.eye(K)
    np.testing.assert_array_equal(A @ A, k * I + lam * A + mu * (J - I - A))
    assert np.linalg.matrix_rank(B) == r
    assert nuclear_norm_B(r) == pytest.approx(np.linalg.svd(B, compute_uv=False).sum(), rel=1e-13)


@pytest.mark.parametrize("r,L,n,lam_H,lam_W,variant,widths", [
    (5, 4, 2, 0.004, 0.004, "spec", [6, 5, 7, 11]),
    (4, 3, 1, 0.01, [0.02, 0.005, 0.01], "spec", [4, 4, 6]),
    (3, 2, 3, 0.004, [0.003, 0.006], "spec", [3, 4]),
    (5, 4, 1, 0.004, 0.004, "balanced", [5, 6, 5, 10]),
    (4, 3, [2, 2, 2, 2, 2, 2], 0.002, [0.01, 0.004, 0.003], "balanced", [5, 4, 6]),
])
def test_srg_solution_loss_equals_model_loss(r, L, n, lam_H, lam_W, variant, widths):
    loss, info = srg_loss(r, L, n, lam_H, lam_W, variant)
    con = srg_solution(r, L, widths, n, lam_H, lam_W, variant)
    total, fit, reg = model_loss(con, lam_H, lam_W, L)
    assert con.loss == loss
    assert total == pytest.approx(loss, rel=1e-10)
    assert fit == pytest.approx(con.fit, rel=1e-10)
    assert reg == pytest.approx(con.reg, rel=1e-10)
    assert info["a"] == 1.0 and 0 < info["c"] < 1


def test_srg_loss_at_fixed_a_also_matches_and_a_one_is_optimal():
    r, L, lam = 4, 3, 0.004
    base, _ = srg_loss(r, L, 1, lam, lam)
    prev = base
    for a in (1.2, 1.5, 1.8):
        loss, info = srg_loss(r, L, 1, lam, lam, a=a)
        con = srg_solution(r, L, [4, 4, 6], 1, lam, lam, a=a)
        assert model_loss(con, lam, lam, L)[0] == pytest.approx(loss, rel=1e-10)
        assert loss > prev  # phi(a)/(2-a)^2 increases with a
        prev = loss


@pytest.mark.parametrize("variant", ["spec", "balanced"])
def test_srg_layer_ranks_and_structure(variant):
    r, L, n = 5, 4, 2
    K = comb(r, 2)
    con = srg_solution(r, L, [7, 6, 5, 12], n, 0.004, 0.004, variant)
    means = class_mean_matrices(con)
    B = incidence_matrix(r)
    for l in range(L - 1):  # H_1..H_{L-1}: rank r
        assert numerical_rank(means["H"][l]) == r
    for l in range(1, L - 1):  # post-ReLU copies of B (non-negative): M_l = s_l B, padded
        M = means["H"][l]
        s = M[0, 0]
        np.testing.assert_allclose(M[:r], s * B, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(M[r:], 0.0, atol=1e-14)
    # Fig. 1 left: each row of M_{L-1} has r-1 equal non-zero entries
    M3 = means["H"][L - 2][:r]
    for row in M3:
        nz = row[np.abs(row) > 1e-12]
        assert nz.size == r - 1 and np.ptp(nz) < 1e-12
    # last hidden pre-activation: rank r, proportional to B^T B - a 11^T; after ReLU: rank K, multiple of I_K
    Zp = means["Z"][L - 2]
    assert numerical_rank(Zp) == r
    a, s = con.scales["a"], Zp[0, 0] / (2 - con.scales["a"])
    np.testing.assert_allclose(Zp[:K], s * (B.T @ B - a * np.ones((K, K))), rtol=1e-12, atol=1e-13)
    HL = means["H"][L - 1]
    assert numerical_rank(HL) == K
    np.testing.assert_allclose(HL[:K], HL[0, 0] * np.eye(K), atol=1e-13)
    np.testing.assert_allclose(means["Z"][L - 1], con.scales["c"] * np.eye(K), rtol=1e-12, atol=1e-14)
    if variant == "spec":
        np.testing.assert_allclose(means["H"][0][:r], means["H"][0][0, 0] * B, rtol=1e-12)
    else:  # H_1 is the balanced half factor: not non-negative, but W_1 H_1 is
        assert means["H"][0].min() < 0


@pytest.mark.parametrize("r,L,n,lam_H,lam_W,variant", [
    (4, 3, 1, 0.004, 0.004, "spec"),
    (4, 4, 2, 0.01, [0.02, 0.005, 0.01, 0.003], "spec"),
    (4, 3, 1, 0.004, [0.004, 0.002, 0.008], "balanced"),
])
def test_srg_closed_form_is_numerical_minimum(r, L, n, lam_H, lam_W, variant):
    num, info = srg_loss_numerical(r, L, n, lam_H, lam_W, variant, starts=3)
    loss, cf = srg_loss(r, L, n, lam_H, lam_W, variant)
    assert num == pytest.approx(loss, rel=1e-9)
    assert info["a"] == pytest.approx(1.0, abs=1e-6)
    assert np.prod(info["x"]) * (2 - info["a"]) == pytest.approx(cf["c"], rel=1e-5)


def test_balanced_variant_beats_spec():
    for r, L in [(4, 3), (6, 4), (8, 5)]:
        assert srg_loss(r, L, 1, 0.004, 0.004, "balanced")[0] < srg_loss(r, L, 1, 0.004, 0.004, "spec")[0]


def test_ratio_table_qualitative_and_coefficient_criterion():
    t0 = time.perf_counter()
    rows = srg_ratio_table(range(4, 9), [3, 4, 5], 0.004, 1)
    assert time.perf_counter() - t0 < 5.0
    assert len(rows) == 15
    by_L = {L: [row["ratio"] for row in rows if row["L"] == L] for L in (3, 4, 5)}
    for L in (4, 5):  # paper Fig. 3 left: below 1, decreasing in r, lower for larger L
        assert all(x < 1 for x in by_L[L]) and all(np.diff(by_L[L]) < 0)
    assert all(x5 < x4 for x4, x5 in zip(by_L[4], by_L[5]))
    for row in rows:
        r, K, L = row["r"], row["K"], row["L"]
        assert row["ratio"] == pytest.approx(row["loss_srg"] / row["loss_dnc"], rel=1e-15)
        assert row["loss_dnc"] == dnc_loss(K, L, 1, 0.004, 0.004)[0]
        # same fit, reg coefficients in ratio (r^(L-1) / (2 K^(L-2)))^(1/(L+1)) for equal lam:
        # SRG wins iff r^(L-1) < 2 K^(L-2)
        assert (row["ratio"] < 1) == (r ** (L - 1) < 2 * K ** (L - 2))


def test_srg_bad_input():
    with pytest.raises(ValueError, match="balanced classes"):
        srg_loss(4, 3, [1, 2, 1, 1, 1, 1], 0.01, 0.01)
    with pytest.raises(ValueError, match="widths"):
        srg_solution(4, 3, [4, 4, 5], 1, 0.01, 0.01)  # d_L must be >= K = 6
    with pytest.raises(ValueError, match="widths"):
        srg_solution(4, 3, [3, 4, 6], 1, 0.01, 0.01)  # d_1 must be >= r = 4
    with pytest.raises(ValueError, match="r must be"):
        srg_loss(2, 3, 1, 0.01, 0.01)
    with pytest.raises(ValueError, match="a must be"):
        srg_loss(4, 3, 1, 0.01, 0.01, a=2.0)
    with pytest.raises(ValueError, match="variant"):
        srg_loss(4, 2, 1, 0.01, 0.01, "balanced")


@pytest.mark.parametrize("r,L,lam_W,widths", [(4, 3, [0.01, 0.002, 0.005], [4, 5, 6]), (5, 4, 0.004, [5, 5, 6, 11])])
def test_relaxed_srg_loss_equals_model_loss_and_improves(r, L, lam_W, widths):
    from deepcollapse.theory.srg import srg_relaxed_loss, srg_relaxed_solution

    K = comb(r, 2)
    loss, info = srg_relaxed_loss(r, L, 1, 0.004, lam_W)
    con = srg_relaxed_solution(r, L, widths, 1, 0.004, lam_W)
    total, fit, _ = model_loss(con, 0.004, lam_W, L)
    assert total == pytest.approx(loss, rel=1e-10)
    assert fit == pytest.approx(con.fit, rel=1e-10)
    assert loss < srg_loss(r, L, 1, 0.004, lam_W, "balanced")[0] < srg_loss(r, L, 1, 0.004, lam_W, "spec")[0]
    assert 0 < info["a"] < 1  # adjacent-edge entries survive the last ReLU
    means = class_mean_matrices(con)
    assert numerical_rank(means["Z"][L - 2]) == r and numerical_rank(means["H"][L - 1]) == K
    assert np.all(means["H"][L - 1] >= 0)
