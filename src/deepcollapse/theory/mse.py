"""The deep neural collapse (DNC) solution of the MSE ReLU L-DUFM and its exact optimal loss.

Súkeník, Lampert, Mondelli (2024), "Neural collapse vs. low-rank bias" (SPEC.md, "DNC, MSE ReLU").
A DNC solution has collapsed features (every column of a class equals its class mean) and, in every
layer, class means forming an orthogonal frame. With ReLU the frame is non-negative, so ReLU is the
identity on it, and the output class means are c_k e_k.

Reduction (per class). Orthogonal non-negative vectors have disjoint supports, and the minimum-norm
weight mapping one orthogonal frame onto the next is diagonal in the frames' bases, so the loss
decouples over classes. Write x_{0,k} = ||mu_{1,k}|| (H_1) and x_{l,k} for the gain of W_l on class k;
then c_k = prod_j x_{j,k} and, with alpha_{0,k} = lam_H n_k, alpha_{l,k} = lam_l, p = L+1,

    loss = sum_k [ n_k/(2N) (c_k - 1)^2 + 1/2 sum_j alpha_{j,k} x_{j,k}^2 ]
         >= sum_k [ n_k/(2N) (c_k - 1)^2 + p/2 (lam_H n_k prod_l lam_l)^(1/p) c_k^(2/p) ]   (AM-GM),

with equality when every alpha_{j,k} x_{j,k}^2 is equal. Balanced classes (n_k = n, N = nK): the
closed form is min_c (c-1)^2/2 + K (L+1)/2 (lam_H n prod_l lam_l)^(1/(L+1)) c^(2/(L+1)); at c = 0 the
loss is 1/2. Unequal class sizes give each class its own c_k (smaller classes pay more per unit of
fit, so their c_k is smaller). Each per-class problem is solved by `min_fit_plus_power`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from deepcollapse.dufm import per_layer
from deepcollapse.theory.constructions import Construction

from .roots import brentq


def lam_layers(lam_W, L: int) -> np.ndarray:
    """lam_1..lam_L (float64) from a scalar or L values; every one must be finite and > 0."""
    lam = per_layer(lam_W, L)
    if not np.all(np.isfinite(lam)) or np.any(lam <= 0):
        raise ValueError(f"lam_W must be finite and > 0, got {lam.tolist()}")
    return lam


def check_lam_H(lam_H) -> float:
    lam_H = float(lam_H)
    if not np.isfinite(lam_H) or lam_H <= 0:
        raise ValueError(f"lam_H must be finite and > 0, got {lam_H}")
    return lam_H


def class_sizes(K: int, sizes) -> np.ndarray:
    """n_1..n_K (int) from an int n (balanced) or K positive ints."""
    if not isinstance(K, (int, np.integer)) or isinstance(K, bool) or K < 1:
        raise ValueError(f"K must be an int >= 1, got {K!r}")
    s = np.asarray(sizes)
    if s.ndim == 0:
        s = np.full(K, s.item())
    if s.shape != (K,):
        raise ValueError(f"sizes must be an int or K={K} ints, got shape {s.shape}")
    if not np.all(np.equal(np.mod(s, 1), 0)) or np.any(s < 1):
        raise ValueError(f"sizes must be positive integers, got {s.tolist()}")
    return s.astype(np.int64)


def min_fit_plus_power(A: float, Bc: float, p: int) -> tuple[float, float]:
    """Global minimum over c >= 0 of g(c) = A (c - 1)^2 + Bc c^(2/p), p >= 2 (returns (g_min, c_min)).

    The 1-D problem of the DNC and SRG closed forms (Súkeník et al., DNC/SRG losses after AM-GM).
    g is not convex (c^(2/p) is concave), so: with c = u^p, g'(u) = 2u h(u),
    h(u) = A p u^(p-2) (u^p - 1) + Bc. h(0) = h(1) = Bc > 0 (p > 2), and h decreases on (0, u*) and
    increases on (u*, 1), u*^p = (p-2)/(2p-2) (for p = 2, u* = 0 and h is increasing). So the only
    interior local minimum is the root of h on (u*, 1), which exists iff h(u*) < 0; it is found by
    bracketing (Brent) to machine precision and compared with the boundary minimum c = 0 (g = A).
    c >= 1 is never optimal (g' > 0 there).
    """
    if A <= 0 or Bc < 0 or p < 2:
        raise ValueError(f"need A > 0, Bc >= 0, p >= 2; got A={A}, Bc={Bc}, p={p}")
    if Bc == 0:
        return 0.0, 1.0

    def h(u):
        return A * p * u ** (p - 2) * (u**p - 1.0) + Bc

    u_star = ((p - 2) / (2 * p - 2)) ** (1.0 / p)
    best = (A, 0.0)
    if h(u_star) < 0:
        u = brentq(h, u_star, 1.0, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
        c = u**p
        g = A * (c - 1.0) ** 2 + Bc * u**2
        if g < best[0]:
            best = (g, c)
    return float(best[0]), float(best[1])


def dnc_class_coefficients(L: int, sizes: np.ndarray, lam_H: float, lam: np.ndarray) -> np.ndarray:
    """Per-class AM-GM coefficients b_k = (L+1)/2 (lam_H n_k prod_l lam_l)^(1/(L+1)) (module docstring)."""
    p = L + 1
    log_prod = np.log(lam_H) + np.sum(np.log(lam)) + np.log(sizes.astype(np.float64))
    return 0.5 * p * np.exp(log_prod / p)


def dnc_loss(K: int, L: int, sizes, lam_H, lam_W) -> tuple[float, np.ndarray | float]:
    """Optimal loss of the DNC solution of the MSE ReLU L-DUFM, over all its scales.

    Súkeník et al. (2024), DNC solution (SPEC.md, "DNC, MSE ReLU"); closed form in the module
    docstring: loss = sum_k min_{c_k} [n_k/(2N)(c_k-1)^2 + (L+1)/2 (lam_H n_k prod lam_l)^(1/(L+1))
    c_k^(2/(L+1))]. Balanced: (c-1)^2/2 + K (L+1)/2 (lam_H n prod lam_l)^(1/(L+1)) c^(2/(L+1)).

    sizes: int n (balanced) or the K class sizes; lam_W: scalar or L values (all > 0).
    Returns (loss, c): c is a float for balanced classes, else the array of per-class c_k
    (c = 0 means the collapsed solution Z = 0 is optimal, loss = 1/2).
    """
    lam_H = check_lam_H(lam_H)
    lam = lam_layers(lam_W, L)
    n = class_sizes(K, sizes)
    N = float(n.sum())
    b = dnc_class_coefficients(L, n, lam_H, lam)
    out = [min_fit_plus_power(nk / (2 * N), bk, L + 1) for nk, bk in zip(n, b)]
    loss = float(sum(g for g, _ in out))
    c = np.array([ck for _, ck in out])
    if np.all(n == n[0]):
        return loss, float(c[0])
    return loss, c


def check_widths(widths: Sequence[int], L: int, minimum: Sequence[int], what: str) -> list[int]:
    widths = [int(d) for d in widths]
    if len(widths) != L:
        raise ValueError(f"widths must have L={L} entries d_1..d_L, got {len(widths)}")
    for l, (d, m) in enumerate(zip(widths, minimum)):
        if d < m:
            raise ValueError(f"widths[{l}] = d_{l + 1} = {d} is too small for {what}: need >= {m} "
                             f"(required: {list(minimum)})")
    return widths


def dnc_solution(K: int, L: int, widths: Sequence[int], sizes, lam_H, lam_W) -> Construction:
    """Explicit DNC parameters H_1, W_1..W_L (widths d_l >= K) whose L-DUFM loss is `dnc_loss`.

    Súkeník et al. (2024), DNC solution. Class k lives on coordinate k of every layer:
    H_1 = [x_{0,k} e_k]_{columns}, W_l = diag(x_{l,k}) in the top-left K x K block, with
    x_{j,k} = c_k^(1/p) (g_k / alpha_{j,k})^(1/2), g_k = (prod_j alpha_{j,k})^(1/p) (the AM-GM
    equality case, module docstring), so every layer's class means are a non-negative orthogonal frame
    and the output class means are c_k e_k.
    scales: {"c": per-class c_k, "x": (L+1) x K array of the factor gains}.
    """
    lam_H = check_lam_H(lam_H)
    lam = lam_layers(lam_W, L)
    n = class_sizes(K, sizes)
    widths = check_widths(widths, L, [K] * L, "the DNC solution (orthogonal frame of K class means)")
    N = int(n.sum())
    p = L + 1
    b = dnc_class_coefficients(L, n, lam_H, lam)
    gc = [min_fit_plus_power(nk / (2 * N), bk, p) for nk, bk in zip(n, b)]
    c = np.array([ck for _, ck in gc])
    alpha = np.vstack([lam_H * n.astype(np.float64), np.repeat(lam[:, None], K, axis=1)])  # (p, K)
    geo = np.exp(np.mean(np.log(alpha), axis=0))
    x = c[None, :] ** (1.0 / p) * np.sqrt(geo[None, :] / alpha)
    y = np.repeat(np.arange(K), n)
    H1 = np.zeros((widths[0], N))
    H1[y, np.arange(N)] = x[0, y]
    dims = widths + [K]
    W = []
    for l in range(L):
        Wl = np.zeros((dims[l + 1], dims[l]))
        Wl[np.arange(K), np.arange(K)] = x[l + 1]
        W.append(Wl)
    loss = float(sum(g for g, _ in gc))
    reg = float(np.sum(b * c ** (2.0 / p)))
    fit = float(np.sum(n / (2.0 * N) * (c - 1.0) ** 2))
    return Construction(
        params={"H1": H1, "W": tuple(W)}, loss=loss, fit=fit, reg=reg,
        scales={"c": c, "x": x},
        meta={"solution": "dnc", "K": K, "L": L, "sizes": n.tolist(), "widths": widths,
              "lam_H": lam_H, "lam_W": lam.tolist(), "activation": "relu", "fit": "mse"},
    )
