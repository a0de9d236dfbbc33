"""Reduced loss of the deep linear UFM and explicit balanced factors realising any output Z.

Garrod & Keating, Lemma 1 (SPEC.md, "Reduced loss at balanced critical points"): at a critical point
of the deep linear UFM every factor H_1, W_1, ..., W_L has the same non-zero singular values and
adjacent factors align, so the loss depends only on the output Z (K x N), with singular values s_i:

    loss(Z) = fit(Z, Y) + (L+1)/2 * (lam_H * prod_l lam_l)^(1/(L+1)) * sum_i s_i^(2/(L+1)).

`balanced_factors` builds parameters {"H1", "W"} whose product is Z and whose full L-DUFM loss
(`deepcollapse.dufm.loss_terms`, activation "linear") equals `reduced_loss(Z, ...)`.

Numerics are NumPy float64. Singular values below `rank_rtol * s_max` are treated as exact zeros:
s^(2/(L+1)) is not negligible for round-off values (e.g. (1e-16)^(2/7) ~ 3e-5), so an exactly
low-rank Z must not be charged for its round-off singular values.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from deepcollapse.dufm import per_layer

DEFAULT_RANK_RTOL = 1e-12


def ce_per_column(Z: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """-log softmax(z_i)[y_i] for every column, accurate to relative round-off even when tiny.

    With d_j = z_j - z_y and M = max_j d_j >= 0 (attained at j*): -log softmax = M + log1p(sum_{j != j*}
    exp(d_j - M)). The naive logsumexp(z) - z_y rounds losses below ~1e-16 |z| to zero, which matters
    at the large optimal scales of small weight decay.
    """
    Z = np.asarray(Z, np.float64)
    y = np.argmax(np.asarray(Y), axis=0)
    cols = np.arange(Z.shape[1])
    D = Z - Z[y, cols][None, :]
    jstar = np.argmax(D, axis=0)
    M = D[jstar, cols]
    E = np.exp(D - M[None, :])
    E[jstar, cols] = 0.0
    return M + np.log1p(E.sum(axis=0))


def fit_ce_np(Z: np.ndarray, Y: np.ndarray) -> float:
    """Cross-entropy fit 1/N sum_i -log softmax(z_i)[y_i] (Garrod & Keating, Eq. 2), NumPy float64.

    Y must be one-hot (K x N)."""
    return float(np.mean(ce_per_column(Z, Y)))


def fit_mse_np(Z: np.ndarray, Y: np.ndarray) -> float:
    """MSE fit 1/(2N) ||Z - Y||_F^2 (Súkeník et al., Eq. 1), NumPy float64."""
    Z = np.asarray(Z, np.float64)
    return float(0.5 * np.sum((Z - np.asarray(Y)) ** 2) / Z.shape[1])


FITS_NP = {"ce": fit_ce_np, "mse": fit_mse_np}


def lam_vector(lam_W, L: int) -> np.ndarray:
    """lam_1..lam_L as a float64 array from a scalar or a per-layer sequence (`dufm.per_layer`)."""
    return per_layer(lam_W, L)


def lam_geo(lam_H, lam_W, L: int) -> float:
    """Geometric mean (lam_H * prod_l lam_l)^(1/(L+1)) of the L+1 weight decays (Lemma 1)."""
    lams = np.concatenate([[float(lam_H)], lam_vector(lam_W, L)])
    if np.any(lams < 0) or not np.all(np.isfinite(lams)):
        raise ValueError(f"weight decays must be finite and >= 0, got lam_H={lam_H}, lam_W={list(lams[1:])}")
    if np.any(lams == 0):
        return 0.0
    return float(np.exp(np.mean(np.log(lams))))


def nonzero_singular_values(Z: np.ndarray, rank_rtol: float = DEFAULT_RANK_RTOL) -> np.ndarray:
    """Singular values of Z above rank_rtol * s_max (the rest count as exact zeros)."""
    s = np.linalg.svd(np.asarray(Z, np.float64), compute_uv=False)
    if s.size == 0 or s[0] == 0:
        return s[:0]
    return s[s > rank_rtol * s[0]]


def reg_of_singular_values(s: np.ndarray, L: int, lam_H, lam_W) -> float:
    """(L+1)/2 * lam_geo * sum_i s_i^(2/(L+1)): the minimal regularisation realising singular values s
    with L+1 factors (Garrod & Keating, Lemma 1)."""
    s = np.asarray(s, np.float64)
    return 0.5 * (L + 1) * lam_geo(lam_H, lam_W, L) * float(np.sum(s ** (2.0 / (L + 1))))


def reduced_loss(Z, Y, L: int, lam_H, lam_W, loss: str = "ce", rank_rtol: float = DEFAULT_RANK_RTOL) -> float:
    """Reduced loss of the deep linear UFM at a balanced point (Garrod & Keating, Lemma 1; SPEC.md):

        fit(Z, Y) + (L+1)/2 * (lam_H * prod_l lam_l)^(1/(L+1)) * sum_i s_i(Z)^(2/(L+1)).

    Z, Y: K x N; lam_W: scalar or L values; loss: "ce" or "mse".
    """
    if loss not in FITS_NP:
        raise ValueError(f"loss must be one of {sorted(FITS_NP)}, got {loss!r}")
    Z = np.asarray(Z, np.float64)
    Y = np.asarray(Y, np.float64)
    if Z.ndim != 2 or Z.shape != Y.shape:
        raise ValueError(f"Z and Y must be K x N matrices of one shape, got {Z.shape} and {Y.shape}")
    s = nonzero_singular_values(Z, rank_rtol)
    return FITS_NP[loss](Z, Y) + reg_of_singular_values(s, L, lam_H, lam_W)


def balanced_factors(Z, L: int, widths: Sequence[int] | int, lam_H, lam_W,
                     rank_rtol: float = DEFAULT_RANK_RTOL) -> dict:
    """Explicit balanced factors of Z (Garrod & Keating, Lemma 1; SPEC.md).

    Z = U S V^T (thin SVD, rank r): H_1 = S^(1/(L+1)) V^T, W_l = S^(1/(L+1)) (l = 1..L-1),
    W_L = U S^(1/(L+1)), each zero-padded to the widths d_1..d_L (every width >= r). With unequal
    weight decays the factor with decay lam_f is multiplied by (lam_geo/lam_f)^(1/2); these scalars
    multiply to 1, so W_L ... W_1 H_1 = Z, and every factor contributes lam_geo/2 sum_i s_i^(2/(L+1))
    to the regularisation, the minimum of Lemma 1.

    Returns {"H1": (d_1, N), "W": (W_1, ..., W_L)} as NumPy float64 arrays (W_l is d_{l+1} x d_l,
    d_{L+1} = K).
    """
    Z = np.asarray(Z, np.float64)
    if Z.ndim != 2:
        raise ValueError(f"Z must be a K x N matrix, got shape {Z.shape}")
    lam = lam_vector(lam_W, L)
    if not float(lam_H) > 0 or np.any(lam <= 0):
        raise ValueError(f"balanced_factors needs every weight decay > 0, got lam_H={lam_H}, lam_W={list(lam)}")
    widths = (int(widths),) * L if np.isscalar(widths) else tuple(int(w) for w in widths)
    if len(widths) != L:
        raise ValueError(f"widths must be one int or L={L} ints, got {list(widths)}")
    K, N = Z.shape
    U, s, Vt = np.linalg.svd(Z, full_matrices=False)
    r = len(nonzero_singular_values(Z, rank_rtol))
    if min(widths) < r:
        raise ValueError(f"widths must all be >= rank(Z)={r}, got {list(widths)}")
    root = s[:r] ** (1.0 / (L + 1))
    g = lam_geo(lam_H, lam, L)
    c_H = np.sqrt(g / float(lam_H))
    c_W = np.sqrt(g / lam)

    H1 = np.zeros((widths[0], N))
    H1[:r] = c_H * root[:, None] * Vt[:r]
    dims = list(widths) + [K]
    W = []
    for l in range(L):
        Wl = np.zeros((dims[l + 1], dims[l]))
        if l == L - 1:
            Wl[:, :r] = c_W[l] * U[:, :r] * root[None, :]
        else:
            Wl[:r, :r] = c_W[l] * np.diag(root)
        W.append(Wl)
    return {"H1": H1, "W": tuple(W)}


def product(params: dict) -> np.ndarray:
    """W_L ... W_1 H_1 (the deep linear UFM output)."""
    out = np.asarray(params["H1"])
    for Wl in params["W"]:
        out = np.asarray(Wl) @ out
    return out
