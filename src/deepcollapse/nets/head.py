"""The MLP head on top of the backbone: the DUFM's layers W_1..W_L applied to real features.

SPEC.md, "Real networks" and "The deep unconstrained features model"; Súkeník et al. (2024), Sec. 5
(ResNet-20 + MLP head), Garrod & Keating, Sec. 5. The head is the L-DUFM with H_1 given by the
backbone instead of being free:

    Z_1 = W_1 H_1,  H_{l+1} = act(Z_l) (l = 1..L-1),  Z = Z_L = W_L H_L

W_1 is d x d_1 (d_1 = backbone feature dimension), W_2..W_{L-1} are d x d, W_L is K x d (L = 1: W_1 is
K x d_1). No biases, as in the DUFM. The forward pass is `deepcollapse.dufm.forward` on the view
{"W": (W_1, ..., W_L)}, so features are columns (d x B), as in the metrics.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from deepcollapse import dufm

from .init import gaussian

ACTIVATIONS = ("relu", "linear")


def head_dims(d_in: int, L: int, width: int, K: int) -> list[int]:
    """[d_1, d_2, ..., d_L, K]: d_1 = d_in, every hidden width = width (W_l is dims[l+1] x dims[l])."""
    return [d_in] + [width] * (L - 1) + [K]


class MLPHead(nnx.Module):
    """L bias-free layers W_1..W_L (W_l: d_{l+1} x d_l), activation relu or linear.

    Initialisation: entries N(0, init_scale^2); init_scale=None uses 1/sqrt(fan_in) per layer
    (LeCun normal), which keeps the feature scale through the layers.
    """

    def __init__(self, d_in: int, K: int, L: int, width: int, activation: str = "relu",
                 init_scale: float | None = None, *, rngs: nnx.Rngs, dtype=jnp.float32):
        if L < 1:
            raise ValueError(f"L must be >= 1 head layer, got {L}")
        if K < 2:
            raise ValueError(f"K must be >= 2 classes, got {K}")
        if d_in < 1 or width < 1:
            raise ValueError(f"d_in and width must be >= 1, got d_in={d_in}, width={width}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if init_scale is not None and not init_scale > 0:
            raise ValueError(f"init_scale must be > 0 or None (1/sqrt(fan_in)), got {init_scale}")
        self.activation = activation
        dims = head_dims(d_in, L, width, K)
        Ws = []
        for l in range(L):
            std = init_scale if init_scale is not None else 1.0 / dims[l] ** 0.5
            Ws.append(nnx.Param(gaussian(rngs.params(), (dims[l + 1], dims[l]), std, dtype)))
        self.W = nnx.List(Ws) if hasattr(nnx, "List") else Ws

    @property
    def L(self) -> int:
        return len(self.W)

    def weights(self) -> tuple[jax.Array, ...]:
        """(W_1, ..., W_L) as plain arrays: the DUFM parameter view {"W": weights()}."""
        return tuple(w[...] for w in self.W)

    def features(self, H1: jax.Array) -> tuple[list, list]:
        """(Hs, Zs) for features H1 given as columns (d_1 x B): Hs = [H_1..H_L], Zs = [Z_1..Z_L].

        The DUFM forward pass (`dufm.forward`) with H_1 = H1.
        """
        return dufm.forward({"W": self.weights()}, self.activation, H1=H1)

    def __call__(self, h: jax.Array) -> jax.Array:
        """Logits (B x K) of backbone features h given as rows (B x d_1)."""
        return self.features(h.T)[1][-1].T
