"""Batched data augmentation on device: random crop after zero padding + random horizontal flip.

The standard CIFAR augmentation of He et al. (2016), Sec. 4.2 ("4 pixels are padded on each side, and
a 32x32 crop is randomly sampled from the padded image or its horizontal flip"), applied to a whole
NHWC batch at once inside the compiled training step (airbench style: no loader).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def random_crop_flip(key: jax.Array, x: jax.Array, pad: int = 4, flip: bool = True) -> jax.Array:
    """Per-sample random crop of the zero-padded batch x (B, H, W, C) back to (H, W), then a flip
    of each image left-right with probability 1/2 (if `flip`). pad = 0 with flip=False is the identity.
    """
    if x.ndim != 4:
        raise ValueError(f"x must be an NHWC batch, got shape {x.shape}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    B, H, W, C = x.shape
    k_i, k_j, k_f = jax.random.split(key, 3)
    if pad:
        xp = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        i = jax.random.randint(k_i, (B,), 0, 2 * pad + 1)
        j = jax.random.randint(k_j, (B,), 0, 2 * pad + 1)
        x = jax.vmap(lambda img, a, b: jax.lax.dynamic_slice(img, (a, b, 0), (H, W, C)))(xp, i, j)
    if flip:
        f = jax.random.bernoulli(k_f, 0.5, (B,))
        x = jnp.where(f[:, None, None, None], x[:, :, ::-1, :], x)
    return x
