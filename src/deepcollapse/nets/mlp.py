"""A fully connected backbone on the pixels: images (B, H, W, C) -> features (B, d).

The smaller backbone that Garrod & Keating's and Súkeník et al.'s real-network claims can be tested
with on a CPU (`NetConfig.backbone = "mlp"`): the claims concern the MLP head on top of whatever
features the backbone learns under the DUFM-like regularisation, and a pixel MLP trains full-batch
in milliseconds per step where ResNet-20's convolution gradients take seconds on XLA:CPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx


class PixelMLP(nnx.Module):
    """Flatten, then Linear (with bias) + ReLU for each width in `widths`; features = last width.

    Weights N(0, init_scale^2 / fan_in) truncated at two standard deviations (init_scale 1: Flax's
    LeCun normal), biases zero. A smaller init_scale starts the features, and so the DUFM-like
    penalty lam_H/2 ||H_1||^2 on them, smaller (init_scale^2 times).
    """

    def __init__(self, in_shape: Sequence[int], widths: Sequence[int], *, rngs: nnx.Rngs, dtype=jnp.float32,
                 init_scale: float = 1.0):
        in_shape = tuple(int(s) for s in in_shape)
        if len(in_shape) != 3 or min(in_shape) < 1:
            raise ValueError(f"in_shape must be an image shape (H, W, C), got {in_shape}")
        if not widths or any(int(w) < 1 for w in widths):
            raise ValueError(f"widths must be one or more positive ints, got {tuple(widths)}")
        if not init_scale > 0:
            raise ValueError(f"init_scale must be > 0, got {init_scale}")
        self.in_shape = in_shape
        kernel_init = nnx.initializers.variance_scaling(float(init_scale) ** 2, "fan_in", "truncated_normal")
        dims = [in_shape[0] * in_shape[1] * in_shape[2], *(int(w) for w in widths)]
        layers = [nnx.Linear(a, b, kernel_init=kernel_init, rngs=rngs, dtype=dtype, param_dtype=dtype) for a, b in zip(dims[:-1], dims[1:])]
        self.layers = nnx.List(layers) if hasattr(nnx, "List") else layers
        self.feature_dim = dims[-1]

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"x must be (B, {', '.join(map(str, self.in_shape))}), got shape {x.shape}")
        h = x.reshape(x.shape[0], -1)
        for layer in self.layers:
            h = jax.nn.relu(layer(h))
        return h
