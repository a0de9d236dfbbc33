"""ResNet-20, the CIFAR variant of He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition"
(CVPR 2016), Sec. 4.2, in Flax NNX. It is the backbone of the real-network experiments
(Súkeník et al. 2024, Fig. 2; Garrod & Keating, Sec. 5): its output is the feature matrix H_1.

Architecture (He et al., Sec. 4.2, n = 3 blocks per stage, 6n + 2 = 20 weight layers):

    conv3x3(C_in -> c_1) - BN - ReLU
    stage 1: 3 basic blocks, c_1 channels, stride 1
    stage 2: 3 basic blocks, c_2 channels, stride 2 in the first block
    stage 3: 3 basic blocks, c_3 channels, stride 2 in the first block
    global average pooling -> c_3-dim features (c = (16, 32, 64): 64-dim H_1)

Basic block: conv3x3 - BN - ReLU - conv3x3 - BN, plus the shortcut, then ReLU. Convolutions have no
bias (BatchNorm follows) and pad 1 pixel on every side, as the PyTorch reference does, so a stride-2
output pixel i sits over input pixel 2i.

Shortcuts where the shape changes: option "A" (the default, the one He et al. use for CIFAR,
Sec. 4.2): the identity subsampled with stride 2 (x[:, ::2, ::2]) and zero-padded to the new channel
count; it has no parameters, so ResNet-20 has 0.27M parameters (269,722 with a 10-way linear
classifier, 269,072 without). Option "B": a 1x1 strided convolution + BatchNorm (He et al., Sec. 3.3).

Input NHWC, any spatial size that survives two stride-2 stages: CIFAR 32x32x3 (-> 8x8 in stage 3),
MNIST 28x28x1 (-> 7x7). BatchNorm uses batch statistics when `train=True` and its running averages
otherwise (running mean/var with `bn_momentum`, Flax convention: new = m * old + (1 - m) * batch).
"""

from __future__ import annotations

from typing import Literal, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from .init import he_normal

SHORTCUTS = ("A", "B")
_PAD1 = ((1, 1), (1, 1))


def _conv3x3(c_in: int, c_out: int, stride: int, rngs: nnx.Rngs, dtype) -> nnx.Conv:
    return nnx.Conv(c_in, c_out, (3, 3), strides=stride, padding=_PAD1, use_bias=False,
                    kernel_init=he_normal, dtype=dtype, param_dtype=dtype, rngs=rngs)


def _bn(c: int, momentum: float, rngs: nnx.Rngs, dtype) -> nnx.BatchNorm:
    return nnx.BatchNorm(c, momentum=momentum, epsilon=1e-5, dtype=dtype, param_dtype=dtype, rngs=rngs)


def shortcut_a(x: jax.Array, c_out: int, stride: int) -> jax.Array:
    """Option-A shortcut (He et al. 2016, Sec. 3.3 and 4.2): strided identity, zero-padded channels.

    x is NHWC; the output has spatial size ceil(H/stride) and c_out channels, the new ones zero.
    """
    if stride > 1:
        x = x[:, ::stride, ::stride, :]
    extra = c_out - x.shape[-1]
    if extra < 0:
        raise ValueError(f"c_out: option-A shortcut can only add channels, got {x.shape[-1]} -> {c_out}")
    if extra:
        lo = extra // 2
        x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (lo, extra - lo)))
    return x


class BasicBlock(nnx.Module):
    """conv3x3-BN-ReLU-conv3x3-BN + shortcut, ReLU (He et al. 2016, Fig. 2)."""

    def __init__(self, c_in: int, c_out: int, stride: int, shortcut: str, bn_momentum: float,
                 *, rngs: nnx.Rngs, dtype=jnp.float32):
        self.c_out, self.stride, self.shortcut = c_out, stride, shortcut
        self.conv1 = _conv3x3(c_in, c_out, stride, rngs, dtype)
        self.bn1 = _bn(c_out, bn_momentum, rngs, dtype)
        self.conv2 = _conv3x3(c_out, c_out, 1, rngs, dtype)
        self.bn2 = _bn(c_out, bn_momentum, rngs, dtype)
        self.use_projection = shortcut == "B" and (stride != 1 or c_in != c_out)
        if self.use_projection:
            self.projection = nnx.Conv(c_in, c_out, (1, 1), strides=stride, padding="VALID", use_bias=False,
                                       kernel_init=he_normal, dtype=dtype,
                                       param_dtype=dtype, rngs=rngs)
            self.projection_bn = _bn(c_out, bn_momentum, rngs, dtype)

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        ura = not train
        out = jax.nn.relu(self.bn1(self.conv1(x), use_running_average=ura))
        out = self.bn2(self.conv2(out), use_running_average=ura)
        if self.use_projection:
            sc = self.projection_bn(self.projection(x), use_running_average=ura)
        else:
            sc = shortcut_a(x, self.c_out, self.stride)
        return jax.nn.relu(out + sc)


class ResNet20(nnx.Module):
    """ResNet-20 backbone (He et al. 2016, Sec. 4.2): images (B, H, W, C_in) -> features (B, c_3).

    `channels` = (c_1, c_2, c_3), default (16, 32, 64); smaller values give width-reduced variants for
    tests. `blocks` = basic blocks per stage (3 for ResNet-20; 6n+2 layers in general).
    """

    def __init__(self, in_channels: int, *, channels: Sequence[int] = (16, 32, 64), blocks: int = 3,
                 shortcut: Literal["A", "B"] = "A", bn_momentum: float = 0.9, rngs: nnx.Rngs,
                 dtype=jnp.float32):
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        if len(channels) != 3 or any(int(c) < 1 for c in channels):
            raise ValueError(f"channels must be 3 positive ints (c_1, c_2, c_3), got {tuple(channels)}")
        if shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {shortcut!r}")
        if blocks < 1:
            raise ValueError(f"blocks must be >= 1 per stage, got {blocks}")
        if not 0 <= bn_momentum < 1:
            raise ValueError(f"bn_momentum must be in [0, 1), got {bn_momentum}")
        channels = tuple(int(c) for c in channels)
        if shortcut == "A" and not (channels[0] <= channels[1] <= channels[2]):
            raise ValueError(f"channels: option-A shortcuts need non-decreasing channels, got {channels}")
        self.in_channels = in_channels
        self.feature_dim = channels[-1]
        self.stem = _conv3x3(in_channels, channels[0], 1, rngs, dtype)
        self.stem_bn = _bn(channels[0], bn_momentum, rngs, dtype)
        layers = []
        c_prev = channels[0]
        for s, c in enumerate(channels):
            for b in range(blocks):
                stride = 2 if (s > 0 and b == 0) else 1
                layers.append(BasicBlock(c_prev, c, stride, shortcut, bn_momentum, rngs=rngs, dtype=dtype))
                c_prev = c
        self.layers = nnx.List(layers) if hasattr(nnx, "List") else layers

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if x.ndim != 4 or x.shape[-1] != self.in_channels:
            raise ValueError(f"x must be NHWC with C={self.in_channels}, got shape {x.shape}")
        h = jax.nn.relu(self.stem_bn(self.stem(x), use_running_average=not train))
        for block in self.layers:
            h = block(h, train)
        return jnp.mean(h, axis=(1, 2))


def count_params(module: nnx.Module) -> int:
    """Number of trainable scalars (nnx.Param leaves; BatchNorm running statistics excluded)."""
    return sum(int(p.size) for p in jax.tree.leaves(nnx.state(module, nnx.Param)))
