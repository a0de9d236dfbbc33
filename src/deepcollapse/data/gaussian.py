"""Synthetic data: K Gaussian clusters in R^d, columns class by class.

Zangrando et al. (2025), Fig. 1 trains on K = 10 Gaussian clusters and varies the within-class
standard deviation sigma. The summary available to the project does not state how the cluster
centres are drawn; the project's choice: centres mu_k i.i.d. uniform on the sphere of radius
`mean_scale` (a standard Gaussian vector, normalised), samples x_ki = mu_k + sigma * g_ki with
g_ki ~ N(0, I_d). Given centres (`means=`) replace the random ones.
"""

from __future__ import annotations

import numpy as np


def _streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    means_seq, noise_seq = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(means_seq), np.random.default_rng(noise_seq)


def cluster_means(K: int, d: int, mean_scale: float = 1.0, seed: int = 0,
                  dtype=np.float64) -> np.ndarray:
    """Cluster centres M = [mu_1 ... mu_K] (d x K), each of norm `mean_scale`, random directions.

    The same centres as gaussian_clusters(K, d, ..., seed=seed) uses when `means` is not given.
    """
    if not isinstance(K, (int, np.integer)) or K < 1:
        raise ValueError(f"K must be a positive int, got {K!r}")
    if not isinstance(d, (int, np.integer)) or d < 1:
        raise ValueError(f"d must be a positive int, got {d!r}")
    if not mean_scale > 0:
        raise ValueError(f"mean_scale must be positive, got {mean_scale}")
    rng, _ = _streams(seed)
    g = rng.standard_normal((d, K))
    return (mean_scale * g / np.linalg.norm(g, axis=0, keepdims=True)).astype(dtype)


def gaussian_clusters(K: int, d: int, n: int, sigma: float, seed: int = 0, mean_scale: float = 1.0,
                      means: np.ndarray | None = None, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """K Gaussian clusters of n samples each in R^d (Zangrando et al., Fig. 1's synthetic data).

    Returns X (d x N, N = K n, columns class by class, dtype `dtype`) and y (N,) int64 with
    y = [0]*n + [1]*n + ...: column i of class k is mu_k + sigma * g, g ~ N(0, I_d).
    means: optional d x K centres; default cluster_means(K, d, mean_scale, seed).
    Deterministic given `seed`.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n (samples per class) must be a positive int, got {n!r}")
    if not sigma >= 0:
        raise ValueError(f"sigma (within-class std) must be >= 0, got {sigma}")
    if means is None:
        means = cluster_means(K, d, mean_scale, seed, dtype=np.float64)
    else:
        means = np.asarray(means, dtype=np.float64)
        if means.shape != (d, K):
            raise ValueError(f"means must be d x K = ({d}, {K}), got shape {means.shape}")
    _, rng = _streams(seed)
    y = np.repeat(np.arange(K, dtype=np.int64), n)
    X = means[:, y] + sigma * rng.standard_normal((d, K * n))
    return X.astype(dtype), y
