"""Batched random crop + flip."""

import jax
import jax.numpy as jnp
import numpy as np

from deepcollapse.nets.augment import random_crop_flip


def test_identity_without_padding_or_flip():
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 5, 5, 2))
    np.testing.assert_array_equal(random_crop_flip(jax.random.PRNGKey(1), x, pad=0, flip=False), x)


def test_every_output_is_a_window_of_the_padded_image_or_its_mirror():
    B, H, W, C, pad = 16, 5, 6, 1, 2
    x = np.arange(B * H * W * C, dtype=np.float32).reshape(B, H, W, C) + 1
    out = np.asarray(random_crop_flip(jax.random.PRNGKey(3), jnp.asarray(x), pad=pad))
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    flipped = 0
    for b in range(B):
        windows = [xp[b, i:i + H, j:j + W] for i in range(2 * pad + 1) for j in range(2 * pad + 1)]
        plain = any(np.array_equal(out[b], w) for w in windows)
        mirror = any(np.array_equal(out[b][:, ::-1], w) for w in windows)
        assert plain or mirror
        flipped += mirror and not plain
    assert 0 < flipped < B  # flips happen, but not to every image
