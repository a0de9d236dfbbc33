"""Class statistics of a layer's features accumulated over batches (memory independent of N): the one
streamed-statistics type for every model (the project's Flax networks, the DUFM, users' PyTorch or
Flax models through `deepcollapse.torch.collect`).

The collapse metrics (SPEC.md, "Collapse metrics"; Papyan et al. 2020; Súkeník et al. 2024, Fig. 2;
Zangrando et al., Def. 3.2; Galanti et al. 2022) need the class means and the within-class scatter
of the features of a whole data set. A network's features do not fit in memory at once, so they are
streamed: per batch F (d x B) with labels y, accumulate in float64

    S_k = sum_{i in k} h_i  (d x K),   n_k,   q_k = sum_{i in k} ||h_i||^2  (K),

and, only when asked (`covariance=True`), the second moment Q = sum_i h_i h_i^T (d x d). Memory is
O(dK) without Q and O(d^2) with it; never O(N). Then

    mu_k = S_k / n_k,  mu_G = sum_k S_k / N,
    per-class variance sigma_k^2 = q_k / n_k - ||mu_k||^2      (Galanti et al.'s Var_k, 1/n_k),
    TCV = N tr Sigma_W = sum_k (q_k - n_k ||mu_k||^2),  total variation = sum_k q_k - N ||mu_G||^2,
    tr Sigma_B = ||mu_k - mu_G||_F^2 / K,
    Sigma_W = (Q - sum_k n_k mu_k mu_k^T) / N                   (needs Q),
    Sigma_B = 1/K sum_k (mu_k - mu_G)(mu_k - mu_G)^T            (d x d, formed only on request).

The second moments cancel (Q - sum_k n_k mu_k mu_k^T), which is why they are float64. Everything
that needs only traces and the class means (DNC1 trace ratio, CDNV, TCV, NC2, NC3, ranks and
singular values of the class means) is available without Q; tr(Sigma_W Sigma_B^+) (NC1) and the
singular values of the features themselves (rank, distance to rank K) need Q. NC1 alone also
follows from P^T Q P (r x r) with P an orthonormal basis of the span of the class means, since
Sigma_B^+ lives there: tr(Sigma_W Sigma_B^+) = tr((P^T Sigma_W P)(P^T Sigma_B P)^+) -- a second
pass once the means are known (`projection_basis`, `StreamStats.zeros(..., basis=P)`).

`stream_batches` is the one streaming loop (labelled feature batches from any framework ->
`ModelStats`, several layers at once). `stream_summary` returns the keys of `deepcollapse.metrics.layer_summary` (plus the class-mean
singular values), the run summary of the project's networks; `collapse_metrics` returns every
quantity under the README's names (`nc1`, `dnc1`, ...), what `deepcollapse measure` reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from deepcollapse import metrics

ACC_DTYPE = jnp.float64
_RTOL = metrics.DEFAULT_RANK_RTOL


class ClassStats(NamedTuple):
    """Finalised statistics of one layer (all float64). `sigma_W` is None without the second moment."""

    means: jax.Array  # M, d x K
    counts: jax.Array  # n_k, K
    mu_G: jax.Array  # d, mean of all N samples
    class_var: jax.Array  # sigma_k^2 = mean_{i in k} ||h_i - mu_k||^2, K (nan for an empty class)
    trace_W: jax.Array  # tr Sigma_W
    trace_B: jax.Array  # tr Sigma_B
    tcv: jax.Array  # sum_k sum_i ||h_ki - mu_k||^2
    total_var: jax.Array  # sum_i ||h_i - mu_G||^2
    sq_norm: jax.Array  # sum_i ||h_i||^2 = ||H||_F^2
    sigma_W: jax.Array | None  # d x d (P^T Sigma_W P, r x r, with a basis P), or None
    second_moment: jax.Array | None  # Q = H H^T, d x d (P^T Q P with a basis), or None
    basis: jax.Array | None = None  # P, d x r orthonormal, when the second moment was projected

    @property
    def sigma_B(self) -> jax.Array:
        """Sigma_B = Mc Mc^T / K (d x d; formed on request)."""
        Mc = self.means - self.mu_G[:, None]
        return Mc @ Mc.T / self.means.shape[1]

    @property
    def has_covariance(self) -> bool:
        return self.sigma_W is not None


class StreamStats(NamedTuple):
    """Running sums of one layer's features: a pytree, so `accumulate` can be jitted.

    Start with `StreamStats.zeros(d, K, covariance=...)`, then `stats = stats.accumulate(F, y)` per
    batch, then `stats.finalize()`. `second_moment` is None unless covariance=True.
    """

    class_sums: jax.Array  # d x K
    counts: jax.Array  # K
    class_sq_norms: jax.Array  # K, sum_{i in k} ||h_i||^2
    second_moment: jax.Array | None  # d x d, or P^T Q P (r x r) with a basis, or None
    basis: jax.Array | None = None  # P, d x r with orthonormal columns, or None

    @staticmethod
    def zeros(d: int, K: int, covariance: bool = False, basis=None) -> StreamStats:
        """Empty statistics of a layer of d features and K classes. covariance=True keeps the d x d
        second moment; `basis` P (d x r, orthonormal columns) keeps only P^T Q P (r x r) instead: the
        within-class scatter inside span(P), all that NC1 needs when span(P) holds the class means
        (`projection_basis`; Papyan et al.'s Sigma_B^+ lives there)."""
        if d < 1 or K < 1:
            raise ValueError(f"d and K must be >= 1, got d={d}, K={K}")
        z = jnp.zeros
        Q = z((d, d), ACC_DTYPE) if covariance else None
        if basis is not None:
            basis = jnp.asarray(basis, ACC_DTYPE)
            if basis.ndim != 2 or basis.shape[0] != d:
                raise ValueError(f"basis must be d x r with d={d}, got shape {basis.shape}")
            Q = z((basis.shape[1], basis.shape[1]), ACC_DTYPE)
        return StreamStats(z((d, K), ACC_DTYPE), z((K,), ACC_DTYPE), z((K,), ACC_DTYPE), Q, basis)

    @property
    def sq_norm(self) -> jax.Array:
        """sum_i ||h_i||^2 over every sample accumulated so far."""
        return jnp.sum(self.class_sq_norms)

    @property
    def dim(self) -> int:
        return int(self.class_sums.shape[0])

    def accumulate(self, F: jax.Array, y: jax.Array) -> StreamStats:
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
        Q = self.second_moment
        if Q is not None:
            G = F if self.basis is None else self.basis.T @ F
            Q = Q + (G * jnp.sum(Y, axis=1)[None, :]) @ G.T
        return StreamStats(
            self.class_sums + F @ Y,
            self.counts + jnp.sum(Y, axis=0),
            self.class_sq_norms + jnp.sum(F * F, axis=0) @ Y,
            Q,
            self.basis,
        )

    def finalize(self) -> ClassStats:
        """Class means, per-class variances, traces, TCV, Sigma_W (formulas in the module docstring)."""
        S, n = self.class_sums, self.counts
        K = S.shape[1]
        N = jnp.sum(n)
        M = S / n[None, :]
        mu_G = jnp.sum(S, axis=1) / N
        mean_sq = jnp.sum(M**2, axis=0)
        within_k = self.class_sq_norms - n * mean_sq  # sum_{i in k} ||h_i - mu_k||^2
        tcv = jnp.sum(within_k)
        total = self.sq_norm - N * jnp.sum(mu_G**2)
        Mc = M - mu_G[:, None]
        sigma_W = None
        if self.second_moment is not None:
            Mp = M if self.basis is None else self.basis.T @ M
            sigma_W = (self.second_moment - (Mp * n[None, :]) @ Mp.T) / N
        return ClassStats(M, n, mu_G, within_k / n, tcv / N, jnp.sum(Mc**2) / K, tcv, total,
                          self.sq_norm, sigma_W, self.second_moment, self.basis)


def projection_basis(st: ClassStats, rtol: float = 1e-10) -> jax.Array:
    """Orthonormal basis P (d x r, r <= K) of the span of the class means (uncentred, so it also
    holds every centred mean mu_k - mu_G): left singular vectors of M above rtol * s_1. With
    `StreamStats.zeros(d, K, basis=P)` a second pass gets NC1 exactly in O(dK) memory."""
    U, s, _ = jnp.linalg.svd(st.means, full_matrices=False)
    r = max(int(jnp.sum(s > rtol * s[0])), 1)
    return U[:, :r]


@jax.jit
def accumulate_rows(stats: tuple, feats: tuple, y: jax.Array) -> tuple:
    """Jitted `StreamStats.accumulate` of several layers at once, features as rows (B x d each, the
    layout of PyTorch and Flax batches): one dispatch per batch for all layers."""
    return tuple(s.accumulate(F.T, y) for s, F in zip(stats, feats))


def nc1_from_stats(st: ClassStats, rtol: float | None = None, feature_dtype=jnp.float32) -> jax.Array:
    """NC1 = tr(Sigma_W Sigma_B^+)/K (Papyan et al. 2020, Fig. 6) from accumulated statistics.

    As `metrics.nc1`: Sigma_B^+ through the thin SVD Mc = U S V^T, keeping at most the K-1 largest
    s_j and only those above rtol * s_1 (default sqrt(max(d, K) * eps(feature_dtype))), so
    tr(Sigma_W Sigma_B^+)/K = sum_j u_j^T Sigma_W u_j / s_j^2. nan when Sigma_B = 0, and nan when the
    statistics hold no second moment (collected without covariance).
    """
    if st.sigma_W is None:
        return jnp.asarray(jnp.nan)
    M = st.means
    d, K = M.shape
    Mc = M - st.mu_G[:, None]
    U, s, _ = jnp.linalg.svd(Mc, full_matrices=False)
    eps_tol = float(max(d, K, 1) * jnp.finfo(feature_dtype).eps)
    if rtol is None:
        rtol = float(np.sqrt(eps_tol))
    keep = (s > rtol * s[0]) & (jnp.arange(s.shape[0]) < K - 1)
    inv_s2 = jnp.where(keep, 1.0 / jnp.where(keep, s, 1.0) ** 2, 0.0)
    V = U if st.basis is None else st.basis.T @ U  # u_j in the basis (u_j lies in span(P))
    value = jnp.sum(inv_s2 * jnp.einsum("ij,ik,kj->j", V, st.sigma_W, V))
    defined = s[0] > eps_tol * jnp.linalg.norm(M)
    return jnp.where(defined, value, jnp.nan)


def _trace_ratio(st: ClassStats, eps_tol: float) -> jax.Array:
    defined = st.trace_B > (eps_tol * jnp.linalg.norm(st.means)) ** 2
    return jnp.where(defined, st.trace_W / jnp.where(defined, st.trace_B, 1.0), jnp.nan)


def _tcv_norm(st: ClassStats, eps_tol: float) -> jax.Array:
    defined = st.total_var > eps_tol**2 * st.sq_norm
    return jnp.where(defined, st.tcv / jnp.where(defined, st.total_var, 1.0), jnp.nan)


def _eps_tol(st: ClassStats, feature_dtype) -> float:
    d, K = st.means.shape
    return float(max(d, K, 1) * jnp.finfo(feature_dtype).eps)


def stream_summary(st: ClassStats, rtol: float = _RTOL, feature_dtype=jnp.float32) -> dict:
    """The keys of `metrics.layer_summary` computed from streamed statistics, plus "singular_values".

    "nc1" (`nc1_from_stats`), "nc1_trace" = tr Sigma_W / tr Sigma_B (Súkeník et al., Fig. 2),
    "rank_means" (numerical rank of the uncentred class means at rtol), "tcv", "tcv_norm"
    (Zangrando et al., Def. 3.2), "nc2_etf", "nc2_orth" (metrics.nc2_* of the class means),
    "singular_values" (of the class means M, descending). `feature_dtype` is the dtype the features
    had before accumulation; the nan/tolerance cut-offs follow it, as they would in `metrics`.
    """
    M = st.means
    eps_tol = _eps_tol(st, feature_dtype)
    sv = metrics.singular_values(M)
    return {
        "nc1": nc1_from_stats(st, feature_dtype=feature_dtype),
        "nc1_trace": _trace_ratio(st, eps_tol),
        "rank_means": metrics.numerical_rank(sv, rtol),
        "tcv": st.tcv,
        "tcv_norm": _tcv_norm(st, eps_tol),
        "nc2_etf": metrics.nc2_etf_distance(M, centre=True),
        "nc2_orth": metrics.nc2_orthogonal_distance(M),
        "singular_values": sv,
    }


def cdnv_pairs(st: ClassStats) -> jax.Array:
    """Pairwise class-distance normalised variances (Galanti, György, Hutter 2022, Def. 1), k < l in
    np.triu_indices order:  (sigma_k^2 + sigma_l^2) / (2 ||mu_k - mu_l||^2),  sigma_k^2 =
    mean_{i in k} ||h_i - mu_k||^2 (1/n_k). nan for a pair whose means coincide."""
    M, v = st.means, st.class_var
    i, j = np.triu_indices(M.shape[1], k=1)
    dist2 = jnp.sum((M[:, i] - M[:, j]) ** 2, axis=0)
    ok = dist2 > 0
    return jnp.where(ok, (v[i] + v[j]) / (2 * jnp.where(ok, dist2, 1.0)), jnp.nan)


def cdnv(st: ClassStats) -> jax.Array:
    """CDNV averaged over the K(K-1)/2 pairs of classes (`cdnv_pairs`; Galanti et al. 2022, the
    accumulator library's `variability_cdnv`). 0 for collapsed features; nan when two class means
    coincide or a class is empty."""
    if st.means.shape[1] < 2:
        return jnp.asarray(jnp.nan)
    return jnp.mean(cdnv_pairs(st))


def feature_singular_values(st: ClassStats) -> jax.Array:
    """Singular values of the feature matrix H (d x N), descending: sqrt of the eigenvalues of
    Q = H H^T (needs the full second moment; empty without it or with a projected one)."""
    if st.second_moment is None or st.basis is not None:
        return jnp.zeros((0,), ACC_DTYPE)
    ev = jnp.linalg.eigvalsh(st.second_moment)[::-1]
    return jnp.sqrt(jnp.clip(ev, 0.0, None))


#: Scalar keys of `collapse_metrics`, in table order.
METRIC_KEYS = ("nc1", "nc1_sum", "dnc1", "nc1_cdnv", "tcv", "tcv_norm", "nc2_etf", "nc2_orth",
               "nc3", "rank_means", "rank_centred_means", "rank_features", "dist_rank_K")


def collapse_metrics(st: ClassStats, W=None, rtol: float = _RTOL,
                     feature_dtype=jnp.float32) -> dict:
    """Every collapse metric of one layer from its statistics, under the README's names.

    nc1          tr(Sigma_W Sigma_B^+)/K (Papyan et al. 2020; `nc1_from_stats`; nan without covariance)
    nc1_sum      tr(Sigma_W Sigma_B^+) = K nc1 (the form without 1/K, e.g. Papyan et al.'s Fig. 6 axis)
    dnc1         tr Sigma_W / tr Sigma_B (Súkeník et al., Fig. 2; defined when Sigma_B is singular)
    nc1_cdnv     mean pairwise CDNV (Galanti et al. 2022; `cdnv`)
    tcv          sum_k sum_i ||h_ki - mu_k||^2;  tcv_norm  divided by sum_i ||h_i - mu_G||^2
                 (Zangrando et al., Def. 3.2)
    nc2_etf      distance of the normalised Gram of the centred means to the simplex ETF
    nc2_orth     distance of the normalised Gram of the uncentred means to the orthogonal frame
    nc3          `metrics.nc3(W, M)` when the classifier W (K x d) that reads this layer is given
    rank_means / rank_centred_means   numerical rank of M / M - mu_G 1^T at rtol
    rank_features, dist_rank_K        rank at rtol of the features H (d x N) and their relative
                 distance to rank K, sum_{j>K} s_j^2 / sum_j s_j^2 (Zangrando et al., Fig. 1, applied
                 to H); both need the second moment (nan without it)
    singular_values, feature_singular_values   arrays (descending)
    """
    M = st.means
    K = M.shape[1]
    eps_tol = _eps_tol(st, feature_dtype)
    sv = metrics.singular_values(M)
    svc = metrics.singular_values(M - st.mu_G[:, None])
    fsv = feature_singular_values(st)
    nc1 = nc1_from_stats(st, feature_dtype=feature_dtype)
    nan = jnp.asarray(jnp.nan)
    out = {
        "nc1": nc1,
        "nc1_sum": K * nc1,
        "dnc1": _trace_ratio(st, eps_tol),
        "nc1_cdnv": cdnv(st),
        "tcv": st.tcv,
        "tcv_norm": _tcv_norm(st, eps_tol),
        "nc2_etf": metrics.nc2_etf_distance(M, centre=True),
        "nc2_orth": metrics.nc2_orthogonal_distance(M),
        "nc3": nan if W is None else metrics.nc3(W, M, centre=True),
        "rank_means": metrics.numerical_rank(sv, rtol),
        "rank_centred_means": metrics.numerical_rank(svc, rtol),
        "rank_features": metrics.numerical_rank(fsv, rtol) if fsv.shape[0] else nan,
        "dist_rank_K": metrics._tail_share(fsv, K) if fsv.shape[0] else nan,
        "singular_values": sv,
        "feature_singular_values": fsv,
    }
    return out


@dataclass
class ModelStats:
    """Streamed statistics of several named layers of one model on one data set.

    layers: name -> StreamStats (in depth order); classifier: (layer name whose input it reads, its
    weight W, K x d) or None; feature_dtype: the dtype the features had. Built by
    `deepcollapse.torch.collect`; `metrics()` and `table()` read it.
    """

    layers: dict
    num_classes: int
    feature_dtype: object = jnp.float32
    classifier: tuple | None = None
    info: dict = field(default_factory=dict)

    def finalized(self) -> dict:
        return {name: s.finalize() for name, s in self.layers.items()}

    def metrics(self, rtol: float = _RTOL) -> dict:
        """{layer: `collapse_metrics` dict (numpy values)}, in depth order."""
        out = {}
        for name, st in self.finalized().items():
            W = None
            if self.classifier is not None and self.classifier[0] == name:
                W = self.classifier[1]
            m = collapse_metrics(st, W, rtol, self.feature_dtype)
            out[name] = {k: np.asarray(v) for k, v in m.items()}
        return out

    def table(self, rtol: float = _RTOL):
        """Tidy pandas table: one row per layer x scalar metric (layer, depth, dim, metric, value),
        plus the rank tolerance and the number of samples as columns."""
        import pandas as pd

        rows = []
        for depth, (name, m) in enumerate(self.metrics(rtol).items()):
            d = int(self.layers[name].class_sums.shape[0])
            n = int(np.sum(np.asarray(self.layers[name].counts)))
            for key in METRIC_KEYS:
                rows.append({"layer": name, "depth": depth, "dim": d, "metric": key,
                             "value": float(m[key]), "rank_rtol": rtol, "N": n})
        return pd.DataFrame(rows)


#: covariance="auto" keeps the d x d second moment (hence NC1 and the feature ranks) for layers of
#: at most this many features (2048^2 float64 = 32 MiB), and only the O(dK) trace statistics above.
MAX_AUTO_COV_DIM = 2048


def stream_batches(batches, num_classes: int, covariance="auto", classifier: tuple | None = None,
                   bases: dict | None = None) -> ModelStats:
    """`ModelStats` of a stream of labelled feature batches, from any framework.

    batches: an iterable of (features, labels): features a dict {layer name: B x d array} (rows =
    samples; NumPy, JAX, or anything `np.asarray` takes), the same names in every batch, in depth
    order; labels (B,) class indices 0..num_classes-1. covariance: True, False or "auto" (the second
    moment of layers with d <= MAX_AUTO_COV_DIM); bases: {layer: P} to keep P^T Q P for those
    layers instead (`projection_basis`, the second pass of `deepcollapse.torch.collect`). One jitted
    accumulation per batch
    (`accumulate_rows`); memory independent of the number of samples. This is the loop behind
    `deepcollapse.torch.collect`; a Flax model's intermediates go in the same way.
    """
    if covariance not in (True, False, "auto"):
        raise ValueError(f"covariance must be True, False or 'auto', got {covariance!r}")
    K = int(num_classes)
    names, stats, dtype, batches_seen = None, None, np.float32, 0
    for feats, y in batches:
        y = np.asarray(y)
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"labels must be a 1-D integer array (class indices), got dtype {y.dtype}, shape {y.shape}")
        if y.size and (y.min() < 0 or y.max() >= K):
            raise ValueError(f"labels must lie in 0..{K - 1} (num_classes={K}), got {int(y.min())}..{int(y.max())}")
        if names is None:
            names = list(feats)
        elif list(feats) != names:
            raise ValueError(f"every batch must hold the layers {names}, got {list(feats)}")
        arrs = tuple(np.asarray(feats[n]) for n in names)
        for n, f in zip(names, arrs):
            if f.ndim != 2 or f.shape[0] != y.shape[0]:
                raise ValueError(f"layer {n!r}: features must be B x d with B = {y.shape[0]} labels, got shape {f.shape}")
        if stats is None:
            keep = [covariance is True or (covariance == "auto" and f.shape[1] <= MAX_AUTO_COV_DIM) for f in arrs]
            bases = bases or {}
            stats = tuple(StreamStats.zeros(f.shape[1], K, covariance=c and n not in bases, basis=bases.get(n))
                          for n, f, c in zip(names, arrs, keep))
            if any(f.dtype == np.float64 for f in arrs):
                dtype = np.float64
        else:
            for n, f, st in zip(names, arrs, stats):
                if f.shape[1] != st.dim:
                    raise ValueError(f"layer {n!r} changed its feature dimension from {st.dim} to {f.shape[1]} "
                                     "(inputs of different sizes? average pooling fixes it)")
        stats = accumulate_rows(stats, arrs, y.astype(np.int32))
        batches_seen += 1
    if stats is None:
        raise ValueError("no batches: nothing to measure")
    layers = dict(zip(names, stats))
    N = int(np.sum(np.asarray(stats[0].counts)))
    info = {"batches": batches_seen, "N": N,
            "covariance": {n: "projected" if st.basis is not None else st.second_moment is not None
                           for n, st in layers.items()}}
    return ModelStats(layers=layers, num_classes=K, feature_dtype=dtype, classifier=classifier, info=info)
