"""The real network of the experiments: ResNet-20 (or pixel-MLP) backbone -> features H_1 -> L-layer MLP head.

SPEC.md, "Real networks"; Súkeník et al. (2024), Sec. 5; Garrod & Keating, Sec. 5. `features` returns
the head's features as columns, (Hs, Zs) with Hs = [H_1..H_L], Zs = [Z_1..Z_L] (Z_L = logits, K x B),
exactly as `deepcollapse.dufm.forward`, with H_1 = backbone(x)^T.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from deepcollapse.config import NetConfig
from .head import MLPHead
from .mlp import PixelMLP
from .resnet import ResNet20


class Net(nnx.Module):
    """ResNet-20 or a pixel MLP (`backbone`) + MLP head (`head`)."""

    def __init__(self, backbone: ResNet20 | PixelMLP, head: MLPHead):
        if head.W[0].shape[1] != backbone.feature_dim:
            raise ValueError(f"head: W_1 must take the backbone's {backbone.feature_dim} features, "
                             f"got W_1 of shape {head.W[0].shape}")
        self.backbone = backbone
        self.head = head

    def features(self, x: jax.Array, train: bool = False) -> tuple[list, list]:
        """(Hs, Zs) of images x (B, H, W, C); BatchNorm in batch-statistics mode iff `train`."""
        return self.head.features(self.backbone(x, train).T)

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Logits (B x K)."""
        return self.features(x, train)[1][-1].T


def build_net(cfg: NetConfig, in_shape, K: int, seed: int) -> Net:
    """The network of `cfg` for K classes, initialised from `seed`. in_shape: the image shape (H, W, C),
    or for a ResNet backbone just the number of input channels C."""
    rngs = nnx.Rngs(params=jax.random.PRNGKey(seed))
    if cfg.backbone == "mlp":
        if isinstance(in_shape, int):
            raise ValueError("the pixel-MLP backbone needs the image shape (H, W, C), got only the channels")
        backbone = PixelMLP(in_shape, cfg.mlp_widths, rngs=rngs, dtype=jnp.float32,
                            init_scale=1.0 if cfg.mlp_init_scale is None else cfg.mlp_init_scale)
    else:
        in_channels = in_shape if isinstance(in_shape, int) else int(in_shape[-1])
        backbone = ResNet20(in_channels, channels=cfg.channels, shortcut=cfg.shortcut, bn_momentum=cfg.bn_momentum,
                            rngs=rngs, dtype=jnp.float32)
    head = MLPHead(backbone.feature_dim, K, cfg.L, cfg.width, cfg.activation, cfg.head_init_scale, rngs=rngs,
                   dtype=jnp.float32)
    return Net(backbone, head)
