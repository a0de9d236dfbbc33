"""Gaussian initialisers drawn with NumPy from a JAX key.

Every fresh shape passed to `jax.random.normal` compiles a small program (about 0.2 s on CPU), which
made building ResNet-20 take seconds; drawing with NumPy's PCG64 seeded by the key's bits is
deterministic in the key and costs nothing to compile. The numbers differ from jax.random's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def _seed_of(key: jax.Array) -> np.ndarray:
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.asarray(key, dtype=np.uint32).ravel()


def gaussian(key: jax.Array, shape, std: float, dtype=jnp.float32) -> jax.Array:
    """Entries i.i.d. N(0, std^2), determined by `key`."""
    rng = np.random.default_rng(_seed_of(key))
    return jnp.asarray(std * rng.standard_normal(tuple(shape)), dtype)


def he_normal(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    """Conv kernels (kh, kw, c_in, c_out) with entries N(0, 2/fan_in), fan_in = kh kw c_in
    (He et al. 2015, "Delving deep into rectifiers", Eq. 10; the initialisation of ResNet,
    He et al. 2016, Sec. 3.4)."""
    fan_in = int(np.prod(shape[:-1]))
    return gaussian(key, shape, float(np.sqrt(2.0 / fan_in)), dtype)
