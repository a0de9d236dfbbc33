"""Class statistics of a layer's features accumulated over batches (memory independent of N): the one
streamed-statistics type for every model (the project's Flax networks, the DUFM, users' own models).

The collapse metrics (SPEC.md, "Collapse metrics"; Papyan et al. 2020; Súkeník et al. 2024, Fig. 2;
Zangrando et al., Def. 3.2) need the class means and the within-class scatter of features of the whole
training set. A network's features do not fit in memory at once, so they are streamed: per batch
F (d x B) with labels y, accumulate

    S_k = sum_{i in k} h_i  (d x K),   n_k,   Q = sum_i h_i h_i^T  (d x d),   q = sum_i ||h_i||^2,

in float64 (the second moments cancel: Q - sum_k n_k mu_k mu_k^T loses digits in float32). Then

    mu_k = S_k / n_k,  mu_G = sum_k S_k / N,
    Sigma_W = (Q - sum_k n_k mu_k mu_k^T) / N,  Sigma_B = 1/K sum_k (mu_k - mu_G)(mu_k - mu_G)^T,
    TCV = N tr Sigma_W = q - sum_k n_k ||mu_k||^2,  total variation = q - N ||mu_G||^2.

`stream_summary` returns the same keys as `deepcollapse.metrics.layer_summary` (plus the class-mean
singular values), with the same tolerances, so streamed and all-at-once metrics agree.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from deepcollapse import metrics

ACC_DTYPE = jnp.float64


class ClassStats(NamedTuple):
    """Finalised statistics of one layer (all float64)."""

    means: jax.Array  # M, d x K
    counts: jax.Array  # n_k, K
    mu_G: jax.Array  # d
    sigma_W: jax.Array  # d x d
    sigma_B: jax.Array  # d x d
    trace_W: jax.Array  # tr Sigma_W
    trace_B: jax.Array  # tr Sigma_B
    tcv: jax.Array  # sum_k sum_i ||h_ki - mu_k||^2
    total_var: jax.Array  # sum_i ||h_i - mu_G||^2
    sq_norm: jax.Array  # sum_i ||h_i||^2 = ||H||_F^2


class StreamStats(NamedTuple):
    """Running sums of one layer's features: a pytree, so `accumulate` can be jitted.

    Start with `StreamStats.zeros(d, K)`, then `stats = stats.accumulate(F, y)` per batch, then
    `stats.finalize()`.
    """

    class_sums: jax.Array  # d x K
    counts: jax.Array  # K
    second_moment: jax.Array  # d x d
    sq_norm: jax.Array  # scalar

    @staticmethod
    def zeros(d: int, K: int) -> "StreamStats":
        if d < 1 or K < 1:
            raise ValueError(f"d and K must be >= 1, got d={d}, K={K}")
        z = jnp.zeros
        return StreamStats(z((d, K), ACC_DTYPE), z((K,), ACC_DTYPE), z((d, d), ACC_DTYPE), z((), ACC_DTYPE))

    def accumulate(self, F: jax.Array, y: jax.Array) -> "StreamStats":
        """Add a batch: F (d x B) features as columns, y (B,) class indices in 0..K-1.

        Labels outside 0..K-1 (e.g. -1 for padding) are ignored entirely.
        """
        d, K = self.class_sums.shape
        if F.ndim != 2 or F.shape[0] != d:
            raise ValueError(f"F must be d x B with d={d}, got shape {F.shape}")
        if y.shape != (F.shape[1],):
            raise ValueError(f"y must have one label per column of F ({F.shape[1]}), got shape {y.shape}")
        F = F.astype(ACC_DTYPE)
        Y = jax.nn.one_hot(y, K, dtype=ACC_DTYPE)  # B x K, zero rows for labels out of range
        valid = jnp.sum(Y, axis=1)
        Fv = F * valid[None, :]
        return StreamStats(
            self.class_sums + F @ Y,
            self.counts + jnp.sum(Y, axis=0),
            self.second_moment + Fv @ F.T,
            self.sq_norm + jnp.sum(Fv * F),
        )

    def finalize(self) -> ClassStats:
        """Class means, Sigma_W, Sigma_B, TCV (formulas in the module docstring)."""
        S, n = self.class_sums, self.counts
        K = S.shape[1]
        N = jnp.sum(n)
        M = S / n[None, :]
        mu_G = jnp.sum(S, axis=1) / N
        between_scatter = (M * n[None, :]) @ M.T  # sum_k n_k mu_k mu_k^T
        sigma_W = (self.second_moment - between_scatter) / N
        Mc = M - mu_G[:, None]
        sigma_B = Mc @ Mc.T / K
        tcv = self.sq_norm - jnp.sum(n * jnp.sum(M**2, axis=0))
        total = self.sq_norm - N * jnp.sum(mu_G**2)
        return ClassStats(M, n, mu_G, sigma_W, sigma_B, jnp.trace(sigma_W), jnp.trace(sigma_B),
                          tcv, total, self.sq_norm)


def nc1_from_stats(st: ClassStats, rtol: float | None = None, feature_dtype=jnp.float32) -> jax.Array:
    """NC1 = tr(Sigma_W Sigma_B^+)/K (Papyan et al. 2020, Fig. 6) from accumulated statistics.

    As `metrics.nc1`: Sigma_B^+ through the thin SVD Mc = U S V^T, keeping at most the K-1 largest
    s_j and only those above rtol * s_1 (default sqrt(max(d, K) * eps(feature_dtype))), so
    tr(Sigma_W Sigma_B^+)/K = sum_j u_j^T Sigma_W u_j / s_j^2. nan when Sigma_B = 0.
    """
    M = st.means
    d, K = M.shape
    Mc = M - st.mu_G[:, None]
    U, s, _ = jnp.linalg.svd(Mc, full_matrices=False)
    eps_tol = float(max(d, K, 1) * jnp.finfo(feature_dtype).eps)
    if rtol is None:
        rtol = float(np.sqrt(eps_tol))
    keep = (s > rtol * s[0]) & (jnp.arange(s.shape[0]) < K - 1)
    inv_s2 = jnp.where(keep, 1.0 / jnp.where(keep, s, 1.0) ** 2, 0.0)
    value = jnp.sum(inv_s2 * jnp.einsum("ij,ik,kj->j", U, st.sigma_W, U))
    defined = s[0] > eps_tol * jnp.linalg.norm(M)
    return jnp.where(defined, value, jnp.nan)


def stream_summary(st: ClassStats, rtol: float = metrics.DEFAULT_RANK_RTOL, feature_dtype=jnp.float32) -> dict:
    """The keys of `metrics.layer_summary` computed from streamed statistics, plus "singular_values".

    "nc1" (`nc1_from_stats`), "nc1_trace" = tr Sigma_W / tr Sigma_B (Súkeník et al., Fig. 2),
    "rank_means" (numerical rank of the uncentred class means at rtol), "tcv", "tcv_norm"
    (Zangrando et al., Def. 3.2), "nc2_etf", "nc2_orth" (metrics.nc2_* of the class means),
    "singular_values" (of the class means M, descending). `feature_dtype` is the dtype the features
    had before accumulation; the nan/tolerance cut-offs follow it, as they would in `metrics`.
    """
    M = st.means
    d, K = M.shape
    eps_tol = float(max(d, K, 1) * jnp.finfo(feature_dtype).eps)
    tr_defined = st.trace_B > (eps_tol * jnp.linalg.norm(M)) ** 2
    tv_defined = st.total_var > eps_tol**2 * st.sq_norm
    sv = metrics.singular_values(M)
    return {
        "nc1": nc1_from_stats(st, feature_dtype=feature_dtype),
        "nc1_trace": jnp.where(tr_defined, st.trace_W / jnp.where(tr_defined, st.trace_B, 1.0), jnp.nan),
        "rank_means": metrics.numerical_rank(sv, rtol),
        "tcv": st.tcv,
        "tcv_norm": jnp.where(tv_defined, st.tcv / jnp.where(tv_defined, st.total_var, 1.0), jnp.nan),
        "nc2_etf": metrics.nc2_etf_distance(M, centre=True),
        "nc2_orth": metrics.nc2_orthogonal_distance(M),
        "singular_values": sv,
    }
