"""MLP head: the DUFM forward pass on backbone features."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from deepcollapse import dufm
from deepcollapse.nets.head import MLPHead


@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_head_features_match_dufm_and_numpy(activation):
    d_in, K, L, width, B = 5, 3, 3, 4, 7
    head = MLPHead(d_in, K, L, width, activation, rngs=nnx.Rngs(0))
    W = head.weights()
    assert [w.shape for w in W] == [(4, 5), (4, 4), (3, 4)]
    h = np.random.default_rng(0).standard_normal((B, d_in)).astype(np.float32)
    Hs, Zs = head.features(jnp.asarray(h.T))
    Hd, Zd = dufm.forward({"W": W}, activation, H1=jnp.asarray(h.T))
    for a, b in zip(Hs + Zs, Hd + Zd):
        np.testing.assert_array_equal(a, b)
    # by hand
    act = (lambda z: np.maximum(z, 0)) if activation == "relu" else (lambda z: z)
    Wn = [np.asarray(w, np.float64) for w in W]
    H1 = h.T.astype(np.float64)
    Z1 = Wn[0] @ H1
    Z2 = Wn[1] @ act(Z1)
    Z3 = Wn[2] @ act(Z2)
    for got, want in zip(Zs, [Z1, Z2, Z3]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(Hs[1], act(Z1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(head(jnp.asarray(h)), Z3.T, rtol=1e-5, atol=1e-5)


def test_single_layer_head_and_init_scale():
    head = MLPHead(64, 10, 1, 32, rngs=nnx.Rngs(1))
    (W,) = head.weights()
    assert W.shape == (10, 64)
    assert abs(float(jnp.std(W)) - 1 / 8) < 0.02  # 1/sqrt(fan_in), 640 entries
    head2 = MLPHead(64, 10, 1, 32, init_scale=0.01, rngs=nnx.Rngs(1))
    assert abs(float(jnp.std(head2.weights()[0])) - 0.01) < 0.002


def test_head_bad_arguments():
    with pytest.raises(ValueError, match="activation"):
        MLPHead(4, 3, 2, 4, "tanh", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="L must be"):
        MLPHead(4, 3, 0, 4, rngs=nnx.Rngs(0))
