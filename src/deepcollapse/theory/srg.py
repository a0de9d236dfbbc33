"""The strongly-regular-graph (SRG) low-rank solution of the MSE ReLU L-DUFM and its optimal loss.

Súkeník, Lampert, Mondelli (2024), "Neural collapse vs. low-rank bias", Sec. 4 and Fig. 1
(SPEC.md, "SRG, MSE ReLU"). K = C(r, 2) classes are the edges of the complete graph K_r; B (r x K) is
its vertex-edge incidence matrix, so B^T B = 2 I_K + A(T(r)) with T(r) the triangular graph (line
graph of K_r), strongly regular with parameters (C(r,2), 2(r-2), r-2, 4); B B^T = (r-2) I_r + 11^T.

Construction (balanced classes, n per class; gains x_0..x_L > 0, shape parameter a):
  - class means of H_1..H_{L-1}: scaled copies of B (rank r, non-negative, so ReLU is the identity);
    H_1 = x_0 B (kron 1_n^T), W_l = x_l I_r for l = 1..L-2;
  - W_{L-1} = x_{L-1} (B^T - a/2 11^T) (K x r): the last hidden pre-activation is
    prod_{j<L} x_j (B^T B - a 11^T) (uses B^T 1_r = 2 1_K), rank r. Its diagonal is 2 - a, entries of
    adjacent edges 1 - a, of disjoint edges -a, so for 1 <= a < 2 its ReLU is (2 - a) prod x_j I_K;
    this W_{L-1} is the unique (hence minimum-norm) map taking B to that matrix (B has full row rank r
    for r >= 3);
  - W_L = x_L I_K, output c I_K per class with c = (2 - a) prod_j x_j.
Norms: ||H_1||^2 = x_0^2 n 2K, ||W_l||^2 = x_l^2 r, ||W_{L-1}||^2 = x_{L-1}^2 K phi(a) with
phi(a) = 2(1 - a/2)^2 + (r-2) a^2/4, ||W_L||^2 = x_L^2 K. With alpha_j = lam_j ||base_j||^2 and
p = L + 1, AM-GM over the factors (equality when all alpha_j x_j^2 are equal) gives

    L_SRG = min_{c, a} (c - 1)^2/2 + p/2 (prod_j alpha_j(a) / (2 - a)^2)^(1/p) c^(2/p),

and phi(a)/(2-a)^2 = 1/2 + (r-2)/4 (a/(2-a))^2 is increasing in a, so the optimum is a = 1
(phi/(2-a)^2 = r/4): the infimum over SPEC.md's open range 1 < a < 2 is attained at its closed end,
where the adjacent-edge entries are exactly 0 and ReLU(0) = 0 still gives (2 - a) I_K. The remaining
1-D problem in c is solved exactly by `mse.min_fit_plus_power`.

Variant "balanced" (ours, a strict improvement; needs L >= 3): H_1 is not passed through ReLU, so
(H_1, W_1) need only multiply to the non-negative x B; the balanced pair H_1 = x_0 (BB^T)^(-1/4) B,
W_1 = x_1 (BB^T)^(1/4) minimises alpha_0 alpha_1 (Cauchy-Schwarz: tr(P^(2b+1)) tr(P^(-2b)) >=
tr(P^(1/2))^2), replacing n 2K * r by n ||B||_*^2 with ||B||_* = sqrt(2r-2) + (r-1) sqrt(r-2).
Variant "spec" (default) is the construction of SPEC.md / the paper's Fig. 1 (every M_l, l < L, a
scaled copy of B); its loss is the L_SRG reported in `srg_ratio_table`. `srg_relaxed_loss` (ours)
lowers the loss further by letting the last ReLU output be (2-a) I + (1-a)_+ A(T(r)), a < 1, with a
ridge-optimal last layer.
"""

from __future__ import annotations

from itertools import combinations
from typing import Sequence

import numpy as np

from deepcollapse.theory.constructions import Construction
from deepcollapse.theory.mse import (
    check_lam_H,
    check_widths,
    dnc_loss,
    lam_layers,
    min_fit_plus_power,
)

SRG_VARIANTS = ("spec", "balanced")
TABLE_VARIANTS = SRG_VARIANTS + ("relaxed",)


def _check_r(r) -> int:
    if not isinstance(r, (int, np.integer)) or isinstance(r, bool) or r < 3:
        raise ValueError(f"r must be an int >= 3 (K = C(r,2) classes), got {r!r}")
    return int(r)


def graph_edges(r: int) -> list[tuple[int, int]]:
    """Edges (i, j), i < j, of the complete graph K_r in lexicographic order: class k = edge k."""
    return list(combinations(range(_check_r(r)), 2))


def incidence_matrix(r: int) -> np.ndarray:
    """Vertex-edge incidence matrix B (r x C(r,2)) of K_r (Súkeník et al., Sec. 4), float64."""
    E = graph_edges(r)
    B = np.zeros((r, len(E)))
    for k, (i, j) in enumerate(E):
        B[i, k] = B[j, k] = 1.0
    return B


def triangular_graph(r: int) -> np.ndarray:
    """Adjacency A(T(r)) (K x K) of the triangular graph: edges of K_r adjacent iff they share a vertex.

    T(r) is strongly regular with parameters (C(r,2), 2(r-2), r-2, 4), and B^T B = 2 I + A(T(r)).
    """
    E = graph_edges(r)
    K = len(E)
    A = np.zeros((K, K))
    for a in range(K):
        for b in range(K):
            if a != b and set(E[a]) & set(E[b]):
                A[a, b] = 1.0
    return A


def nuclear_norm_B(r: int) -> float:
    """||B||_* = sqrt(2r-2) + (r-1) sqrt(r-2): BB^T = (r-2)I + 11^T has eigenvalues 2r-2 and r-2 (x r-1)."""
    return float(np.sqrt(2 * r - 2) + (r - 1) * np.sqrt(r - 2))


def _phi(r: int, a: float) -> float:
    """||B^T - a/2 11^T||_F^2 / K = 2(1-a/2)^2 + (r-2) a^2/4 (module docstring)."""
    return 2 * (1 - a / 2) ** 2 + (r - 2) * a**2 / 4


def _check_a(a) -> float:
    a = float(a)
    if not (1.0 <= a < 2.0):
        raise ValueError(f"a must be in [1, 2) so that ReLU(B^T B - a 11^T) = (2-a) I, got {a}")
    return a


def _balanced_n(K: int, sizes_or_n) -> int:
    s = np.asarray(sizes_or_n)
    if s.ndim == 0:
        s = s.reshape(1)
    if s.ndim != 1 or (s.size not in (1, K)):
        raise ValueError(f"sizes_or_n must be an int n or K={K} equal class sizes, got {sizes_or_n!r}")
    if not np.all(np.equal(np.mod(s, 1), 0)) or np.any(s < 1):
        raise ValueError(f"sizes_or_n must hold positive integers, got {sizes_or_n!r}")
    if np.any(s != s[0]):
        raise ValueError(f"the SRG solution is implemented for balanced classes only; got sizes {s.tolist()}")
    return int(s[0])


def _check_variant(variant: str, L: int) -> str:
    if variant not in SRG_VARIANTS:
        raise ValueError(f"variant must be one of {SRG_VARIANTS}, got {variant!r}")
    if variant == "balanced" and L < 3:
        raise ValueError(f"variant 'balanced' needs L >= 3 (a ReLU layer between W_1 and W_(L-1)), got L={L}")
    if L < 2:
        raise ValueError(f"the SRG solution needs L >= 2 (one hidden ReLU layer at least), got L={L}")
    return variant


def base_norms_sq(r: int, L: int, n: int, a: float, variant: str = "spec") -> np.ndarray:
    """||base_j||_F^2 of the L+1 factors at unit gains (module docstring): H_1, W_1, ..., W_L."""
    K = r * (r - 1) // 2
    norms = np.empty(L + 1)
    norms[0] = n * 2 * K
    norms[1:L - 1] = r
    norms[L - 1] = K * _phi(r, a)
    norms[L] = K
    if variant == "balanced":
        nuc = nuclear_norm_B(r)
        norms[0], norms[1] = n * nuc, nuc
    return norms


def srg_loss(r: int, L: int, sizes_or_n, lam_H, lam_W, variant: str = "spec", a: float | None = None):
    """L_SRG: the loss of the SRG solution, minimised over its gains and a (module docstring).

    Súkeník et al. (2024), SRG solution (Fig. 1). Closed form
        min_c (c-1)^2/2 + (L+1)/2 (prod_j alpha_j / (2-a)^2)^(1/(L+1)) c^(2/(L+1)),   a* = 1.
    a: None for the optimum, or a fixed value in [1, 2).
    Returns (loss, info) with info = {"c", "a", "x" (the L+1 gains), "alpha", "fit", "reg", "K",
    "variant"}.
    """
    r = _check_r(r)
    if not isinstance(L, (int, np.integer)) or isinstance(L, bool):
        raise ValueError(f"L must be an int >= 2, got {L!r}")
    variant = _check_variant(variant, L)
    K = r * (r - 1) // 2
    n = _balanced_n(K, sizes_or_n)
    lam_H = check_lam_H(lam_H)
    lam = lam_layers(lam_W, L)
    a = 1.0 if a is None else _check_a(a)
    p = L + 1
    alpha = np.concatenate([[lam_H], lam]) * base_norms_sq(r, L, n, a, variant)
    log_G = np.sum(np.log(alpha)) - 2 * np.log(2 - a)
    coef = 0.5 * p * np.exp(log_G / p)
    loss, c = min_fit_plus_power(0.5, coef, p)
    P = c / (2 - a)  # = prod_j x_j
    geo = np.exp(np.mean(np.log(alpha)))
    x = P ** (1.0 / p) * np.sqrt(geo / alpha)
    fit = 0.5 * (c - 1) ** 2
    info = {"c": c, "a": a, "x": x, "alpha": alpha, "fit": fit, "reg": loss - fit, "K": K,
            "variant": variant}
    return loss, info


def srg_base(r: int, L: int, widths: Sequence[int], n: int, variant: str = "spec"):
    """Unit-gain factors of the SRG construction at the given widths (module docstring).

    Returns (H1, Ws, Wb, Wa, WL): H1 (d_1 x N), Ws = [W_1, ..., W_(L-2)] (d_{l+1} x d_l), the
    (L-1)-th weight Wb + a * Wa = B^T - a/2 11^T (padded) and W_L = [I_K 0]. Widths: d_1..d_{L-1} >= r (they carry
    the rank-r copies of B), d_L >= K (the ReLU output (2-a) I_K has rank K).
    """
    K = r * (r - 1) // 2
    widths = check_widths(widths, L, [r] * (L - 1) + [K], f"the SRG solution (r={r}, K={K})")
    B = incidence_matrix(r)
    dims = widths + [K]
    if variant == "balanced":
        evals, V = np.linalg.eigh(B @ B.T)
        P14 = (V * evals**0.25) @ V.T
        Pm14 = (V * evals**-0.25) @ V.T
        M1, W1 = Pm14 @ B, P14
    else:
        M1, W1 = B, np.eye(r)
    H1 = np.zeros((dims[0], K * n))
    H1[:r] = np.repeat(M1, n, axis=1)
    Ws = []
    for l in range(L - 2):
        Wl = np.zeros((dims[l + 1], dims[l]))
        Wl[:r, :r] = W1 if l == 0 else np.eye(r)
        Ws.append(Wl)
    Wb = np.zeros((dims[L - 1], dims[L - 2]))
    Wb[:K, :r] = B.T
    Wa = np.zeros_like(Wb)
    Wa[:K, :r] = -0.5
    WL = np.zeros((K, dims[L - 1]))
    WL[:, :K] = np.eye(K)
    return H1, Ws, Wb, Wa, WL


def srg_params(r: int, L: int, widths: Sequence[int], n: int, x, a: float, variant: str = "spec", xp=np):
    """The SRG parameters {"H1", "W"} for gains x_0..x_L and shape a (xp = numpy or jax.numpy)."""
    H1, Ws, Wb, Wa, WL = srg_base(r, L, widths, n, variant)
    W = [x[l + 1] * xp.asarray(Wl) for l, Wl in enumerate(Ws)]
    W.append(x[L - 1] * (xp.asarray(Wb) + a * xp.asarray(Wa)))
    W.append(x[L] * xp.asarray(WL))
    return {"H1": x[0] * xp.asarray(H1), "W": tuple(W)}


def srg_solution(r: int, L: int, widths: Sequence[int], sizes_or_n, lam_H, lam_W,
                 variant: str = "spec", a: float | None = None) -> Construction:
    """Explicit SRG parameters (Súkeník et al., Fig. 1) at the optimal gains; loss = `srg_loss`.

    widths d_1..d_L: d_l >= r for l < L, d_L >= K = C(r,2). scales: {"c", "a", "x"}.
    """
    loss, info = srg_loss(r, L, sizes_or_n, lam_H, lam_W, variant, a)
    K = info["K"]
    n = _balanced_n(K, sizes_or_n)
    params = srg_params(r, L, widths, n, info["x"], info["a"], variant)
    return Construction(
        params=params, loss=loss, fit=info["fit"], reg=info["reg"],
        scales={"c": info["c"], "a": info["a"], "x": info["x"]},
        meta={"solution": f"srg-{variant}", "r": r, "K": K, "L": L, "sizes": [n] * K,
              "widths": [int(d) for d in widths], "lam_H": float(lam_H),
              "lam_W": lam_layers(lam_W, L).tolist(), "activation": "relu", "fit": "mse",
              "rank_before_last_relu": r, "rank_after_last_relu": K},
    )


def srg_loss_numerical(r: int, L: int, n: int, lam_H, lam_W, variant: str = "spec",
                       starts: int = 4, seed: int = 0) -> tuple[float, dict]:
    """Check of `srg_loss`: minimise the L-DUFM loss (`deepcollapse.dufm.loss_terms`) of the SRG
    parameters over log-gains log x_0..log x_L and a in [1, 2) with L-BFGS-B from `starts` random
    starts (tight tolerances); no AM-GM reduction is used. Returns (best loss, {"x", "a"})."""
    import jax
    import jax.numpy as jnp
    from scipy.optimize import minimize

    from deepcollapse import dufm

    r = _check_r(r)
    variant = _check_variant(variant, L)
    K = r * (r - 1) // 2
    widths = [r] * (L - 1) + [K]
    Y = jnp.asarray(dufm.one_hot([n] * K))
    hyp = dufm.hyper(lam_H, lam_layers(lam_W, L), L)

    def f(theta):
        params = srg_params(r, L, widths, n, jnp.exp(theta[:-1]), theta[-1], variant, xp=jnp)
        return dufm.loss_terms(params, Y, hyp)[0]

    fg = jax.jit(jax.value_and_grad(f))

    def fun(theta):
        v, g = fg(jnp.asarray(theta))
        return float(v), np.asarray(g, np.float64)

    rng = np.random.default_rng(seed)
    bounds = [(None, None)] * (L + 1) + [(1.0, 2.0 - 1e-9)]
    best = None
    for _ in range(starts):
        theta0 = np.concatenate([rng.normal(0.0, 0.5, L + 1), [rng.uniform(1.0, 1.9)]])
        res = minimize(fun, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 5000})
        if best is None or res.fun < best.fun:
            best = res
    return float(best.fun), {"x": np.exp(best.x[:-1]), "a": float(best.x[-1])}


def _relaxed_pieces(r: int, L: int, n: int, lam_H: float, lam: np.ndarray, t: float, a: float):
    """Per-eigenspace quantities of the relaxed SRG family (see `srg_relaxed_loss`)."""
    K = r * (r - 1) // 2
    theta = np.array([2.0 * (r - 2), r - 4.0, -2.0])  # eigenvalues of A(T(r))
    mult = np.array([1, r - 1, K - r])
    alpha = np.concatenate([[lam_H], lam[:L - 1]]) * base_norms_sq(r, L, n, a, "balanced")[:L]
    chain = 0.5 * L * np.exp(np.mean(np.log(alpha))) * t ** (2.0 / L)
    q = t * ((2 - a) + max(1 - a, 0.0) * theta)
    w = q / (q**2 + lam[L - 1] * K)
    fit = float(np.sum(mult * (w * q - 1) ** 2) / (2 * K))
    head = float(np.sum(mult * lam[L - 1] / (2 * (q**2 + lam[L - 1] * K))))
    return {"loss": head + chain, "fit": fit, "alpha": alpha, "w": w, "q": q, "K": K}


def srg_relaxed_loss(r: int, L: int, sizes_or_n, lam_H, lam_W) -> tuple[float, dict]:
    """A better rank-r construction than SPEC.md's SRG solution (ours; found by running L-BFGS on the
    full L-DUFM loss from the SRG solution, whose limit it reproduces). Needs L >= 3.

    Same layers 1..L-1 as variant "balanced" (class means x B, balanced (H_1, W_1)), pre-activation
    t (B^T B - a 11^T) but now a in [0, 2): for a < 1 the adjacent-edge entries 1 - a survive the
    ReLU, R = ReLU(.) = t((2-a) I + (1-a)_+ A(T(r))), still rank K, and the output W_L R need not be
    c I_K. Everything lies in the Bose-Mesner algebra of T(r) (eigenvalues theta = 2(r-2), r-4, -2
    with multiplicities 1, r-1, K-r), so the ridge-optimal W_L = sum_i w_i P_i acts per eigenspace:
    with q_i = t rho_i, rho_i = (2-a) + (1-a)_+ theta_i, w_i = q_i / (q_i^2 + lam_L K) and
        loss(t, a) = sum_i m_i lam_L / (2 (q_i^2 + lam_L K)) + L/2 (prod_{j<L} alpha_j(a))^(1/L) t^(2/L)
    (AM-GM over the L factors H_1, W_1..W_{L-1}). Minimised over (log t, a) by L-BFGS-B from a grid
    of starts. Returns (loss, info) with info = {"t", "a", "w", "fit", "reg", "K"}.
    """
    from scipy.optimize import minimize

    r = _check_r(r)
    _check_variant("balanced", L)
    K = r * (r - 1) // 2
    n = _balanced_n(K, sizes_or_n)
    lam_H = check_lam_H(lam_H)
    lam = lam_layers(lam_W, L)

    def f(v):
        return _relaxed_pieces(r, L, n, lam_H, lam, float(np.exp(v[0])), float(v[1]))["loss"]

    best = None
    for a0 in (0.3, 0.7, 0.9, 1.2, 1.6):
        for lt in (-1.0, 1.0):
            res = minimize(f, [lt, a0], method="L-BFGS-B", bounds=[(-30, 30), (0.0, 2.0 - 1e-9)],
                           options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 2000})
            if best is None or res.fun < best.fun:
                best = res
    t, a = float(np.exp(best.x[0])), float(best.x[1])
    pc = _relaxed_pieces(r, L, n, lam_H, lam, t, a)
    return pc["loss"], {"t": t, "a": a, "w": pc["w"], "fit": pc["fit"], "reg": pc["loss"] - pc["fit"],
                        "K": K, "alpha": pc["alpha"]}


def srg_relaxed_solution(r: int, L: int, widths: Sequence[int], sizes_or_n, lam_H, lam_W) -> Construction:
    """Explicit parameters of `srg_relaxed_loss` (widths as `srg_solution`: d_l >= r, d_L >= K)."""
    loss, info = srg_relaxed_loss(r, L, sizes_or_n, lam_H, lam_W)
    K, n = info["K"], _balanced_n(info["K"], sizes_or_n)
    alpha = info["alpha"]
    x = info["t"] ** (1.0 / L) * np.sqrt(np.exp(np.mean(np.log(alpha))) / alpha)
    params = srg_params(r, L, widths, n, np.concatenate([x, [1.0]]), info["a"], "balanced")
    B = incidence_matrix(r)
    P_range = B.T @ np.linalg.solve(B @ B.T, B)
    J = np.full((K, K), 1.0 / K)
    head = info["w"][0] * J + info["w"][1] * (P_range - J) + info["w"][2] * (np.eye(K) - P_range)
    W = list(params["W"])
    W[-1] = W[-1].copy()
    W[-1][:, :K] = head
    params["W"] = tuple(W)
    return Construction(
        params=params, loss=loss, fit=info["fit"], reg=info["reg"],
        scales={"t": info["t"], "a": info["a"], "x": x, "w": info["w"]},
        meta={"solution": "srg-relaxed", "r": r, "K": K, "L": L, "sizes": [n] * K,
              "widths": [int(d) for d in widths], "lam_H": float(lam_H),
              "lam_W": lam_layers(lam_W, L).tolist(), "activation": "relu", "fit": "mse",
              "rank_before_last_relu": r, "rank_after_last_relu": K},
    )


def class_mean_matrices(construction: Construction) -> dict:
    """Class-mean matrices of every layer of a construction (Súkeník et al., Fig. 1).

    Returns {"H": [M_1, ..., M_L], "Z": [Zbar_1, ..., Zbar_L]}: M_l = class means of H_l (the input
    of W_l; M_l = ReLU(Zbar_(l-1)) for l >= 2), Zbar_l = class means of the pre-activation Z_l =
    W_l H_l (Zbar_L = output). Fig. 1 (L = 4, K = 10, r = 5): M3 = H[2], M4 before ReLU = Z[2],
    its Gram matrix Z[2].T @ Z[2].
    """
    from deepcollapse import dufm

    sizes = np.asarray(construction.meta["sizes"])
    Y = dufm.one_hot(sizes)
    avg = Y.T / sizes[None, :]  # (N x K): column k averages class k
    params = {"H1": construction.params["H1"], "W": tuple(construction.params["W"])}
    Hs, Zs = dufm.forward(params, "relu")
    return {"H": [np.asarray(H) @ avg for H in Hs], "Z": [np.asarray(Z) @ avg for Z in Zs]}


def srg_ratio_table(rs: Sequence[int], Ls: Sequence[int], lam: float, n: int,
                    variant: str = "spec") -> list[dict]:
    """Rows {r, K, L, loss_dnc, loss_srg, ratio} of L_SRG / L_DNC (Súkeník et al., Fig. 3 left),
    equal weight decay lam everywhere (lam_H = lam_l = lam), n samples per class; closed forms.
    variant: one of TABLE_VARIANTS ("relaxed" = `srg_relaxed_loss`, a 2-D minimisation, slower)."""
    if variant not in TABLE_VARIANTS:
        raise ValueError(f"variant must be one of {TABLE_VARIANTS}, got {variant!r}")
    rows = []
    for L in Ls:
        for r in rs:
            K = int(r) * (int(r) - 1) // 2
            if variant == "relaxed":
                l_srg, _ = srg_relaxed_loss(int(r), int(L), n, lam, lam)
            else:
                l_srg, _ = srg_loss(int(r), int(L), n, lam, lam, variant)
            l_dnc, _ = dnc_loss(K, int(L), n, lam, lam)
            rows.append({"r": int(r), "K": K, "L": int(L), "loss_dnc": l_dnc, "loss_srg": l_srg,
                         "ratio": l_srg / l_dnc})
    return rows
