"""ResNet-20 backbone: parameter count from the architecture, shapes, shortcuts, BatchNorm modes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from deepcollapse.nets.resnet import ResNet20, count_params, shortcut_a


def expected_params(c_in, channels=(16, 32, 64), blocks=3, shortcut="A"):
    """He et al. (2016), Sec. 4.2, counted by hand: 3x3 convs without bias, BN scale + bias."""
    conv = lambda a, b, k=3: k * k * a * b
    bn = lambda c: 2 * c
    total = conv(c_in, channels[0]) + bn(channels[0])
    prev = channels[0]
    for c in channels:
        for b in range(blocks):
            total += conv(prev, c) + bn(c) + conv(c, c) + bn(c)
            if shortcut == "B" and prev != c:
                total += conv(prev, c, 1) + bn(c)
            prev = c
    return total


def test_resnet20_parameter_count_cifar_option_a():
    m = ResNet20(3, rngs=nnx.Rngs(0))
    assert count_params(m) == expected_params(3)
    # the paper's "0.27M" includes a 64 -> 10 linear classifier (64*10 + 10)
    assert count_params(m) + 650 == 269_722


@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_parameter_count_mnist_and_option_b(shortcut):
    m = ResNet20(1, channels=(4, 8, 16), shortcut=shortcut, rngs=nnx.Rngs(0))
    assert count_params(m) == expected_params(1, (4, 8, 16), shortcut=shortcut)


@pytest.mark.parametrize("shape", [(2, 32, 32, 3), (2, 28, 28, 1)])
def test_output_shapes(shape):
    m = ResNet20(shape[-1], rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.PRNGKey(1), shape, jnp.float32)
    for train in (True, False):
        h = m(x, train=train)
        assert h.shape == (2, 64) and h.dtype == jnp.float32
        assert bool(jnp.all(h >= 0))  # average of ReLU outputs
    with pytest.raises(ValueError, match="NHWC"):
        m(jnp.zeros((2, shape[1], shape[2], shape[3] + 1), jnp.float32))


def test_shortcut_a_subsamples_and_zero_pads():
    x = jnp.arange(2 * 4 * 4 * 2, dtype=jnp.float32).reshape(2, 4, 4, 2)
    y = shortcut_a(x, 6, 2)
    assert y.shape == (2, 2, 2, 6)
    np.testing.assert_array_equal(y[..., 2:4], x[:, ::2, ::2, :])
    np.testing.assert_array_equal(y[..., :2], 0)
    np.testing.assert_array_equal(y[..., 4:], 0)
    np.testing.assert_array_equal(shortcut_a(x, 2, 1), x)


def test_batchnorm_modes():
    """Eval mode (running statistics): a sample's features do not depend on its batch; train mode
    (batch statistics) they do, and only train mode moves the running averages."""
    m = ResNet20(1, channels=(2, 2, 4), rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.PRNGKey(2), (3, 8, 8, 1), jnp.float32)
    mean0 = np.asarray(m.stem_bn.mean[...])
    alone = m(x[:1], train=False)
    together = m(x, train=False)
    np.testing.assert_allclose(alone[0], together[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(m.stem_bn.mean[...], mean0)
    a = m(x[:2], train=True)
    b = m(x, train=True)
    assert not np.allclose(a[0], b[0])
    assert not np.allclose(m.stem_bn.mean[...], mean0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="shortcut"):
        ResNet20(3, shortcut="C", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="channels"):
        ResNet20(3, channels=(16, 32), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="non-decreasing"):
        ResNet20(3, channels=(8, 4, 4), rngs=nnx.Rngs(0))
