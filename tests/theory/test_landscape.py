"""Tests of deepcollapse.theory.landscape (Garrod & Keating, Theorems 4 and 6) and the `hessian` command."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepcollapse import dufm
from deepcollapse.theory import landscape as ls
from deepcollapse.theory.ce import dnc_structure, optimal_scale
from deepcollapse.theory.factors import balanced_factors, product, reduced_loss


def _full_loss_and_grad(K, L, lam, n, params):
    """The full loss and max |gradient| straight from dufm.total_loss (all parameters)."""
    Y = jnp.asarray(dufm.one_hot([n] * K))
    hyp = dufm.hyper(lam, lam, L)
    p = jax.tree_util.tree_map(jnp.asarray, params)
    f = lambda q: dufm.total_loss(q, Y, hyp, "linear", "ce")  # noqa: E731
    g = jax.grad(f)(p)
    return float(f(p)), max(float(jnp.max(jnp.abs(x))) for x in jax.tree_util.tree_leaves(g))


@pytest.mark.parametrize("structure", ["dnc", "pairs"])
def test_structure_reduced_loss_matches_factors_reduced_loss(structure):
    K, L, lam, n, s = 4, 3, 0.01, 2, 2.7
    Z = ls.logits(structure, K, n, s)
    Y = dufm.one_hot([n] * K)
    assert ls.structure_reduced_loss(structure, s, K, L, lam, n) == pytest.approx(
        reduced_loss(Z, Y, L, lam, lam, loss="ce"), rel=1e-13)


@pytest.mark.parametrize("structure,K,L,n",
                         [("dnc", 4, 3, 1), ("dnc", 3, 2, 2), ("pairs", 4, 2, 1), ("pairs", 6, 3, 2)])
def test_critical_scales_are_stationary_points_of_the_reduced_loss(structure, K, L, n):
    lam = 1e-3
    scales = ls.critical_scales(structure, K, L, lam, n)
    assert len(scales) == 2 and 0 < scales[0] < scales[1]
    S = ls.class_mean_logits(structure, K, 1.0)
    U = np.kron(S, np.ones((1, n)))
    Y = jnp.asarray(dufm.one_hot([n] * K))
    m, c = (K - 1, 1.0) if structure == "dnc" else (K // 2, 2.0)
    for s in scales:
        # R'(s) = <grad_Z fit, U> + lam m (c sqrt(n))^{2/(L+1)} s^{2/(L+1)-1}: the two terms cancel
        dfit = float(jnp.sum(jax.grad(dufm.fit_ce)(jnp.asarray(s * U), Y) * U))
        dreg = lam * m * (c * np.sqrt(n)) ** (2 / (L + 1)) * s ** (2 / (L + 1) - 1)
        assert abs(dfit + dreg) < 1e-12 * dreg
        assert ls.critical_scale_equation(structure, s, K, L, n) == pytest.approx(lam, rel=1e-13)


@pytest.mark.parametrize("K,L,n,width", [(4, 3, 1, 4), (3, 2, 2, 5)])
def test_full_gradient_vanishes_at_both_dnc_critical_points(K, L, n, width):
    lam = 1e-3
    for which in ("small", "large"):
        p = ls.dnc_critical_point(K, L, lam, n, width, which)
        s = ls.dnc_critical_scales(K, L, lam, n)[0 if which == "small" else 1]
        np.testing.assert_allclose(product(p), s * np.kron(dnc_structure(K), np.ones((1, n))), atol=1e-12)
        loss, gmax = _full_loss_and_grad(K, L, lam, n, p)
        assert gmax < 1e-9
        assert loss == pytest.approx(ls.structure_reduced_loss("dnc", s, K, L, lam, n), rel=1e-12)
    # the same structure at a non-critical scale is not critical: the test can fail
    p = balanced_factors(ls.logits("dnc", K, n, 1.2 * s), L, width, lam, lam)
    assert _full_loss_and_grad(K, L, lam, n, p)[1] > 1e-5


def test_full_gradient_vanishes_at_pair_critical_point():
    K, L, lam, n = 4, 2, 1e-3, 2
    p = ls.critical_point("pairs", K, L, lam, n, 5, "large")
    assert _full_loss_and_grad(K, L, lam, n, p)[1] < 1e-9


def test_large_scale_diverges_and_small_scale_vanishes_as_lam_to_zero():
    K, L, n = 4, 3, 1
    a = (L - 1) / (L + 1)
    lams = [1e-2, 1e-4, 1e-6, 1e-8]
    small, large = zip(*(ls.dnc_critical_scales(K, L, lam, n) for lam in lams))
    assert all(np.diff(large) > 2.0)  # grows by ~log(100) per step
    # Eq. 19 at large s: s = log(1/lam) + a log s - log(n)/(L+1) + O(e^{-s})
    for lam, s in zip(lams, large):
        assert s == pytest.approx(np.log(1 / lam) + a * np.log(s), abs=K * np.exp(-s) + 1e-12)
    # Eq. 19 at small s: s^a = lam n^{1/(L+1)} (e^s + K - 1) -> s ~ (lam K n^{1/(L+1)})^{1/a}
    assert small[-1] == pytest.approx((lams[-1] * K) ** (1 / a), rel=1e-6)
    assert all(np.diff(small) < 0)


def test_threshold_separates_two_one_and_no_critical_scales():
    K, L, n = 5, 2, 3
    lam_max, s_star = ls.lam_threshold("dnc", K, L, n)
    a = (L - 1) / (L + 1)
    assert a * (np.exp(s_star) + K - 1) == pytest.approx(s_star * np.exp(s_star), rel=1e-13)
    grid = np.linspace(0.01, 10, 200001)
    g = ls.critical_scale_equation("dnc", grid, K, L, n)
    assert lam_max >= g.max() and lam_max == pytest.approx(g.max(), rel=1e-9)
    below = ls.dnc_critical_scales(K, L, lam_max * (1 - 1e-6), n)
    assert len(below) == 2 and below[0] < s_star < below[1]
    assert ls.dnc_critical_scales(K, L, lam_max * (1 + 1e-9), n) == []


def test_one_layer_has_a_single_critical_scale():
    K, n = 4, 4
    assert ls.lam_threshold("dnc", K, 1, n)[0] == pytest.approx(1 / (np.sqrt(n) * K), rel=1e-12)
    assert len(ls.dnc_critical_scales(K, 1, 0.1, n)) == 1
    assert ls.dnc_critical_scales(K, 1, 0.13, n) == []
    with pytest.raises(ValueError, match="no small critical scale"):
        ls.dnc_critical_point(K, 1, 0.1, n, 4, which="small")


def test_pairs_for_two_classes_are_dnc_at_half_the_scale():
    # K = 2: s (I - 11^T/2) = (s/2) [[1,-1],[-1,1]]
    for L in (1, 2, 4):
        d = ls.dnc_critical_scales(2, L, 0.01, 3)
        p = ls.pair_critical_scales(2, L, 0.01, 3)
        np.testing.assert_allclose(p, np.array(d) / 2, rtol=1e-12)


def test_large_dnc_scale_is_the_optimal_scale_when_dnc_beats_zero():
    K, L, lam, n = 4, 3, 1e-3, 2
    s_opt, _ = optimal_scale(dnc_structure(K), L, lam, n)
    assert ls.dnc_critical_scales(K, L, lam, n)[1] == pytest.approx(s_opt, rel=1e-10)


def test_theorem4_large_dnc_point_has_no_negative_eigenvalue_small_one_is_a_strict_saddle():
    K, L, lam, n, width = 4, 3, 1e-3, 1, 4
    small, large = ls.critical_point_report(K, L, lam, n, width)
    assert (small["which"], large["which"]) == ("small", "large")
    assert large["max_abs_grad"] < 1e-9 and small["max_abs_grad"] < 1e-9
    assert large["n_negative"] == 0
    assert large["min_eig"] > -1e-12 * large["spectral"]
    assert small["n_negative"] > 0
    assert small["min_eig"] < -lam  # clearly negative, not round-off
    assert small["loss"] > large["loss"]


def test_theorem4_needs_small_lam_large_point_is_a_saddle_near_the_threshold():
    K, L, n, width = 4, 3, 1, 4
    lam_max, s_star = ls.lam_threshold("dnc", K, L, n)
    small, large = ls.critical_point_report(K, L, 0.9 * lam_max, n, width)
    assert large["max_abs_grad"] < 1e-9 and large["scale"] > s_star
    assert large["n_negative"] > 0 and large["min_eig"] < -1e-3


def test_theorem4_holds_with_padding_width_and_several_samples():
    rows = ls.critical_point_report(3, 2, 1e-2, 2, 5, method="lanczos")
    assert rows[-1]["n_negative"] == 0 and rows[-1]["min_eig"] > -1e-12 * rows[-1]["spectral"]
    assert rows[0]["n_negative"] > 0


def test_theorem6_norms_vanish_and_ratio_tends_to_the_limit():
    K, L, n, width = 4, 2, 1, 4
    lams = [1e-3, 1e-5, 1e-8]
    rows = ls.flatness_ratio(K, L, lams, n, width)
    lim = ls.flatness_limit(K, L, n, width)
    assert lim["ratio"]["spectral"] == pytest.approx(1.0, rel=1e-10)
    for norm in ("frobenius", "spectral", "trace"):
        vals = [r[f"{norm}_dnc"] for r in rows]
        assert all(np.diff(vals) < 0) and vals[-1] < 1e-4 * vals[0]  # flatness metrics -> 0
        # each norm ~ n lam s times a fixed constant (App. B.8)
        # (corrections O(1/s): e.g. the lam I term adds P lam to the trace)
        for st in ("dnc", "pairs"):
            dev = [abs(r[f"{norm}_{st}"] / (n * r["lam"] * r[f"s_{st}"]) / lim[st][norm] - 1) for r in rows]
            assert dev[0] > dev[1] > dev[2] and dev[2] < 0.2
        err = [abs(r[f"{norm}_ratio"] - lim["ratio"][norm]) for r in rows]
        assert err[0] > err[1] > err[2] and err[2] < 0.06  # O(1/log(1/lam)) convergence
    # the constant depends on the norm
    assert rows[0]["trace_ratio"] != pytest.approx(rows[0]["spectral_ratio"], rel=1e-3)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="lam"):
        ls.dnc_critical_scales(4, 3, 0.0)
    with pytest.raises(ValueError, match="even K"):
        ls.pair_critical_scales(5, 3, 1e-3)
    with pytest.raises(ValueError, match="which"):
        ls.dnc_critical_point(4, 3, 1e-3, 1, 4, which="middle")
    with pytest.raises(ValueError, match="no critical scale"):
        ls.dnc_critical_point(4, 3, 1.0, 1, 4)
    with pytest.raises(ValueError, match="K must"):
        ls.dnc_critical_scales(1, 3, 1e-3)


