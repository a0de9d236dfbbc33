"""The L-DUFM loss: closed values at known points and gradients against finite differences (float64)."""
import jax.flatten_util  # noqa: F401

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepcollapse import dufm


def _params(key, widths, K, N, scale=0.5):
    return dufm.init_params(key, widths, K, N, scale, jnp.float64)


def test_one_hot_and_labels():
    Y = dufm.one_hot([2, 1, 3])
    assert Y.shape == (3, 6)
    np.testing.assert_array_equal(Y.argmax(0), [0, 0, 1, 2, 2, 2])
    np.testing.assert_array_equal(dufm.one_hot([2] * 3), np.kron(np.eye(3), np.ones((1, 2))))


def test_forward_shapes_and_relu():
    p = _params(jax.random.PRNGKey(0), [4, 5, 6], 3, 7)
    Hs, Zs = dufm.forward(p, "relu")
    assert [H.shape for H in Hs] == [(4, 7), (5, 7), (6, 7)]
    assert [Z.shape for Z in Zs] == [(5, 7), (6, 7), (3, 7)]
    np.testing.assert_allclose(Hs[1], np.maximum(Zs[0], 0))
    np.testing.assert_allclose(Hs[0], p["H1"])  # H_1 is not passed through the activation
    HsL, ZsL = dufm.forward(p, "linear")
    np.testing.assert_allclose(ZsL[-1], p["W"][2] @ p["W"][1] @ p["W"][0] @ p["H1"], rtol=1e-12)


def test_loss_at_zero_parameters():
    """All-zero output: MSE fit = ||Y||^2/(2N) = 1/2, CE fit = log K; no regularisation."""
    K, sizes = 4, [2, 3, 1, 2]
    p = jax.tree.map(jnp.zeros_like, _params(jax.random.PRNGKey(1), [5, 5], K, sum(sizes)))
    Y = jnp.asarray(dufm.one_hot(sizes))
    h = dufm.hyper(0.3, [0.1, 0.2])
    assert float(dufm.total_loss(p, Y, h, "relu", "mse")) == pytest.approx(0.5, rel=1e-14)
    assert float(dufm.total_loss(p, Y, h, "linear", "ce")) == pytest.approx(np.log(K), rel=1e-14)


def test_reg_terms_per_factor():
    p = _params(jax.random.PRNGKey(2), [3, 4], 2, 5)
    h = dufm.hyper(0.5, [0.1, 0.7])
    reg = np.asarray(dufm.reg_terms(p, h))
    expect = [0.25 * np.sum(p["H1"] ** 2), 0.05 * np.sum(p["W"][0] ** 2), 0.35 * np.sum(p["W"][1] ** 2)]
    np.testing.assert_allclose(reg, expect, rtol=1e-14)


@pytest.mark.parametrize("activation", ["relu", "linear"])
@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_gradient_matches_finite_differences(activation, loss):
    K, sizes, widths = 3, [2, 1, 2], [4, 5, 4]
    p = _params(jax.random.PRNGKey(3), widths, K, sum(sizes))
    Y = jnp.asarray(dufm.one_hot(sizes))
    h = dufm.hyper(0.01, [0.02, 0.03, 0.04])
    flat, unravel = jax.flatten_util.ravel_pytree(p)
    f = lambda x: dufm.total_loss(unravel(x), Y, h, activation, loss)  # noqa: E731
    g = np.asarray(jax.grad(f)(flat))
    rng = np.random.default_rng(0)
    for _ in range(5):
        v = rng.standard_normal(flat.shape)
        v /= np.linalg.norm(v)
        eps = 1e-6
        fd = (float(f(flat + eps * v)) - float(f(flat - eps * v))) / (2 * eps)
        assert fd == pytest.approx(float(g @ v), rel=1e-6, abs=1e-9)


def test_fixed_features_mlp():
    """An MLP on fixed data is the DUFM with H_1 given: same loss, no H_1 penalty."""
    K, sizes = 3, [2, 2, 2]
    p = _params(jax.random.PRNGKey(4), [4, 4], K, 6)
    X = p.pop("H1")
    Y = jnp.asarray(dufm.one_hot(sizes))
    h = dufm.hyper(10.0, [0.1, 0.1])
    total, fit, reg = dufm.loss_terms(p, Y, h, "relu", "mse", H1=X)
    assert float(reg[0]) == 0.0
    full = dict(p, H1=X)
    _, fit_full, _ = dufm.loss_terms(full, Y, h, "relu", "mse")
    assert float(fit) == pytest.approx(float(fit_full), rel=1e-14)


def test_residual_forward_skips_and_adds():
    """Residual layers 2..L-1: H_{l+1} = H_l + act(W_l H_l); with W_2 = W_3 = 0 the features pass
    through unchanged (H_4 = H_2), and the loss of the residual model differs from the plain one."""
    import jax.numpy as jnp

    from deepcollapse import dufm

    rng = np.random.default_rng(0)
    K, N, d = 3, 6, 5
    H1 = jnp.asarray(rng.standard_normal((d, N)))
    W = [jnp.asarray(rng.standard_normal((d, d))) for _ in range(3)] + [jnp.asarray(rng.standard_normal((K, d)))]
    p = {"H1": H1, "W": tuple(W)}
    Hs, Zs = dufm.forward(p, "relu", residual=True)
    H2 = jnp.maximum(W[0] @ H1, 0)
    H3 = H2 + jnp.maximum(W[1] @ H2, 0)
    H4 = H3 + jnp.maximum(W[2] @ H3, 0)
    np.testing.assert_allclose(np.asarray(Hs[3]), np.asarray(H4), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(Zs[3]), np.asarray(W[3] @ H4), rtol=1e-12)
    zero = {"H1": H1, "W": (W[0], 0 * W[1], 0 * W[2], W[3])}
    Hz, _ = dufm.forward(zero, "relu", residual=True)
    np.testing.assert_allclose(np.asarray(Hz[3]), np.asarray(H2), rtol=1e-12)
    Y = jnp.asarray(dufm.one_hot([2] * K))
    hyp = dufm.hyper(1e-3, 1e-3, 4)
    plain = float(dufm.total_loss(p, Y, hyp, "relu", "mse"))
    res = float(dufm.loss_terms(p, Y, hyp, "relu", "mse", residual=True)[0])
    assert res != pytest.approx(plain)


def test_residual_config_keeps_old_ids_and_checks_widths():
    from deepcollapse.config import DUFMConfig

    base = DUFMConfig(K=3, n=2, L=4, width=4, seeds=1)
    assert DUFMConfig(K=3, n=2, L=4, width=4, seeds=1, residual=None).run_id() == base.run_id()
    assert DUFMConfig(K=3, n=2, L=4, width=4, seeds=1, residual=True).run_id() != base.run_id()
    with pytest.raises(ValueError, match="residual"):
        DUFMConfig(K=3, n=2, L=4, width=[4, 4, 5, 4], seeds=1, residual=True)
    DUFMConfig(K=3, n=2, L=4, width=[6, 4, 4, 4], seeds=1, residual=True)  # d_1 may differ
