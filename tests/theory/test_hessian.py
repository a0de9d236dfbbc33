"""Tests of deepcollapse.theory.hessian: dense Hessians, HVPs, Lanczos, spectrum summaries."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepcollapse import dufm
from deepcollapse.theory import hessian as hs


def _sym(rng, eigs):
    Q, _ = np.linalg.qr(rng.standard_normal((len(eigs), len(eigs))))
    return (Q * np.asarray(eigs)) @ Q.T


def _quadratic(A, b):
    """f(p) = 1/2 x^T A x + b^T x with x = concat(p["a"].ravel(), p["b"]) (ravel_pytree order)."""

    def f(p):
        x = jnp.concatenate([p["a"].ravel(), p["b"]])
        return 0.5 * x @ (jnp.asarray(A) @ x) + jnp.asarray(b) @ x

    return f


@pytest.fixture(scope="module")
def small_model():
    """A random point of the linear CE L-DUFM (K=3, L=2, n=2, d=4): 24 + 16 + 12 = 52 parameters."""
    K, L, n, d = 3, 2, 2, 4
    params = dufm.init_params(jax.random.PRNGKey(0), [d] * L, K, K * n, 0.7, jnp.float64)
    Y = jnp.asarray(dufm.one_hot([n] * K))
    hyp = dufm.hyper(0.01, 0.01, L)
    return (lambda p: dufm.total_loss(p, Y, hyp, "linear", "ce")), params


def test_dense_hessian_of_quadratic_is_its_matrix():
    rng = np.random.default_rng(1)
    A = _sym(rng, rng.standard_normal(7))
    b = rng.standard_normal(7)
    params = {"a": jnp.zeros((2, 2)), "b": jnp.ones(3)}
    H = hs.dense_hessian(_quadratic(A, b), params)
    np.testing.assert_allclose(H, A, atol=1e-13)


def test_hvp_matches_finite_differences_of_gradient(small_model):
    f, params = small_model
    f_flat, x0, _ = hs.flat_function(f, params)
    v = np.random.default_rng(2).standard_normal(x0.size)
    hv = np.asarray(hs.hvp(f, params)(v))
    g = jax.grad(f_flat)
    h = 1e-5
    fd = (np.asarray(g(x0 + h * v)) - np.asarray(g(x0 - h * v))) / (2 * h)
    np.testing.assert_allclose(hv, fd, rtol=1e-6, atol=1e-9 * np.abs(hv).max())
    np.testing.assert_allclose(hv, hs.dense_hessian(f, params) @ v, rtol=1e-10, atol=1e-13)


def test_lanczos_extremes_match_dense_on_small_model(small_model):
    f, params = small_model
    eig = np.linalg.eigvalsh(hs.dense_hessian(f, params))
    res = hs.lanczos_eigs(hs.hvp(f, params), eig.size, k=2, seed=3)
    np.testing.assert_allclose(res.smallest, eig[:2], rtol=1e-6, atol=1e-10 * np.abs(eig).max())
    np.testing.assert_allclose(res.largest, eig[::-1][:2], rtol=1e-6)


def test_lanczos_full_run_recovers_multiplicities_by_restarting():
    # 3 distinct eigenvalues: a single Krylov space breaks down after 3 steps
    eigs = np.array([-2.0] * 4 + [0.0] * 5 + [3.0] * 3)
    A = _sym(np.random.default_rng(4), eigs)
    res = hs.lanczos_eigs(lambda v: A @ np.asarray(v), 12, k=1, seed=0)
    assert res.restarts >= 2
    np.testing.assert_allclose(res.ritz, np.sort(eigs), atol=1e-10)


def test_lanczos_partial_run_finds_well_separated_extremes():
    rng = np.random.default_rng(5)
    eigs = np.concatenate([[-5.0, -4.0], rng.uniform(-1, 1, 296), [6.0, 7.0]])
    A = _sym(rng, eigs)
    res = hs.lanczos_eigs(lambda v: A @ np.asarray(v), 300, k=2, n_iter=80, seed=1)
    assert res.n_iter == 80
    np.testing.assert_allclose(res.smallest, [-5.0, -4.0], rtol=1e-8)
    np.testing.assert_allclose(res.largest, [7.0, 6.0], rtol=1e-8)


def test_lanczos_is_deterministic_in_seed(small_model):
    f, params = small_model
    hv = hs.hvp(f, params)
    a = hs.lanczos_eigs(hv, 52, k=1, n_iter=10, seed=7)
    b = hs.lanczos_eigs(hv, 52, k=1, n_iter=10, seed=7)
    np.testing.assert_array_equal(a.ritz, b.ritz)


def test_spectrum_summary_dense_and_lanczos_agree_on_indefinite_quadratic():
    rng = np.random.default_rng(6)
    eigs = np.array([-3.0, -1.0, -0.5, 1e-14, 0.2, 1.0, 2.0, 4.0])
    A = _sym(rng, eigs)
    params = {"a": jnp.zeros((1, 5)), "b": jnp.zeros(3)}
    f = _quadratic(A, np.zeros(8))
    d = hs.spectrum_summary(f, params, method="dense")
    lz = hs.spectrum_summary(f, params, method="lanczos")
    for S in (d, lz):
        assert S["n_negative"] == 3
        assert S["min_eig"] == pytest.approx(-3.0, rel=1e-10)
        assert S["max_eig"] == pytest.approx(4.0, rel=1e-10)
        assert S["spectral"] == pytest.approx(4.0, rel=1e-10)
        assert S["trace"] == pytest.approx(eigs.sum(), abs=1e-12)
        assert S["frobenius"] == pytest.approx(np.sqrt(np.sum(eigs**2)), rel=1e-12)
        assert S["trace_method"] == "exact"
    assert d["nuclear"] == pytest.approx(np.abs(eigs).sum(), rel=1e-12)
    assert d["method"] == "dense" and lz["method"] == "lanczos"


def test_hutchinson_is_exact_for_a_diagonal_hessian():
    # Rademacher v: v^T D v = tr D and ||D v||^2 = ||D||_F^2 for every sample
    dvals = np.array([1.0, -2.0, 3.5, 0.25, 5.0])
    A = np.diag(dvals)
    params = {"a": jnp.zeros((1, 2)), "b": jnp.zeros(3)}
    S = hs.spectrum_summary(_quadratic(A, np.zeros(5)), params, method="lanczos", exact_max_dim=0,
                            hutchinson_samples=3)
    assert S["trace_method"] == "hutchinson-3"
    assert S["trace"] == pytest.approx(dvals.sum(), rel=1e-12)
    assert S["frobenius"] == pytest.approx(np.linalg.norm(dvals), rel=1e-12)


def test_bad_arguments_raise():
    params = {"a": jnp.zeros((1, 2)), "b": jnp.zeros(1)}
    f = _quadratic(np.eye(3), np.zeros(3))
    with pytest.raises(ValueError, match="method"):
        hs.spectrum_summary(f, params, method="power")
    with pytest.raises(ValueError, match="n_iter"):
        hs.lanczos_eigs(lambda v: v, 3, n_iter=5)
    with pytest.raises(ValueError, match="k must"):
        hs.lanczos_eigs(lambda v: v, 3, k=0)
