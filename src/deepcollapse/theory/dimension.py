"""Dimension of the set of deep linear UFM parameters that produce a given output (Garrod & Keating, Thm 5).

Setting (SPEC.md): parameters theta = (H_1, W_1, ..., W_L), H_1 is d_1 x N, W_l is d_{l+1} x d_l,
d_{L+1} = K; Z = W_L ... W_1 H_1. At a critical point every factor is balanced (Lemma 1:
W_l^T W_l = W_{l-1} W_{l-1}^T, W_1^T W_1 = H_1 H_1^T), so with Z = U_Z S V^T (rank r) the factors are

    H_1 = F_1 S^{1/(L+1)} V^T,  W_l = F_{l+1} S^{1/(L+1)} F_l^T (l < L),  W_L = U_Z S^{1/(L+1)} F_L^T,

with F_l (d_l x r) orthonormal frames of the L intermediate spaces (App. B.7, the U_l of Lemma 1 with
only their first r columns mattering). Derivation of the dimension D(Z) of {theta critical : product = Z}:

  * The group O(d_1) x ... x O(d_L) acts by H_1 -> Q_1 H_1, W_l -> Q_{l+1} W_l Q_l^T, W_L -> W_L Q_L^T;
    it preserves the product and the loss, and acts transitively on the frames F_l (O(d) is transitive
    on the Stiefel manifold V_r(R^d)). Distinct frames give distinct parameters: H_1 fixes F_1 (given V,
    S), then W_1 fixes F_2, and so on. The common O(r) ambiguity of (U_Z, V) (when singular values are
    equal) is absorbed in the frames. Hence the fibre is a finite union of orbits, of dimension
        D(r; d_1..d_L) = sum_l dim V_r(R^{d_l}) = sum_l (d_l r - r(r+1)/2)
    (orbit = group / stabiliser O(d_l - r) in each space), WHATEVER the multiplicities of the singular
    values. `orbit_dimension` and `critical_set_dimension` check this numerically: the rank of the Lie
    algebra's tangent vectors at theta (a lower bound), and the nullity of [Hessian; d product/d theta]
    at a critical point (an upper bound on the tangent space of the critical set inside the fibre);
    they agree with D at the DNC and Eq. 5 critical points.

  * The paper's App. B.7 instead counts a Grassmannian Gr(r, d) = r(d-r) per space when all singular
    values are equal (DNC), arguing that rotating degenerate singular vectors leaves W_l unchanged.
    That holds for a rotation applied to both F_l and F_{l+1}, but propagated along the chain it ends
    at U_Z and V, so only ONE O(r) is redundant, not L; the paper undercounts DNC by L r(r-1)/2.
    With the paper's count, D_DNC = L (K-1)(d-K+1) against the Stiefel bound L (d r - r(r+1)/2) for a
    rank-r output, and the ratio D_DNC / D_r starts below 1 and increases to (K-1)/r (Theorem 5).
    With the exact count, D_DNC / D_r = ((K-1) d - K(K-1)/2) / (r d - r(r+1)/2) also increases
    monotonically to (K-1)/r (d/dd has the sign of (K-1) r (K-1-r)/2 > 0), but starts at or above 1
    (at d = K it is K(K-1) / (r(2K-r-1)) >= 1). Both counts are offered (`count`), "exact" by default.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

COUNTS = ("exact", "paper")
DEFAULT_RANK_RTOL = 1e-9


def stiefel_dim(r: int, d: int) -> int:
    """dim V_r(R^d) = d r - r(r+1)/2: orthonormal r-frames in R^d (App. B.7)."""
    _check_rd(r, d)
    return d * r - r * (r + 1) // 2


def grassmann_dim(r: int, d: int) -> int:
    """dim Gr(r, d) = r (d - r): r-dimensional subspaces of R^d (App. B.7)."""
    _check_rd(r, d)
    return r * (d - r)


def _check_rd(r: int, d: int) -> None:
    if not isinstance(r, (int, np.integer)) or r < 0:
        raise ValueError(f"r (rank) must be an int >= 0, got {r!r}")
    if not isinstance(d, (int, np.integer)) or d < r:
        raise ValueError(f"width d must be an int >= r={r}, got {d!r}")


def _widths(widths, L: int) -> tuple[int, ...]:
    if not isinstance(L, (int, np.integer)) or L < 1:
        raise ValueError(f"L must be an int >= 1, got {L!r}")
    w = (widths,) * L if np.isscalar(widths) else tuple(widths)
    if len(w) != L:
        raise ValueError(f"widths must be one int or L={L} ints, got {list(w)}")
    return w


def fibre_dimension(r: int, widths, L: int, count: str = "exact", equal_singular_values: bool = True) -> int:
    """Dimension of the set of critical parameters producing an output of rank r (Theorem 5, App. B.7).

    count="exact": sum_l (d_l r - r(r+1)/2) (the module doc's derivation; independent of the
    singular-value multiplicities). count="paper": the paper's count, sum_l r(d_l - r) (Grassmannian)
    when all non-zero singular values are equal, else the Stiefel count (its upper bound).
    """
    if count not in COUNTS:
        raise ValueError(f"count must be one of {COUNTS}, got {count!r}")
    ws = _widths(widths, L)
    if count == "paper" and equal_singular_values:
        return int(sum(grassmann_dim(r, d) for d in ws))
    return int(sum(stiefel_dim(r, d) for d in ws))


def dimension_ratio(K: int, r: int, L: int, widths: Sequence[int], count: str = "exact") -> list[dict]:
    """Theorem 5: rows {width, dim_dnc, dim_lowrank, ratio = dim_dnc / dim_lowrank, count} over widths d.

    dim_dnc: rank K-1 with equal singular values (DNC); dim_lowrank: rank r < K-1 (Stiefel count, the
    paper's bound for a general low-rank critical point; with count="exact" the same for any
    multiplicities). Theorem 5 (paper count): ratio increasing in d, from below 1, to (K-1)/r.
    Exact count: increasing to (K-1)/r, from >= 1 (see the module doc).
    """
    if not isinstance(K, (int, np.integer)) or K < 3:
        raise ValueError(f"K must be an int >= 3, got {K!r}")
    if not isinstance(r, (int, np.integer)) or not 1 <= r < K - 1:
        raise ValueError(f"r must be an int with 1 <= r < K-1 = {K - 1} (a rank below DNC's), got {r!r}")
    rows = []
    for d in widths:
        if not isinstance(d, (int, np.integer)) or d < K - 1:
            raise ValueError(f"every width must be an int >= K-1 = {K - 1}, got {d!r}")
        dd = fibre_dimension(K - 1, int(d), L, count, equal_singular_values=True)
        dl = fibre_dimension(r, int(d), L, count, equal_singular_values=False)
        rows.append({"width": int(d), "dim_dnc": dd, "dim_lowrank": dl,
                     "ratio": dd / dl if dl else float("inf"), "count": count})
    return rows


def ratio_limit(K: int, r: int) -> float:
    """lim_{d -> inf} D_DNC / D_r = (K-1)/r (Theorem 5; both counts)."""
    return (K - 1) / r


# ----------------------------------------------------------------------------- numerical checks


def _product(params: dict):
    out = params["H1"]
    for Wl in params["W"]:
        out = Wl @ out
    return out


def _rank(M: np.ndarray, rtol: float) -> int:
    """`metrics.numerical_rank` of M in float64."""
    from deepcollapse.metrics import numerical_rank

    return int(numerical_rank(np.asarray(M, np.float64), rtol))


def orbit_dimension(params: dict, rtol: float = DEFAULT_RANK_RTOL) -> int:
    """Dimension of the O(d_1) x ... x O(d_L) orbit through params: the rank (SVD, singular values above
    rtol * max) of the tangent vectors of the Lie algebra generators E_ij - E_ji of each space l,
    delta(factor into space l) = A (factor), delta(W_l) = -W_l A. A lower bound on D(Z)."""
    leaves = {"H1": np.asarray(params["H1"], np.float64), "W": [np.asarray(w, np.float64) for w in params["W"]]}
    L = len(leaves["W"])
    vecs = []
    for l in range(L):
        d = leaves["W"][l].shape[1]
        for i in range(d):
            for j in range(i + 1, d):
                A = np.zeros((d, d))
                A[i, j], A[j, i] = 1.0, -1.0
                t = {"H1": np.zeros_like(leaves["H1"]), "W": [np.zeros_like(w) for w in leaves["W"]]}
                if l == 0:
                    t["H1"] = A @ leaves["H1"]
                else:
                    t["W"][l - 1] = A @ leaves["W"][l - 1]
                t["W"][l] = t["W"][l] - leaves["W"][l] @ A
                t["W"] = tuple(t["W"])
                vecs.append(np.asarray(ravel_pytree(t)[0]))
    return _rank(np.array(vecs), rtol) if vecs else 0


def critical_set_dimension(hessian: np.ndarray, params: dict, rtol: float = DEFAULT_RANK_RTOL) -> int:
    """Nullity of [Hessian / max|H|; J / max|J|], J = d vec(product)/d theta, at a critical point: an
    upper bound on the dimension of the set of critical points producing the same output (its tangent
    space lies in both kernels). `hessian`: the dense Hessian (`hessian.dense_hessian`) at params."""
    x0, unravel = ravel_pytree(jax.tree_util.tree_map(jnp.asarray, params))
    H = np.asarray(hessian, np.float64)
    if H.shape != (x0.size, x0.size):
        raise ValueError(f"hessian must be {x0.size} x {x0.size} for these params, got {H.shape}")
    J = np.asarray(jax.jacfwd(lambda x: _product(unravel(x)).ravel())(x0))
    M = np.vstack([H / np.max(np.abs(H)), J / np.max(np.abs(J))])
    return int(x0.size - _rank(M, rtol))
