"""Cross-entropy deep UFM of Garrod & Keating: structures, optimal scales, Theorem 1 and Theorem 7."""

import math

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from deepcollapse import dufm
from deepcollapse.theory.ce import (
    ScaleProfile,
    ce_compare,
    dnc_solution,
    dnc_structure,
    is_diagonally_superior,
    min_diag_superior_rank,
    numerical_rank,
    optimal_scale,
    pair_solution,
    pair_structure,
    rank2_diag_superior,
    rank2_solution,
    relu_compare,
    relu_pair_solution,
    relu_reg_condition,
    repeat_columns,
    theorem1_predicts,
)
from deepcollapse.theory.factors import fit_ce_np, product, reduced_loss


def _jax(params):
    return {"H1": jnp.asarray(params["H1"]), "W": tuple(jnp.asarray(w) for w in params["W"])}


# ---- structures --------------------------------------------------------------------------------


@pytest.mark.parametrize("K", range(2, 10))
def test_pair_structure_rank_and_singular_values(K):
    S = pair_structure(K)
    assert numerical_rank(S) == math.ceil(K / 2)
    sv = np.linalg.svd(S, compute_uv=False)
    expect = np.r_[np.full(K // 2, 2.0), np.ones(K % 2), np.zeros(K - math.ceil(K / 2))]
    np.testing.assert_allclose(sv, expect, atol=1e-12)
    assert is_diagonally_superior(S) == (K >= 2)
    sv_dnc = np.linalg.svd(dnc_structure(K), compute_uv=False)
    np.testing.assert_allclose(sv_dnc, np.r_[np.ones(K - 1), 0.0], atol=1e-12)


@pytest.mark.parametrize("K", [3, 4, 5, 8])
@pytest.mark.parametrize("s", [0.3, 2.0, 9.0])
def test_fit_lower_for_pairs_at_equal_scale(K, s):
    """App. B.3: fit(s pairs) < fit(s DNC); closed forms log(1+e^{-2s}+(K-2)e^{-s}) and log(1+(K-1)e^{-s})."""
    I = np.eye(K)
    f_pair, f_dnc = fit_ce_np(s * pair_structure(K), I), fit_ce_np(s * dnc_structure(K), I)
    assert f_pair < f_dnc
    np.testing.assert_allclose(f_dnc, np.log1p((K - 1) * np.exp(-s)), rtol=1e-13)
    per_class = np.full(K, np.log1p(np.exp(-2 * s) + (K - 2) * np.exp(-s)))
    if K % 2:
        per_class[-1] = np.log1p((K - 1) * np.exp(-s))
    np.testing.assert_allclose(f_pair, per_class.mean(), rtol=1e-13)


@pytest.mark.parametrize("K", [3, 4, 7, 12])
def test_rank2_diag_superior(K):
    S = rank2_diag_superior(K)
    assert is_diagonally_superior(S)
    assert numerical_rank(S) == 2 == min_diag_superior_rank(K)
    angles = np.sort(np.random.default_rng(K).uniform(0, 2 * np.pi, K))
    S2 = rank2_diag_superior(K, angles)
    assert is_diagonally_superior(S2) and numerical_rank(S2) == 2
    with pytest.raises(ValueError, match="distinct"):
        rank2_diag_superior(3, [0.0, 1.0, 2 * np.pi])


def test_rank_one_is_never_diagonally_superior_for_three_classes():
    """Lower bound behind min_diag_superior_rank(K >= 3) = 2: random rank-1 3 x 3 matrices all fail."""
    rng = np.random.default_rng(0)
    assert min_diag_superior_rank(2) == 1 and is_diagonally_superior(pair_structure(2))
    assert not any(is_diagonally_superior(np.outer(rng.normal(size=3), rng.normal(size=3))) for _ in range(2000))


# ---- optimal scales ----------------------------------------------------------------------------


@pytest.mark.parametrize("K,n,lam", [(4, 1, 1e-3), (6, 3, 1e-2), (10, 2, 1e-6)])
def test_optimal_scale_L1_dnc_closed_form(K, n, lam):
    """L = 1: f(s) = log(1+(K-1)e^{-s}) + c s, c = lam (K-1) sqrt(n), so s* = log((K-1)(1-c)/c)."""
    c = lam * (K - 1) * np.sqrt(n)
    s_star, loss = optimal_scale(dnc_structure(K), 1, lam, n)
    np.testing.assert_allclose(s_star, np.log((K - 1) * (1 - c) / c), rtol=1e-12)
    np.testing.assert_allclose(loss, np.log1p((K - 1) * np.exp(-s_star)) + c * s_star, rtol=1e-13)


@pytest.mark.parametrize("K,n,lam", [(4, 1, 1e-3), (8, 2, 1e-5)])
def test_optimal_scale_L1_pairs_closed_form(K, n, lam):
    """L = 1, even K: with x = e^{-s}, f' = 0 is (2-c)x^2 + (K-2)(1-c)x - c = 0, c = lam K sqrt(n)."""
    c = lam * K * np.sqrt(n)
    a, b = 2 - c, (K - 2) * (1 - c)
    x = (-b + np.sqrt(b * b + 4 * a * c)) / (2 * a)
    s_star, _ = optimal_scale(pair_structure(K), 1, lam, n)
    np.testing.assert_allclose(s_star, -np.log(x), rtol=1e-10)


@pytest.mark.parametrize("K,L,lam,n", [(4, 2, 1e-3, 1), (5, 3, 1e-2, 2), (6, 4, 1e-4, 1), (7, 6, 1e-3, 3)])
def test_optimal_scale_matches_scipy_on_closed_forms(K, L, lam, n):
    p = 2 / (L + 1)

    def f_dnc(s):
        return np.log1p((K - 1) * np.exp(-s)) + (L + 1) / 2 * lam * (K - 1) * (np.sqrt(n) * s) ** p

    def f_pair(s):
        fit_pair = np.log1p(np.exp(-2 * s) + (K - 2) * np.exp(-s))
        if K % 2 == 0:
            return fit_pair + (L + 1) / 2 * lam * K / 2 * (2 * np.sqrt(n) * s) ** p
        fit = ((K - 1) * fit_pair + np.log1p((K - 1) * np.exp(-s))) / K
        return fit + (L + 1) / 2 * lam * ((K - 1) / 2 * (2 * np.sqrt(n) * s) ** p + (np.sqrt(n) * s) ** p)

    for S, f in [(dnc_structure(K), f_dnc), (pair_structure(K), f_pair)]:
        s_star, loss = optimal_scale(S, L, lam, n)
        ref = minimize_scalar(f, bounds=(0.5 * s_star, 2 * s_star), method="bounded", options={"xatol": 1e-10})
        np.testing.assert_allclose(loss, f(s_star), rtol=1e-12)
        np.testing.assert_allclose(loss, ref.fun, rtol=1e-11)
        np.testing.assert_allclose(s_star, ref.x, rtol=1e-6)
        assert loss <= ref.fun * (1 + 1e-14)


@pytest.mark.parametrize("S_fn,K,L,lam,n", [(dnc_structure, 5, 3, 1e-3, 2), (pair_structure, 6, 2, 1e-2, 1),
                                             (rank2_diag_superior, 6, 4, 1e-3, 1)])
def test_reduced_loss_gradient_vanishes_at_optimal_scale(S_fn, K, L, lam, n):
    """Finite differences of `reduced_loss` on the full K x N output around s*."""
    S = S_fn(K)
    Y = repeat_columns(np.eye(K), [n] * K)
    s_star, loss = optimal_scale(S, L, lam, n)

    def g(s):
        return reduced_loss(repeat_columns(s * S, [n] * K), Y, L, lam, lam)

    np.testing.assert_allclose(g(s_star), loss, rtol=1e-12)
    h = 1e-4 * s_star
    fd = (g(s_star + h) - g(s_star - h)) / (2 * h)
    reg_slope = (g(s_star + h) - g(s_star - h) - (fit_ce_np(repeat_columns((s_star + h) * S, [n] * K), Y)
                                                   - fit_ce_np(repeat_columns((s_star - h) * S, [n] * K), Y))) / (2 * h)
    assert abs(fd) < 1e-6 * abs(reg_slope)
    assert g(s_star * 1.01) > loss and g(s_star * 0.99) > loss
    assert abs(ScaleProfile(S, L, lam, [n] * K).grad(s_star)) < 1e-10 * abs(reg_slope)


def test_zero_output_when_lam_is_large():
    """If no s > 0 beats f(0) = log K the optimum is the zero output (App. B.3)."""
    s_star, loss = optimal_scale(dnc_structure(4), 2, 5.0, 1)
    assert s_star == 0.0 and loss == pytest.approx(np.log(4), rel=1e-14)
    with pytest.raises(ValueError, match="lam"):
        optimal_scale(dnc_structure(4), 2, 0.0)


# ---- explicit solutions ------------------------------------------------------------------------


@pytest.mark.parametrize("builder,K,L,n", [(dnc_solution, 4, 3, 2), (pair_solution, 5, 2, 1),
                                           (pair_solution, 6, 4, 2), (rank2_solution, 5, 3, 1)])
def test_solutions_full_loss_equals_reduced_loss(builder, K, L, n):
    lam = 1e-3
    sol = builder(K, L, K + 1, lam, n)
    Y = dufm.one_hot([n] * K)
    total, fit, reg = dufm.loss_terms(_jax(sol.params), jnp.asarray(Y), dufm.hyper(lam, lam, L), "linear", "ce")
    np.testing.assert_allclose(float(total), sol.loss, rtol=1e-10)
    np.testing.assert_allclose(float(fit), sol.fit, rtol=1e-9)
    np.testing.assert_allclose(sol.loss, sol.meta["loss_1d"], rtol=1e-12)
    S = {"dnc": dnc_structure, "pairs": pair_structure, "rank2": rank2_diag_superior}[sol.meta["structure"]](K)
    np.testing.assert_allclose(product(sol.params), repeat_columns(sol.scales["s"] * S, [n] * K), atol=1e-10)


# ---- Theorem 1 ---------------------------------------------------------------------------------


def test_theorem1_inequality_examples():
    """SPEC.md: K >= 6 with L >= 2, or K >= 4 with L >= 3 (and never for L = 1 or K = 3)."""
    for K in range(3, 30):
        assert not theorem1_predicts(K, 1)
        assert theorem1_predicts(K, 2) == (K >= 6 and (K % 2 == 0 or K >= 7))
        assert theorem1_predicts(K, 3) == (K >= 4)
    assert not any(theorem1_predicts(3, L) for L in range(1, 50))
    assert theorem1_predicts(5, 3) and not theorem1_predicts(5, 2) and not theorem1_predicts(4, 2)


@pytest.mark.parametrize("lam", [1e-3, 1e-8])
def test_theorem1_map_matches_optimised_comparison(lam):
    """At small lam the optimal-scale comparison reproduces Theorem 1's map for K = 3..12, L = 1..6."""
    for K in range(3, 13):
        for L in range(1, 7):
            row = ce_compare(K, L, lam)
            assert row["s_dnc"] > 0 and row["s_lowrank"] > 0
            assert row["lowrank_wins"] == row["theorem1_predicts"], row


def test_theorem1_is_sufficient_at_larger_lam():
    """Theorem 1 holds at any lam where DNC has s* > 0: predicts => the pairs win."""
    for lam in [3e-2, 1e-1]:
        for K in range(3, 9):
            for L in range(1, 5):
                row = ce_compare(K, L, lam)
                if row["theorem1_predicts"] and row["s_dnc"] > 0:
                    assert row["lowrank_wins"], row


@pytest.mark.parametrize("K,L", [(4, 2), (6, 2), (5, 3), (12, 1)])
def test_loss_ratio_tends_to_regularisation_ratio(K, L):
    """As lam -> 0 the reg term dominates the optimal loss, so loss_lowrank / loss_dnc tends to the
    ratio of the Theorem 1 sums: (K/2 2^p) / (K-1) (even K), ((K-1)/2 2^p + 1) / (K-1) (odd K)."""
    q = 2 ** (2 / (L + 1))
    limit = (K / 2 * q if K % 2 == 0 else (K - 1) / 2 * q + 1) / (K - 1)
    errs = []
    for lam in [1e-30, 1e-250]:
        row = ce_compare(K, L, lam)
        errs.append(abs(row["loss_lowrank"] / row["loss_dnc"] - limit))
    assert errs[1] < errs[0] and errs[1] < 1e-3


# ---- Theorem 7 (deep ReLU UFM) -----------------------------------------------------------------


@pytest.mark.parametrize("K,L,n", [(4, 3, 2), (5, 2, 1), (6, 4, 2), (7, 3, 1)])
def test_relu_pair_solution_through_relu_network(K, L, n):
    lam = 1e-3
    sol = relu_pair_solution(K, L, K + 2, lam, n)
    p = _jax(sol.params)
    Hs, Zs = dufm.forward(p, "relu")
    # ReLU acts as the identity on every hidden layer: pre-activations >= 0 up to round-off
    assert all(float(jnp.min(Z)) >= -1e-12 * float(jnp.max(Z)) for Z in Zs[:-1])
    np.testing.assert_allclose(np.asarray(Zs[-1]), repeat_columns(sol.scales["s"] * pair_structure(K), [n] * K),
                               atol=1e-10)
    Y = dufm.one_hot([n] * K)
    total, fit, reg = dufm.loss_terms(p, jnp.asarray(Y), dufm.hyper(lam, lam, L), "relu", "ce")
    np.testing.assert_allclose(float(total), sol.loss, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(reg), reg[0], rtol=1e-10)  # equal factor norms (AM-GM optimum)
    np.testing.assert_allclose(float(reg[0]), 0.5 * lam * sol.scales["nu"] ** 2, rtol=1e-10)


def test_relu_reg_condition_even_closed_form():
    """Even K: C^(-2/(L+1)) < K-1  <=>  K^2 (K+2)^L / 2^L < (K-1)^(L+1) (norms ||M+11^T||^2 = K^2+2K,
    ||M+(2/K)11^T||^2 = 2K+4, ||M||^2 = 2K, output scale 2^L)."""
    for K in range(4, 30, 2):
        for L in range(1, 16):
            expect = 2 * np.log(K) + L * np.log(K + 2) - L * np.log(2) < (L + 1) * np.log(K - 1)
            assert relu_reg_condition(K, L) == expect, (K, L)


@pytest.mark.parametrize("K,L", [(6, 8), (6, 9), (8, 6), (8, 7), (10, 6), (4, 12), (7, 11), (7, 14)])
def test_relu_comparison_follows_reg_condition_at_small_lam(K, L):
    row = relu_compare(K, L, 1e-10)
    assert row["lowrank_wins"] == row["reg_condition"]
    # and whenever the condition holds, the fit advantage makes it win at any lam with s_dnc > 0
    if row["reg_condition"]:
        assert relu_compare(K, L, 1e-2)["lowrank_wins"]




# ---- Theorem 7 with the optimised offset (issue 12, item 5) ------------------------------------


@pytest.mark.parametrize("K,L,n", [(4, 3, 2), (5, 2, 1), (6, 4, 2), (7, 3, 1)])
def test_relu_pair_optimal_shift_through_relu_network(K, L, n):
    """The optimal-offset construction is a point of the ReLU model whose loss is the claimed one: the
    pre-activations stay >= 0 with offset exactly 1 (their smallest entry is 0), the output is s times
    the pair structure, and the factor norms are equal."""
    lam = 1e-3
    sol = relu_pair_solution(K, L, K + 2, lam, n, shift="optimal")
    p = _jax(sol.params)
    _, Zs = dufm.forward(p, "relu")
    for Z in Zs[:-1]:
        assert float(jnp.min(Z)) >= -1e-12 * float(jnp.max(Z))
        assert float(jnp.min(Z[:K, :])) == pytest.approx(0.0, abs=1e-12 * float(jnp.max(Z)))  # tight offset
    np.testing.assert_allclose(np.asarray(Zs[-1]), repeat_columns(sol.scales["s"] * pair_structure(K), [n] * K),
                               atol=1e-10)
    Y = dufm.one_hot([n] * K)
    total, _, reg = dufm.loss_terms(p, jnp.asarray(Y), dufm.hyper(lam, lam, L), "relu", "ce")
    np.testing.assert_allclose(float(total), sol.loss, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(reg), reg[0], rtol=1e-10)


@pytest.mark.parametrize("K,L", [(4, 3), (6, 2), (7, 4), (10, 3)])
def test_relu_pair_optimal_shift_minimises_the_loss(K, L):
    """The closed-form offset is the minimiser over rho: a 5% change either way costs loss, and it beats
    App. B.9's offset 1; even K: rho^2 = 2/K."""
    from deepcollapse.theory.ce import relu_pair_optimal_shift

    lam, n = 2.0**-9, 5
    rho = relu_pair_optimal_shift(K, L)
    if K % 2 == 0:
        assert rho**2 == pytest.approx(2.0 / K, rel=1e-12)
    best = relu_pair_solution(K, L, K, lam, n, shift="optimal").loss
    for r in (0.95 * rho, 1.05 * rho, 1.0):
        assert relu_pair_solution(K, L, K, lam, n, shift=r).loss > best


def test_relu_reg_condition_optimal_shift_even_closed_form():
    """Even K, optimal offset: C^(-2) = 16 K^2 (2K+4)^(L-2) 2K / 4^L, so the condition is
    8 K^3 (K+2)^(L-2) / 2^L < (K-1)^(L+1); at K = 10 it first holds at L = 5 (offset 1: L = 6)."""
    for K in range(4, 30, 2):
        for L in range(2, 16):
            expect = np.log(8) + 3 * np.log(K) + (L - 2) * np.log(K + 2) - L * np.log(2) < (L + 1) * np.log(K - 1)
            assert relu_reg_condition(K, L, "optimal") == expect, (K, L)
    assert next(L for L in range(2, 9) if relu_reg_condition(10, L, "optimal")) == 5
    assert next(L for L in range(2, 9) if relu_reg_condition(10, L)) == 6
