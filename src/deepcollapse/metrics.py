"""Collapse metrics of a layer's features: NC1-NC3, ranks, total cluster variation.

SPEC.md, "Collapse metrics". Sources:
  - Papyan, Han, Donoho (2020), "Prevalence of neural collapse during the terminal phase of deep
    learning training", PNAS, Sec. "Results" and Fig. 6-8: NC1 = tr(Sigma_W Sigma_B^+)/K, NC2
    (simplex ETF), NC3 (self-duality of classifier and class means);
  - Súkeník, Lampert, Mondelli (2024), Sec. 3-5 and Fig. 2: DNC1 per layer (trace ratio
    tr(Sigma_W)/tr(Sigma_B)), DNC2 as an orthogonal frame after ReLU, numerical rank counting
    "non-negligible" singular values;
  - Zangrando et al., Def. 3.2 (total cluster variation, TCV) and Fig. 1 (relative distance of a
    weight matrix to rank K);
  - Garrod & Keating, Sec. 2 (NC2 of the centred class means as a simplex ETF under cross-entropy).

Notation (written once, used everywhere below):
  H   d x N features, one column per sample;  y  length-N class indices in 0..K-1;  K  classes (a
      static Python int, so that every function can be jitted with K closed over);
  n_k number of samples of class k;  mu_k  class mean;  M = [mu_1 ... mu_K]  d x K;
  mu_G global mean: the mean of all N columns (SPEC default; `of_class_means=True`: the mean of the
      K class means; the two agree for balanced classes);
  Mc  centred class means M - mu_G 1^T;  E = I_K - 11^T/K, ||E||_F = sqrt(K-1) (simplex ETF Gram).

Every function accepts jax arrays (and tracers), NumPy arrays, or anything `np.asarray` takes (a CPU
torch tensor included); non-jax inputs are converted at entry. Scalar results are 0-d jax arrays.
Where a quantity is undefined (e.g. Sigma_B = 0, so NC1 divides by zero; the Gram of all-zero class
means cannot be normalised) the result is nan by design; every other case is free of nan, including
perfectly collapsed features and all-zero layers (tcv = 0, rank = 0).
"""

from __future__ import annotations

import functools

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "class_means", "global_mean", "within_class_cov", "between_class_cov", "nc1", "nc1_trace_ratio",
    "nc2_etf_distance", "nc2_orthogonal_distance", "nc3", "singular_values", "numerical_rank",
    "tcv", "tcv_normalised", "distance_to_rank", "layer_summary", "layer_class_means", "found_dnc",
    "dnc_report", "dnc_kind", "dnc_verdict",
    "DEFAULT_RANK_RTOL", "DEFAULT_NC2_TOL", "SUMMARY_KEYS",
]

#: Relative tolerance of `numerical_rank`: singular values above rtol * s_max count (SPEC default;
#: Súkeník et al. count the "non-negligible" singular values).
DEFAULT_RANK_RTOL = 1e-3
#: NC2 tolerance of the "found DNC" rule (`dnc_verdict`, `found_dnc`): the normalised Gram of a layer's
#: class means may be this far (Frobenius) from the orthogonal frame / simplex ETF. Distances lie in
#: [0, 2]; 0.25 accepts a DNC that is not fully converged after a finite run and rejects rank-K class
#: means whose Gram is visibly not the frame (a rank-K point that is not DNC sits at 0.6 and above in
#: the papers' settings).
DEFAULT_NC2_TOL = 0.25
#: Keys of `layer_summary`, in order.
SUMMARY_KEYS = ("nc1", "nc1_trace", "rank_means", "tcv", "tcv_norm", "nc2_etf", "nc2_orth")


# ----------------------------------------------------------------------------------------------
# Input handling
# ----------------------------------------------------------------------------------------------

def _to_jax(x, name: str) -> jax.Array:
    """x as a jax array; jax arrays and tracers pass through untouched (so functions stay jit-able)."""
    if isinstance(x, jax.Array):
        return x
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, possibly requiring grad
        x = x.detach().cpu()
    try:
        a = np.asarray(x)
        return jnp.asarray(a, dtype=a.dtype)  # with its dtype named: a device_put, not a compiled copy
    except Exception as err:  # noqa: BLE001 - re-raised with the argument's name
        raise ValueError(f"{name} must be an array (jax, numpy, or anything np.asarray takes), "
                         f"got {type(x).__name__}") from err


def _float_matrix(x, name: str) -> jax.Array:
    """x as a 2-D floating jax array (integers become the default float dtype)."""
    x = _to_jax(x, name)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix (features as columns), got shape {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    return x


def _check_K(K, name: str = "K", minimum: int = 1) -> int:
    if isinstance(K, (bool, np.bool_)) or not isinstance(K, (int, np.integer)):
        raise ValueError(f"{name} must be a Python int (static number of classes), got {K!r}")
    if K < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {K}")
    return int(K)


def _labels(y, K: int, N: int) -> jax.Array:
    """y as an integer jax array of length N; values checked when y is concrete (not traced)."""
    y_arr = _to_jax(y, "y")
    if y_arr.ndim != 1 or y_arr.shape[0] != N:
        raise ValueError(f"y must be a 1-D array of length N={N} (one label per column of H), "
                         f"got shape {y_arr.shape}")
    if not jnp.issubdtype(y_arr.dtype, jnp.integer):
        raise ValueError(f"y must hold integer class indices 0..K-1, got dtype {y_arr.dtype}")
    if not isinstance(y_arr, jax.core.Tracer):
        y_np = np.asarray(y_arr)
        if N and (y_np.min() < 0 or y_np.max() >= K):
            raise ValueError(f"y must hold class indices in 0..K-1 = 0..{K - 1}, "
                             f"got values in {y_np.min()}..{y_np.max()}")
        missing = np.setdiff1d(np.arange(K), y_np)
        if missing.size:
            raise ValueError(f"y has no sample of class(es) {missing.tolist()}; every class 0..K-1 "
                             "needs at least one sample to have a class mean")
    return y_arr


def _features(H, y, K):
    K = _check_K(K)
    H = _float_matrix(H, "H")
    y = _labels(y, K, H.shape[1])
    return H, y, K


def _one_hot(y, K, dtype):
    """K x N one-hot matrix Y of the labels."""
    return jax.nn.one_hot(y, K, dtype=dtype).T


def _safe_div(num, den, defined):
    """num / den where `defined`, else nan; never evaluates a 0/0 on the taken branch."""
    den = jnp.where(defined, den, jnp.ones_like(den))
    return jnp.where(defined, num / den, jnp.nan)


def _zero_tol(dtype, *dims) -> float:
    """Round-off level, relative to a norm, below which a computed quantity counts as exactly 0."""
    return float(max(dims + (1,)) * jnp.finfo(dtype).eps)


# ----------------------------------------------------------------------------------------------
# Means and covariances
# ----------------------------------------------------------------------------------------------

def class_means(H, y, K) -> jax.Array:
    """Class-mean matrix M = [mu_1 ... mu_K] (d x K), mu_k = 1/n_k sum_{i: y_i = k} h_i.

    SPEC.md, "Data layout"; Papyan et al. (2020), notation mu_c. Computed as H Y^T diag(1/n_k)
    with the one-hot Y, so it is jit-able with K static. A class without samples raises ValueError
    when y is concrete; under tracing its mean is nan (0/0).
    """
    H, y, K = _features(H, y, K)
    Y = _one_hot(y, K, H.dtype)
    return (H @ Y.T) / jnp.sum(Y, axis=1)


def global_mean(H, y=None, K=None, of_class_means: bool = False) -> jax.Array:
    """Global mean mu_G (length d) of the features H (d x N).

    SPEC.md, "Data layout": the mean of all N columns (default, Papyan et al. 2020); with
    `of_class_means=True` the mean of the K class means 1/K sum_k mu_k (needs y and K), which is
    the same for balanced classes and keeps Mc of rank <= K-1 for imbalanced ones.
    """
    if of_class_means:
        if y is None or K is None:
            raise ValueError("global_mean: of_class_means=True needs the labels y and the number of "
                             "classes K")
        return jnp.mean(class_means(H, y, K), axis=1)
    H = _float_matrix(H, "H")
    return jnp.mean(H, axis=1)


def _centred_means(H, y, K, of_class_means):
    M = class_means(H, y, K)
    mu_G = jnp.mean(M, axis=1) if of_class_means else jnp.mean(H, axis=1)
    return M, M - mu_G[:, None]


def _within_residual(H, y, K):
    """H - M[:, y]: every feature minus its class mean (d x N)."""
    M = class_means(H, y, K)
    return H - M[:, y], M


def within_class_cov(H, y, K) -> jax.Array:
    """Within-class covariance Sigma_W = 1/N sum_k sum_{i in k} (h_ki - mu_k)(h_ki - mu_k)^T (d x d).

    Papyan et al. (2020), definition of Sigma_W; SPEC.md, "Collapse metrics".
    """
    H, y, K = _features(H, y, K)
    R, _ = _within_residual(H, y, K)
    return (R @ R.T) / H.shape[1]


def between_class_cov(H, y, K, of_class_means: bool = False) -> jax.Array:
    """Between-class covariance Sigma_B = 1/K sum_k (mu_k - mu_G)(mu_k - mu_G)^T (d x d).

    Papyan et al. (2020), definition of Sigma_B; SPEC.md, "Collapse metrics". mu_G as in
    `global_mean` (default: mean of all columns).
    """
    H, y, K = _features(H, y, K)
    _, Mc = _centred_means(H, y, K, of_class_means)
    return (Mc @ Mc.T) / K


# ----------------------------------------------------------------------------------------------
# NC1 / DNC1 and total cluster variation
# ----------------------------------------------------------------------------------------------

def nc1(H, y, K, rtol=None, of_class_means: bool = False) -> jax.Array:
    """NC1 = tr(Sigma_W Sigma_B^+) / K (Papyan et al. 2020, Fig. 6; DNC1 per layer, Súkeník et al.).

    Sigma_B^+ is taken through the thin SVD of the centred means Mc = U S V^T (d x K):
    Sigma_B = U (S^2/K) U^T, so Sigma_B^+ = U_r diag(K/s_j^2) U_r^T over the kept singular values,
    and tr(Sigma_W Sigma_B^+) = K/N sum_j ||u_j^T (H - M[:, y])||^2 / s_j^2 (no d x d matrix).
    Kept: at most the K-1 largest singular values (SPEC "rank K-1": Mc has rank <= K-1 for either
    choice of mu_G, since sum_k n_k (mu_k - mu_G) = 0, resp. sum_k (mu_k - mu_G) = 0), and of those
    only s_j > rtol * s_1. Default rtol = sqrt(max(d, K) * eps(dtype))
    (1.5e-8 * sqrt(max(d,K)) in float64, 3.5e-4 * sqrt(max(d,K)) in float32): exactly the cutoff
    that np.linalg.pinv / jnp.linalg.pinv apply by default to Sigma_B, whose eigenvalues are s_j^2/K.

    Undefined, hence nan, when Sigma_B = 0 (all class means equal, e.g. an all-zero layer), i.e.
    when s_1 <= max(d, K) * eps * ||M||_F (round-off of the centring). Scale invariant: NC1(cH) = NC1(H).
    """
    H, y, K = _features(H, y, K)
    if K < 2:
        raise ValueError(f"nc1 needs K >= 2 classes (Sigma_B = 0 for K = 1), got K={K}")
    d, N = H.shape
    R, M = _within_residual(H, y, K)
    mu_G = jnp.mean(M, axis=1) if of_class_means else jnp.mean(H, axis=1)
    Mc = M - mu_G[:, None]
    U, s, _ = jnp.linalg.svd(Mc, full_matrices=False)  # U: d x min(d,K), s descending
    if rtol is None:
        rtol = float(np.sqrt(_zero_tol(H.dtype, d, K)))
    s1 = s[0]
    keep = (s > rtol * s1) & (jnp.arange(s.shape[0]) < K - 1)
    inv_s2 = jnp.where(keep, 1.0 / jnp.where(keep, s, 1.0) ** 2, 0.0)
    proj = U.T @ R  # min(d,K) x N
    # tr(Sigma_W Sigma_B^+)/K = (1/K) (K/N) sum_j ||u_j^T R||^2 / s_j^2
    value = jnp.sum(inv_s2 * jnp.sum(proj**2, axis=1)) / N
    defined = s1 > _zero_tol(H.dtype, d, K) * jnp.linalg.norm(M)
    return jnp.where(defined, value, jnp.nan)


def tcv(H, y, K) -> jax.Array:
    """Total cluster variation TCV = sum_k sum_{i in k} ||h_ki - mu_k||^2 (Zangrando et al., Def. 3.2).

    Equals N tr(Sigma_W). 0 for perfectly collapsed features and for an all-zero layer.
    """
    H, y, K = _features(H, y, K)
    R, _ = _within_residual(H, y, K)
    return jnp.sum(R**2)


def tcv_normalised(H, y, K) -> jax.Array:
    """Normalised TCV = sum_k sum_i ||h_ki - mu_k||^2 / sum_i ||h_i - mu_G||^2 (Zangrando et al., Def. 3.2).

    mu_G is the mean of all columns, so the ratio lies in [0, 1] (total = within + between variation,
    weighted by n_k). Scale invariant. nan when the denominator is 0 (all features equal, e.g. an
    all-zero layer): the ratio is 0/0 there.
    """
    H, y, K = _features(H, y, K)
    R, _ = _within_residual(H, y, K)
    within = jnp.sum(R**2)
    total = jnp.sum((H - jnp.mean(H, axis=1, keepdims=True)) ** 2)
    scale = jnp.sum(H**2)
    defined = total > _zero_tol(H.dtype, *H.shape) ** 2 * scale
    return _safe_div(within, total, defined)


def nc1_trace_ratio(H, y, K, of_class_means: bool = False) -> jax.Array:
    """Trace ratio tr(Sigma_W) / tr(Sigma_B) (Súkeník et al., Fig. 2 DNC1 plots; SPEC.md).

    = (TCV/N) / (||Mc||_F^2/K). Stays defined when Sigma_B is singular; nan when Sigma_B = 0
    (tr Sigma_B <= round-off of the centring, as in `nc1`). Scale invariant.
    """
    H, y, K = _features(H, y, K)
    R, M = _within_residual(H, y, K)
    mu_G = jnp.mean(M, axis=1) if of_class_means else jnp.mean(H, axis=1)
    Mc = M - mu_G[:, None]
    tr_w = jnp.sum(R**2) / H.shape[1]
    tr_b = jnp.sum(Mc**2) / K
    tol = _zero_tol(H.dtype, *M.shape)
    defined = tr_b > (tol * jnp.linalg.norm(M)) ** 2
    return _safe_div(tr_w, tr_b, defined)


# ----------------------------------------------------------------------------------------------
# NC2 and NC3
# ----------------------------------------------------------------------------------------------

def _means_matrix(M, name="M") -> jax.Array:
    M = _float_matrix(M, name)
    if M.shape[1] < 2:
        raise ValueError(f"{name} must have K >= 2 columns (one class mean per column), "
                         f"got shape {M.shape}")
    return M


def _normalised_gram_distance(M, target, floor=0.0) -> jax.Array:
    """||G/||G||_F - T/||T||_F||_F with G = M^T M; nan when ||G||_F <= floor (G = 0 up to round-off)."""
    G = M.T @ M
    g = jnp.linalg.norm(G)
    T = target / jnp.linalg.norm(target)
    defined = g > floor
    Gn = G / jnp.where(defined, g, 1.0)
    return jnp.where(defined, jnp.linalg.norm(Gn - T), jnp.nan)


def nc2_etf_distance(M, centre: bool = True, mu_G=None) -> jax.Array:
    """NC2: distance of the normalised Gram of the class means to the simplex ETF.

    Papyan et al. (2020), NC2 (equinorm, equiangular with cosines -1/(K-1)); Garrod & Keating, Sec. 2;
    SPEC.md "Collapse metrics":  || G/||G||_F - E/||E||_F ||_F,  G = Mc^T Mc (K x K),
    E = I_K - 11^T/K, ||E||_F = sqrt(K-1). Both Grams are normalised to unit Frobenius norm, so the
    distance is scale invariant and lies in [0, 2]. centre=True (default): Mc = M - mu_G 1^T with
    mu_G the mean of the columns of M (the mean of the class means), or `mu_G` if given;
    centre=False: G = M^T M. Note that centring an orthogonal frame gives exactly the simplex ETF.
    nan when G = 0 (all class means equal).
    """
    M = _means_matrix(M)
    K = M.shape[1]
    floor = 0.0
    if centre:
        mu = jnp.mean(M, axis=1) if mu_G is None else _to_jax(mu_G, "mu_G").reshape(-1)
        if mu.shape[0] != M.shape[0]:
            raise ValueError(f"mu_G must have length d={M.shape[0]}, got shape {mu.shape}")
        floor = (_zero_tol(M.dtype, *M.shape) * jnp.linalg.norm(M)) ** 2  # centring round-off
        M = M - mu[:, None]
    E = jnp.eye(K, dtype=M.dtype) - jnp.full((K, K), 1.0 / K, dtype=M.dtype)
    return _normalised_gram_distance(M, E, floor)


def nc2_orthogonal_distance(M, centre: bool = False) -> jax.Array:
    """DNC2 after ReLU: distance of the normalised Gram of the class means to the orthogonal frame.

    Súkeník et al. (2024), DNC2 of the MSE ReLU L-DUFM (class means non-negative, mutually
    orthogonal, equal norms); SPEC.md: || G/||G||_F - I_K/sqrt(K) ||_F with G = M^T M of the
    uncentred means (centre=True subtracts the mean of the columns first). Scale invariant, in
    [0, 2]; nan when G = 0.
    """
    M = _means_matrix(M)
    floor = 0.0
    if centre:
        floor = (_zero_tol(M.dtype, *M.shape) * jnp.linalg.norm(M)) ** 2  # centring round-off
        M = M - jnp.mean(M, axis=1, keepdims=True)
    return _normalised_gram_distance(M, jnp.eye(M.shape[1], dtype=M.dtype), floor)


def nc3(W, M, centre: bool = True) -> jax.Array:
    """NC3 (self-duality): alignment of the rows of W with the class means of its input.

    Papyan et al. (2020), NC3: || W/||W||_F - Mc^T/||Mc||_F ||_F, W (K x d) the layer's weight (its
    row k acts on class k), M (d x K) the class means of the layer's input H, Mc = M - mu_G 1^T with
    mu_G the mean of the class means (centre=True, Papyan et al.); centre=False compares with M^T
    itself, the bias-free DUFM form (Súkeník et al., DNC3). 0 iff W = c Mc^T for some c > 0; in
    [0, 2]; nan when W = 0 or Mc = 0.
    """
    W = _float_matrix(W, "W")
    M = _float_matrix(M, "M")
    if W.shape != (M.shape[1], M.shape[0]):
        raise ValueError(f"nc3: W must be K x d for class means M of shape d x K; got W {W.shape}, "
                         f"M {M.shape}")
    if centre:
        M = M - jnp.mean(M, axis=1, keepdims=True)
    w, m = jnp.linalg.norm(W), jnp.linalg.norm(M)
    defined = (w > 0) & (m > 0)
    diff = W / jnp.where(defined, w, 1.0) - M.T / jnp.where(defined, m, 1.0)
    return jnp.where(defined, jnp.linalg.norm(diff), jnp.nan)


# ----------------------------------------------------------------------------------------------
# Singular values, ranks
# ----------------------------------------------------------------------------------------------

def singular_values(A) -> jax.Array:
    """Singular values of a matrix A, in descending order (length min(A.shape))."""
    A = _float_matrix(A, "A")
    return jnp.linalg.svd(A, compute_uv=False)


def numerical_rank(A_or_singular_values, rtol=DEFAULT_RANK_RTOL) -> jax.Array:
    """Numerical rank #{j : s_j > rtol * s_max} (SPEC.md; Súkeník et al. count "non-negligible" s_j).

    Argument: a matrix (2-D) or its singular values (1-D, any order, non-negative). rtol is relative
    to the largest singular value, default 1e-3. 0 for an all-zero matrix. Returns an int jax scalar.
    """
    x = _to_jax(A_or_singular_values, "A_or_singular_values")
    if isinstance(rtol, (int, float)) and not 0 <= rtol < 1:
        raise ValueError(f"rtol must be in [0, 1), got {rtol}")
    if x.ndim == 2:
        s = singular_values(x)
    elif x.ndim == 1:
        s = x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(jnp.result_type(float))
    else:
        raise ValueError("A_or_singular_values must be a matrix (2-D) or a vector of singular values "
                         f"(1-D), got shape {x.shape}")
    if s.shape[0] == 0:
        return jnp.asarray(0)
    return jnp.sum(s > rtol * jnp.max(s))


def distance_to_rank(W, k) -> jax.Array:
    """Relative distance of W to the rank-k matrices: sum_{j>k} s_j^2 / sum_j s_j^2.

    Zangrando et al., Fig. 1 (with k = K): the squared Frobenius distance to the best rank-k
    approximation (Eckart-Young) over ||W||_F^2. 0 when rank W <= k; nan for W = 0 (0/0).
    """
    return _tail_share(singular_values(W), _check_target_rank(k))


def _check_target_rank(k) -> int:
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"k must be a non-negative Python int (the target rank), got {k!r}")
    return int(k)


def _tail_share(s, k: int) -> jax.Array:
    """sum_{j>k} s_j^2 / sum_j s_j^2 of descending singular values s (nan when all are 0)."""
    s2 = s**2
    total = jnp.sum(s2)
    return _safe_div(jnp.sum(s2[k:]), total, total > 0)


def weight_summary(W, K: int, rtol=DEFAULT_RANK_RTOL) -> dict:
    """One weight matrix at a glance, as a dict of 0-d jax arrays (WEIGHT_KEYS).

    "dist_rank_K" (`distance_to_rank` with k = K, Zangrando et al. Fig. 1), "rank" (`numerical_rank`
    at rtol) and "norm" (||W||_F, Zangrando et al. Fig. 4).
    """
    s = singular_values(W)  # one SVD for all three
    return {"dist_rank_K": _tail_share(s, _check_target_rank(K)), "rank": numerical_rank(s, rtol), "norm": jnp.sqrt(jnp.sum(s**2))}


WEIGHT_KEYS = ("dist_rank_K", "rank", "norm")


# ----------------------------------------------------------------------------------------------
# One layer at a glance (used inside the trainer's compiled scan)
# ----------------------------------------------------------------------------------------------

def layer_summary(F, y, K, rtol=DEFAULT_RANK_RTOL) -> dict:
    """All collapse metrics of one layer's features F (d x N), as a dict of 0-d jax arrays.

    Keys (SUMMARY_KEYS): "nc1" (`nc1`, default pinv tolerance), "nc1_trace" (`nc1_trace_ratio`),
    "rank_means" (`numerical_rank` of the uncentred class means at rtol), "tcv" (`tcv`),
    "tcv_norm" (`tcv_normalised`), "nc2_etf" (`nc2_etf_distance`, centred), "nc2_orth"
    (`nc2_orthogonal_distance`, uncentred). Pure and jit/vmap-able with y and K closed over (vmap
    over F). Undefined entries are nan as in the individual functions (e.g. nc1, nc1_trace,
    tcv_norm, nc2_* of an all-zero layer, whose tcv = 0 and rank_means = 0 stay defined).
    """
    F, y, K = _features(F, y, K)
    M = class_means(F, y, K)
    return {
        "nc1": nc1(F, y, K),
        "nc1_trace": nc1_trace_ratio(F, y, K),
        "rank_means": numerical_rank(M, rtol),
        "tcv": tcv(F, y, K),
        "tcv_norm": tcv_normalised(F, y, K),
        "nc2_etf": nc2_etf_distance(M, centre=True),
        "nc2_orth": nc2_orthogonal_distance(M),
    }


# ----------------------------------------------------------------------------------------------
# The "found DNC" rule
# ----------------------------------------------------------------------------------------------

_KINDS = ("orthogonal", "etf")


def dnc_report(means: Sequence, kind: str, rtol=DEFAULT_RANK_RTOL, nc2_tol=DEFAULT_NC2_TOL) -> dict:
    """Per-layer evidence for the "found DNC" rule of SPEC.md, and the verdict (see `found_dnc`).

    Returns {"kind", "rtol", "nc2_tol", "target_rank", "ranks": [int], "nc2": [float],
    "rank_ok": [bool], "nc2_ok": [bool], "layer_ok": [bool], "found_dnc": bool}. Eager (not jit-able).
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    if not 0 <= rtol < 1:
        raise ValueError(f"rtol must be in [0, 1), got {rtol}")
    if not nc2_tol >= 0:
        raise ValueError(f"nc2_tol must be >= 0, got {nc2_tol}")
    if isinstance(means, (jax.Array, np.ndarray)):
        if means.ndim != 3:
            raise ValueError("means must be a list of d_l x K class-mean matrices (or a 3-D array "
                             f"layers x d x K), got an array of shape {means.shape}")
        means = list(means)
    means = [_means_matrix(M, f"means[{i}]") for i, M in enumerate(means)]
    if not means:
        raise ValueError("means must hold at least one class-mean matrix")
    Ks = {M.shape[1] for M in means}
    if len(Ks) != 1:
        raise ValueError(f"every matrix in means must have K columns (one per class), got {sorted(Ks)}")
    K = Ks.pop()
    target = K if kind == "orthogonal" else K - 1
    ranks, dists = [], []
    for M in means:
        rank, dist = _frame_evidence(M, kind, float(rtol))
        ranks.append(int(rank))
        dists.append(float(dist))
    rank_ok = [r == target for r in ranks]
    nc2_ok = [bool(np.isfinite(x) and x <= nc2_tol) for x in dists]
    layer_ok = [a and b for a, b in zip(rank_ok, nc2_ok)]
    return {"kind": kind, "rtol": float(rtol), "nc2_tol": float(nc2_tol), "target_rank": target,
            "ranks": ranks, "nc2": dists, "rank_ok": rank_ok, "nc2_ok": nc2_ok,
            "layer_ok": layer_ok, "found_dnc": all(layer_ok)}


@functools.partial(jax.jit, static_argnames=("kind", "rtol"))
def _frame_evidence(M, kind: str, rtol: float):
    """(rank, NC2 distance) of one layer's class means for `dnc_report`: the numerical rank of M
    ("orthogonal") or of the centred M ("etf"), and the distance to that frame. Jitted: the report
    runs once per lane and layer at the end of every run, where eager dispatch cost more than the
    arithmetic."""
    if kind == "orthogonal":
        return numerical_rank(M, rtol), nc2_orthogonal_distance(M)
    return numerical_rank(M - jnp.mean(M, axis=1, keepdims=True), rtol), nc2_etf_distance(M, centre=True)


def found_dnc(means: Sequence, kind: str, rtol=DEFAULT_RANK_RTOL, nc2_tol=DEFAULT_NC2_TOL) -> bool:
    """The "found DNC" rule on a list of layers' class means (SPEC.md, "Collapse metrics").

    `means`: the class-mean matrices (d_l x K) of the layers to check. True iff every layer passes:
      kind="orthogonal" (MSE / ReLU DNC, Súkeník et al.): numerical_rank(M_l, rtol) == K and
        nc2_orthogonal_distance(M_l) <= nc2_tol;
      kind="etf" (deep linear / cross-entropy DNC, Garrod & Keating): the centred means
        M_l - mean of columns have numerical_rank == K-1 and nc2_etf_distance(M_l) <= nc2_tol.
    Defaults: rtol = 1e-3 (SPEC's rank tolerance, relative to the largest singular value) and
    nc2_tol = DEFAULT_NC2_TOL = 0.25 (Frobenius distance between unit-norm Grams, in [0, 2]). A run whose
    class means have lower rank (e.g. the SRG or paired low-rank solutions) is not DNC. Any nan
    distance (all-zero means) fails.
    """
    return dnc_report(means, kind, rtol=rtol, nc2_tol=nc2_tol)["found_dnc"]


def layer_class_means(Hs: Sequence, Zs: Sequence, y, K: int) -> dict:
    """Class-mean matrices of every layer of a forward pass: {"H1".."HL": means of H_l (the input of
    W_l, after the activation for l >= 2), "Z1".."ZL": means of Z_l = W_l H_l (Z_L: the output)}."""
    out = {f"H{l}": class_means(F, y, K) for l, F in enumerate(Hs, start=1)}
    out.update({f"Z{l}": class_means(F, y, K) for l, F in enumerate(Zs, start=1)})
    return out


def dnc_kind(activation: str, loss: str) -> str:
    """The frame of a model's DNC: "orthogonal" for the MSE ReLU model (Súkeník et al.: non-negative,
    orthogonal class means after each ReLU), "etf" otherwise (linear or cross-entropy: a simplex ETF
    of the centred means, Garrod & Keating)."""
    return "orthogonal" if (activation == "relu" and loss == "mse") else "etf"


@functools.partial(jax.jit, static_argnames=("rtol",))
def _ranks(means: tuple, rtol: float):
    """numerical_rank of each matrix of `means` (uncentred), in one program."""
    return [numerical_rank(M, rtol) for M in means]


def dnc_verdict(means: dict, kind: str, rtol=DEFAULT_RANK_RTOL, nc2_tol=DEFAULT_NC2_TOL,
                rank_only: Sequence[str] = ("H1",), ignore: Sequence[str] = ()) -> dict:
    """The project's one rule for "found DNC" on a trained model, every model type (SPEC.md).

    means: layer name -> class-mean matrix (d x K) of the layers that the rule reads, for an L-layer
    model H_1..H_L and the output Z. Every layer must have full numerical rank at `rtol` (K for kind
    "orthogonal", K-1 after centring for "etf"), and every layer not in `rank_only` must moreover be the
    frame up to NC2 distance `nc2_tol` (H_1 is not passed through an activation: rank only). Layers in
    `ignore` (e.g. H_1 when it is fixed data, not learned) are reported but do not enter the verdict.
    A lower-rank solution (the SRG solution, rank r < K before the last ReLU; the Eq. (5) pairs) fails
    the rank test. Returns {"ranks": {layer: rank of the uncentred means}, "nc2": {layer: distance},
    "found_dnc": bool}.
    """
    names = list(means)
    report = dnc_report([means[n] for n in names], kind, rtol=rtol, nc2_tol=nc2_tol)
    ok = [r and (n in rank_only or c) for n, r, c in zip(names, report["rank_ok"], report["nc2_ok"])]
    return {
        "ranks": {n: int(r) for n, r in zip(names, _ranks(tuple(means[n] for n in names), float(rtol)))},
        "nc2": dict(zip(names, report["nc2"])),
        "found_dnc": bool(all(o for n, o in zip(names, ok) if n not in ignore)),
    }
