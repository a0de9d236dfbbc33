"""Feature maps to feature vectors: what a layer's output (B x C x ...) becomes before its statistics.

"avg": the mean over every axis after the channel axis (global average pooling; B x C x H x W ->
B x C, as the head of a ResNet sees it); "flatten": B x (C H W), every activation a coordinate
(dimension grows with the map: the second moment is then usually not kept); a callable: any
f(tensor) -> B x D. A B x D output passes through unchanged.
"""

from __future__ import annotations

POOLS = ("avg", "flatten")


def pool_features(t, pool="avg"):
    """B x D features of a layer's output `t` (a torch tensor with the batch axis first)."""
    import torch

    if not isinstance(t, torch.Tensor):
        raise TypeError(f"a collected layer must produce a tensor, got {type(t).__name__} "
                        "(pass pool=callable to pick one out of it)")
    if callable(pool):
        out = pool(t)
    elif t.ndim < 2:
        raise ValueError(f"a layer's output needs a batch axis and a feature axis, got shape {tuple(t.shape)}")
    elif pool == "avg":
        out = t if t.ndim == 2 else t.flatten(2).mean(dim=2)
    elif pool == "flatten":
        out = t.flatten(1)
    else:
        raise ValueError(f"pool must be one of {POOLS} or a callable, got {pool!r}")
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != t.shape[0]:
        raise ValueError(f"pool must give B x D features (B = {t.shape[0]}), got "
                         f"{getattr(out, 'shape', type(out).__name__)}")
    return out
