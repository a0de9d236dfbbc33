"""Synthetic image classes for tests and smoke runs (no files needed).

Class k has a template image T_k with N(0, 1) pixels; a sample is T_k + noise * N(0, 1) per pixel.
Samples come class by class (SPEC.md, "Data layout").
"""

from __future__ import annotations

import numpy as np

from deepcollapse.data import Dataset


def synthetic_images(K: int, n_per_class: int, shape: tuple[int, int, int], noise: float = 0.5,
                     seed: int = 0) -> Dataset:
    """A Dataset of K * n_per_class float32 NHWC images of `shape` (H, W, C), labels class by class."""
    if K < 2 or n_per_class < 1:
        raise ValueError(f"need K >= 2 and n_per_class >= 1, got K={K}, n_per_class={n_per_class}")
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be (H, W, C) of positive ints, got {shape}")
    rng = np.random.default_rng(seed)
    templates = rng.standard_normal((K, *shape))
    y = np.repeat(np.arange(K), n_per_class)
    x = templates[y] + noise * rng.standard_normal((y.size, *shape))
    return Dataset(x=x.astype(np.float32), y=y.astype(np.int64), classes=[f"class{k}" for k in range(K)],
                   name="synthetic", split="train", source="synthetic")
