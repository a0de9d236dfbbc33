"""Cross-entropy deep UFM of Garrod & Keating: DNC vs low-rank class-mean logit structures.

A structure is a K x K class-mean logit matrix S (column k: the logits of class k); the output is
Z = s * S with column k repeated n_k times (class by class). At balanced factors (Lemma 1,
`deepcollapse.theory.factors`) the loss is a function of the scale s alone,

    f(s) = fit(s S; sizes) + (L+1)/2 * lam * s^(2/(L+1)) * sum_i sigma_i^(2/(L+1)),

sigma_i the singular values of S with columns repeated (balanced: sqrt(n) * sigma_i(S)).

Structures (SPEC.md, "Structures to compare"):
  - DNC: I - 11^T/K (simplex ETF, rank K-1), Definition 2.
  - Pairs (Eq. 5): classes paired, each pair [[1,-1],[-1,1]]; odd K: the last class alone with 1 on
    the diagonal. Rank ceil(K/2). Theorem 1.
  - Rank-2 diagonally superior matrix (Sec. 3.2): cos(t_j - t_k), columns unit vectors at distinct
    angles.

Theorem 7 (deep ReLU UFM): `relu_pair_solution` builds the low-rank solution of App. B.9 (pairs plus a
rank-1 non-negative offset so that ReLU acts as the identity), compared against the deep linear DNC
optimum, which lower-bounds every ReLU DNC solution under Assumption 1.

The weight decay is one lam for every factor, as in the paper.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from deepcollapse.theory.constructions import Construction
from deepcollapse.theory.factors import (
    balanced_factors,
    ce_per_column,
    nonzero_singular_values,
    reduced_loss,
)

from .roots import brentq

# ---------------------------------------------------------------------------------------------------
# Structures
# ---------------------------------------------------------------------------------------------------


def _check_K(K, minimum: int = 2) -> int:
    if not isinstance(K, (int, np.integer)) or K < minimum:
        raise ValueError(f"K must be an int >= {minimum}, got {K!r}")
    return int(K)


def dnc_structure(K: int) -> np.ndarray:
    """DNC class-mean logits I_K - 11^T/K (simplex ETF, rank K-1) (Garrod & Keating, Definition 2)."""
    K = _check_K(K)
    return np.eye(K) - np.ones((K, K)) / K


def pair_structure(K: int) -> np.ndarray:
    """Low-rank structure of Garrod & Keating, Eq. (5) / App. B.3.

    Classes (2j, 2j+1) are paired, each pair the block [[1,-1],[-1,1]]; for odd K the last class is
    alone with 1 on the diagonal. Rank ceil(K/2); singular values 2 (floor(K/2) times) and, odd K, 1.
    """
    K = _check_K(K)
    S = np.zeros((K, K))
    for j in range(K // 2):
        S[2 * j : 2 * j + 2, 2 * j : 2 * j + 2] = [[1.0, -1.0], [-1.0, 1.0]]
    if K % 2:
        S[K - 1, K - 1] = 1.0
    return S


def rank2_diag_superior(K: int, angles: Sequence[float] | None = None) -> np.ndarray:
    """Rank-2 diagonally superior matrix of Garrod & Keating, Sec. 3.2.

    Columns z_k = (cos t_k, sin t_k) (unit vectors at distinct angles, default t_k = 2 pi k / K) are
    embedded through the same vectors as rows: S_jk = <z_j, z_k> = cos(t_j - t_k). Column k has its
    strict maximum 1 in entry k (cos(t_j - t_k) < 1 for distinct angles mod 2 pi), and S = Z^T Z with
    Z 2 x K has rank <= 2 (= 2 for K >= 3 at the default angles, 1 for K = 2).
    """
    K = _check_K(K)
    t = 2 * np.pi * np.arange(K) / K if angles is None else np.asarray(angles, np.float64)
    if t.shape != (K,):
        raise ValueError(f"angles must be K={K} values, got shape {t.shape}")
    wrapped = np.mod(t, 2 * np.pi)
    if len(np.unique(np.round(wrapped, 12))) != K:
        raise ValueError("angles must be distinct modulo 2 pi")
    return np.cos(t[:, None] - t[None, :])


def is_diagonally_superior(S: np.ndarray) -> bool:
    """Garrod & Keating, Definition 3: column k has its strict maximum in entry k (K x K, class order)."""
    S = np.asarray(S, np.float64)
    K = S.shape[0]
    if S.shape != (K, K):
        raise ValueError(f"S must be square K x K, got shape {S.shape}")
    off = S - np.diag(np.full(K, np.inf))
    return bool(np.all(np.diag(S) > off.max(axis=0)))


def numerical_rank(S: np.ndarray, rtol: float = 1e-10) -> int:
    """`metrics.numerical_rank` in float64 with the tight tolerance exact constructions allow."""
    from deepcollapse.metrics import numerical_rank as rank

    return int(rank(np.asarray(S, np.float64), rtol))


def min_diag_superior_rank(K: int) -> int:
    """Minimal rank of a K x K diagonally superior matrix (Garrod & Keating, Sec. 3.2): 1 for K = 2, 2 for K >= 3.

    Upper bound: `pair_structure(2)` (rank 1) and `rank2_diag_superior(K)` (rank 2). Lower bound for
    K >= 3: a rank-1 matrix a b^T has column k = b_k a, whose strict maximum is at argmax(a) (b_k > 0)
    or argmin(a) (b_k < 0) and does not exist for b_k = 0, so at most two entries can be column maxima.
    """
    K = _check_K(K)
    return 1 if K == 2 else 2


def theorem1_predicts(K: int, L: int) -> bool:
    """Garrod & Keating, Theorem 1 (App. B.3): the Eq. (5) pairs beat every DNC solution when their
    regularisation at equal scale is lower,

        even K: K/2 * 2^(2/(L+1)) < K-1,    odd K: (K-1)/2 * 2^(2/(L+1)) + 1 < K-1

    (the fit term is always lower for the pairs at equal scale), so no DNC solution is a global
    minimum. A sufficient condition, independent of lam.
    """
    K = _check_K(K)
    if not isinstance(L, (int, np.integer)) or L < 1:
        raise ValueError(f"L must be an int >= 1, got {L!r}")
    q = 2.0 ** (2.0 / (L + 1))
    lhs = K / 2 * q if K % 2 == 0 else (K - 1) / 2 * q + 1
    return bool(lhs < K - 1)


# ---------------------------------------------------------------------------------------------------
# Loss as a function of the scale
# ---------------------------------------------------------------------------------------------------

S_MAX = 1e6


def _sizes(K: int, n, sizes) -> np.ndarray:
    if sizes is None:
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be an int >= 1, got {n!r}")
        return np.full(K, int(n))
    sizes = np.asarray(sizes)
    if sizes.shape != (K,) or np.any(sizes < 1) or not np.all(sizes == np.round(sizes)):
        raise ValueError(f"sizes must be K={K} positive ints, got {list(np.ravel(sizes))}")
    return sizes.astype(int)


def repeat_columns(S: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """Z: column k of S repeated sizes[k] times, class by class (K x N)."""
    return np.repeat(np.asarray(S, np.float64), np.asarray(sizes, int), axis=1)


def structure_sigma_sum(S: np.ndarray, L: int, sizes: Sequence[int]) -> float:
    """sum_i sigma_i^(2/(L+1)) of S with columns repeated: sigma_i = singular values of S diag(sqrt(n_k))."""
    sig = nonzero_singular_values(np.asarray(S, np.float64) * np.sqrt(np.asarray(sizes, np.float64))[None, :])
    return float(np.sum(sig ** (2.0 / (L + 1))))


class ScaleProfile:
    """f(s) = fit(s S; sizes) + c * s^p with p = 2/(L+1), c = (L+1)/2 * lam * sigma_sum, and f'(s).

    Garrod & Keating, App. B.3: the loss of a fixed structure at balanced factors as a function of its
    scale. The CE fit is computed per class (identical columns) with relative accuracy at large s.
    """

    def __init__(self, S: np.ndarray, L: int, lam: float, sizes: Sequence[int], sigma_sum: float | None = None):
        S = np.asarray(S, np.float64)
        K = S.shape[0]
        if S.shape != (K, K):
            raise ValueError(f"structure must be K x K, got shape {S.shape}")
        if not (isinstance(L, (int, np.integer)) and L >= 1):
            raise ValueError(f"L must be an int >= 1, got {L!r}")
        if not lam > 0:
            raise ValueError(f"lam must be > 0 (at lam = 0 the loss has no minimiser), got {lam}")
        self.S, self.L, self.lam = S, int(L), float(lam)
        self.sizes = np.asarray(sizes, np.float64)
        self.w = self.sizes / self.sizes.sum()
        self.p = 2.0 / (L + 1)
        self.sigma_sum = structure_sigma_sum(S, L, sizes) if sigma_sum is None else float(sigma_sum)
        self.c = 0.5 * (L + 1) * lam * self.sigma_sum
        self.D = S - np.diag(S)[None, :]  # D[j, k] = S_jk - S_kk (logit gaps of class k)

    def fit(self, s: float) -> float:
        return float(self.w @ ce_per_column(s * self.S, np.eye(len(self.w))))

    def reg(self, s: float) -> float:
        return self.c * s**self.p

    def __call__(self, s: float) -> float:
        return self.fit(s) + self.reg(s)

    def grad(self, s: float) -> float:
        ce = ce_per_column(s * self.S, np.eye(len(self.w)))
        P = np.exp(s * self.D - ce[None, :])  # softmax probabilities; P[k, k] multiplies D[k, k] = 0
        dfit = float(self.w @ np.sum(P * self.D, axis=0))
        return dfit + (self.c * self.p * s ** (self.p - 1) if s > 0 else math.inf)


def minimise_scale(profile: ScaleProfile, grid: int = 600) -> tuple[float, float]:
    """Global minimiser of f over s >= 0 (Garrod & Keating, App. B.3 "optimal scale").

    f(0) = fit(0) = log K, and f(s) >= c s^p, so minimisers lie in (0, (log K / c)^(1/p)] (capped at
    S_MAX: beyond it the CE fit of any structure with unit-order margins underflows). A log grid
    locates the best interior local minimum; f'(s) = 0 is then solved by bracketing (brentq) to
    machine precision. Returns (0, log K) when no s > 0 beats the zero output.
    """
    f0 = profile.fit(0.0)
    log_hi = np.log(2.0) + (np.log(f0) - np.log(profile.c)) / profile.p
    s_hi = float(np.exp(min(log_hi, np.log(S_MAX))))
    s_lo = min(1e-8, s_hi * 1e-12)
    grid_s = np.geomspace(s_lo, s_hi, grid)
    vals = np.array([profile(s) for s in grid_s])
    i = int(np.argmin(vals))
    if i == 0:
        return 0.0, f0
    a, b = grid_s[max(i - 1, 0)], grid_s[min(i + 1, grid - 1)]
    ga, gb = profile.grad(a), profile.grad(b)
    if ga < 0 < gb:
        s_star = brentq(profile.grad, a, b, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
    else:  # flat to round-off: keep the grid point
        s_star = grid_s[i]
    f_star = profile(s_star)
    if f_star >= f0:
        return 0.0, f0
    return float(s_star), float(f_star)


def optimal_scale(structure: np.ndarray, L: int, lam: float, n: int = 1, sizes: Sequence[int] | None = None,
                  loss: str = "ce") -> tuple[float, float]:
    """(s*, loss): the scale minimising the reduced CE loss of s * structure (Garrod & Keating, App. B.3).

    structure: K x K class-mean logits; n samples per class, or per-class `sizes`; equal lam on every
    factor. s* = 0 (and loss log K) when the zero output is optimal.
    """
    if loss != "ce":
        raise ValueError(f"loss must be 'ce' (the MSE structures live in the MSE module), got {loss!r}")
    S = np.asarray(structure, np.float64)
    return minimise_scale(ScaleProfile(S, L, lam, _sizes(S.shape[0], n, sizes)))


# ---------------------------------------------------------------------------------------------------
# Explicit solutions
# ---------------------------------------------------------------------------------------------------


def structure_solution(structure: np.ndarray, L: int, width: int | Sequence[int], lam: float, n: int = 1,
                       sizes: Sequence[int] | None = None, name: str = "structure") -> Construction:
    """Explicit deep linear UFM parameters for s* * structure at its optimal scale (balanced factors,
    Lemma 1), with loss/fit/reg recomputed from the output Z by `reduced_loss`."""
    S = np.asarray(structure, np.float64)
    K = S.shape[0]
    sz = _sizes(K, n, sizes)
    s_star, loss = optimal_scale(S, L, lam, sizes=sz)
    Z = repeat_columns(s_star * S, sz)
    Y = repeat_columns(np.eye(K), sz)
    params = balanced_factors(Z, L, width, lam, lam)
    total = reduced_loss(Z, Y, L, lam, lam, loss="ce")
    fit = ScaleProfile(S, L, lam, sz).fit(s_star)
    meta = {"K": K, "L": L, "lam": lam, "sizes": sz.tolist(), "structure": name,
            "rank": numerical_rank(S), "activation": "linear", "loss_fn": "ce", "loss_1d": loss}
    return Construction(params=params, loss=total, fit=fit, reg=total - fit, scales={"s": s_star}, meta=meta)


def dnc_solution(K: int, L: int, width: int | Sequence[int], lam: float, n: int = 1) -> Construction:
    """DNC solution of the deep linear CE UFM at its optimal scale (Garrod & Keating, Definition 2, Thm 1)."""
    return structure_solution(dnc_structure(K), L, width, lam, n, name="dnc")


def pair_solution(K: int, L: int, width: int | Sequence[int], lam: float, n: int = 1) -> Construction:
    """Eq. (5) low-rank solution at its optimal scale (Garrod & Keating, Theorem 1)."""
    return structure_solution(pair_structure(K), L, width, lam, n, name="pairs")


def rank2_solution(K: int, L: int, width: int | Sequence[int], lam: float, n: int = 1) -> Construction:
    """Rank-2 diagonally superior solution (Sec. 3.2) at its optimal scale."""
    return structure_solution(rank2_diag_superior(K), L, width, lam, n, name="rank2")


def ce_compare(K: int, L: int, lam: float, n: int = 1) -> dict:
    """DNC vs Eq. (5) pairs, each at its own optimal scale (Garrod & Keating, Theorem 1).

    Returns {K, L, lam, n, loss_dnc, loss_lowrank, s_dnc, s_lowrank, lowrank_wins, theorem1_predicts}.
    Theorem 1 is sufficient: theorem1_predicts implies lowrank_wins (whenever DNC has s* > 0); the
    converse holds only asymptotically as lam -> 0 (the fit advantage of the pairs can win on its own).
    """
    s_d, l_d = optimal_scale(dnc_structure(K), L, lam, n)
    s_p, l_p = optimal_scale(pair_structure(K), L, lam, n)
    return {"K": K, "L": L, "lam": lam, "n": n, "loss_dnc": l_d, "loss_lowrank": l_p, "s_dnc": s_d,
            "s_lowrank": s_p, "lowrank_wins": bool(l_p < l_d * (1 - 1e-12)),
            "theorem1_predicts": theorem1_predicts(K, L)}


# ---------------------------------------------------------------------------------------------------
# Theorem 7: deep ReLU UFM
# ---------------------------------------------------------------------------------------------------


def relu_pair_blocks(K: int) -> dict:
    """The building blocks of the Theorem 7 construction (Garrod & Keating, App. B.9, reconstructed).

    {"D", "Uf", "Uw", "Wout", "kappa"}, K x K each but kappa: D the pair part with D^2 = 2D (even K:
    D = pair_structure(K); odd K: pairs on the first K-1 classes (+) [2]); Uf the feature offset and Uw
    the weight offset (even: 11^T, 11^T; odd: u 1^T, u u^T with u = (1_{K-1}, 0)), with D Uf = 0,
    Uf^T D = 0, Uw Uf = kappa Uf (kappa = K, odd K - 1); Wout the output map (pair_structure(K)),
    Wout D = 2 pair_structure(K), Wout Uf = 0. D + q Uf >= 0 entrywise iff q >= 1.
    """
    K = _check_K(K)
    ones = np.ones(K)
    if K % 2 == 0:
        return {"D": pair_structure(K), "Uf": np.outer(ones, ones), "Uw": np.outer(ones, ones),
                "Wout": pair_structure(K), "kappa": float(K)}
    D = pair_structure(K)
    D[K - 1, K - 1] = 2.0
    u = np.r_[np.ones(K - 1), 0.0]
    return {"D": D, "Uf": np.outer(u, ones), "Uw": np.outer(u, u), "Wout": pair_structure(K), "kappa": float(K - 1)}


def relu_pair_optimal_shift(K: int, L: int) -> float:
    """The offset rho of H_1 = D + rho Uf that minimises the Theorem 7 construction's loss (ours).

    Only the pre-activations Z_1..Z_(L-1) must be >= 0; H_1 (free features) need not be. With
    H_1 = p (D + rho Uf) and W_1 = a (D + 2/(kappa rho) Uw), Z_1 = 2 a p (D + Uf): offset 1, the least
    that keeps Z_1 >= 0, and W_l = D + (2/kappa) Uw keeps it (l = 2..L-1). At equal factor norms the loss
    depends on rho only through the product ||D + rho Uf||^2 ||D + 2/(kappa rho) Uw||^2
    = (m + rho^2 A)(m + B / rho^2), m = ||D||^2, A = ||Uf||^2, B = 4 ||Uw||^2 / kappa^2, minimal at
    rho^2 = sqrt(B / A) with value (m + sqrt(A B))^2 (even K: rho^2 = 2/K, 16 K^2 against 2K (K+2)^2
    at App. B.9's rho = 1). L = 1 has no ReLU: rho = 0.
    """
    if L < 2:
        return 0.0
    b = relu_pair_blocks(K)
    A = float(np.sum(b["Uf"] ** 2))
    B = 4.0 * float(np.sum(b["Uw"] ** 2)) / b["kappa"] ** 2
    return float((B / A) ** 0.25)


def _shift(K: int, L: int, shift) -> float:
    if isinstance(shift, str):
        if shift != "optimal":
            raise ValueError(f"shift must be a number > 0 or 'optimal', got {shift!r}")
        return relu_pair_optimal_shift(K, L)
    if not (shift > 0 or (L < 2 and shift >= 0)):
        raise ValueError(f"shift must be > 0 (the first pre-activation needs an offset), got {shift}")
    return float(shift)


def relu_pair_unit(K: int, L: int = 2, shift=1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unit-scale factors (F, W_1, W_mid, W_out) of the Theorem 7 construction (`relu_pair_blocks`).

    F = D + rho Uf (H_1), W_1 = D + 2/(kappa rho) Uw, W_mid = D + (2/kappa) Uw (W_2..W_(L-1)), W_out:
    every pre-activation Z_l = 2^l (D + Uf) >= 0 (l < L), so ReLU is the identity on them, and
    Z_L = 2^L pair_structure(K). shift: rho; 1 is App. B.9's construction as reconstructed
    (F = M + 11^T, W = M + (2/K) 11^T for even K), "optimal" is `relu_pair_optimal_shift`.
    """
    b = relu_pair_blocks(K)
    rho = _shift(K, L, shift)
    W1 = b["D"] + (2.0 / (b["kappa"] * rho)) * b["Uw"] if rho > 0 else b["D"]
    return b["D"] + rho * b["Uf"], W1, b["D"] + (2.0 / b["kappa"]) * b["Uw"], b["Wout"]


def _relu_pair_norms(K: int, L: int, n: int, shift) -> np.ndarray:
    """Frobenius norms of the unit factors H_1 (n copies of each column), W_1, .., W_L."""
    F, W1, Wm, Wout = relu_pair_unit(K, L, shift)
    if L == 1:
        return np.array([np.sqrt(n) * np.linalg.norm(F), np.linalg.norm(Wout)])
    return np.array([np.sqrt(n) * np.linalg.norm(F), np.linalg.norm(W1)] + [np.linalg.norm(Wm)] * (L - 2)
                    + [np.linalg.norm(Wout)])


def _embed(A: np.ndarray, rows: int, cols: int) -> np.ndarray:
    out = np.zeros((rows, cols))
    out[: A.shape[0], : A.shape[1]] = A
    return out


def relu_pair_solution(K: int, L: int, width: int | Sequence[int], lam: float, n: int = 1,
                       shift=1.0) -> Construction:
    """Theorem 7 low-rank solution of the deep ReLU CE UFM at its optimal scale (App. B.9, reconstructed).

    With (F, W_1, W_mid, W_out) from `relu_pair_unit(K, L, shift)`: H_1 = t_0 F kron 1_n^T,
    W_1 = t_1 W_1, W_l = t_l W_mid (1 < l < L), W_L = t_L W_out, zero-padded to the widths (each >= K).
    Pre-activations are positive multiples of D + Uf >= 0, so the ReLU network computes the linear
    product and Z = 2^L prod(t) pair_structure(K). Equal factor norms nu (optimal for a fixed product,
    AM-GM): t_f = nu / ||unit factor f||, so s = C nu^(L+1) and reg = (L+1)/2 lam nu^2
    = (L+1)/2 lam (s/C)^(2/(L+1)); s is optimised as in `optimal_scale`. shift: the offset rho of H_1
    (1: App. B.9; "optimal": `relu_pair_optimal_shift`). scales: {"s", "nu", "shift"}.
    """
    K = _check_K(K)
    widths = (int(width),) * L if np.isscalar(width) else tuple(int(w) for w in width)
    if len(widths) != L or min(widths) < K:
        raise ValueError(f"width must be one int or L={L} ints, each >= K={K}, got {list(widths)}")
    rho = _shift(K, L, shift)
    F, W1, Wm, Wout = relu_pair_unit(K, L, rho)
    sz = _sizes(K, n, None)
    norms = _relu_pair_norms(K, L, n, rho)
    C = 2.0**L / np.prod(norms)
    S = pair_structure(K)
    profile = ScaleProfile(S, L, lam, sz, sigma_sum=C ** (-2.0 / (L + 1)))
    s_star, loss = minimise_scale(profile)
    nu = (s_star / C) ** (1.0 / (L + 1))
    t = nu / norms
    dims = list(widths) + [K]
    H1 = _embed(t[0] * np.repeat(F, n, axis=1), widths[0], K * n)
    units = [W1] + [Wm] * (L - 2)
    W = [_embed(t[l + 1] * units[l], dims[l + 1], dims[l]) for l in range(L - 1)]
    W.append(_embed(t[L] * Wout, K, dims[L - 1]))
    fit = profile.fit(s_star)
    meta = {"K": K, "L": L, "lam": lam, "sizes": sz.tolist(), "structure": "relu_pairs",
            "activation": "relu", "loss_fn": "ce", "C": float(C)}
    return Construction(params={"H1": H1, "W": tuple(W)}, loss=loss, fit=fit, reg=loss - fit,
                        scales={"s": s_star, "nu": float(nu), "shift": rho}, meta=meta)


def relu_reg_condition(K: int, L: int, shift=1.0) -> bool:
    """Whether the Theorem 7 construction has lower regularisation than DNC at equal output scale.

    From `relu_pair_solution`: reg = (L+1)/2 lam (s/C)^(2/(L+1)) vs DNC (L+1)/2 lam (K-1) s^(2/(L+1))
    (n = 1; n cancels), i.e. C^(-2/(L+1)) < K-1; even K, shift 1: K^2 (K+2)^L / 2^L < (K-1)^(L+1);
    even K, optimal shift: 8 K^3 (K+2)^(L-2) / 2^L < (K-1)^(L+1) (L >= 2).
    Sufficient (with the fit advantage of the pairs) for Theorem 7's conclusion under Assumption 1.
    """
    K = _check_K(K)
    log_C = L * np.log(2.0) - float(np.sum(np.log(_relu_pair_norms(K, L, 1, shift))))
    return bool(-2.0 / (L + 1) * log_C < np.log(K - 1))


def relu_compare(K: int, L: int, lam: float, n: int = 1) -> dict:
    """Theorem 7 check: the ReLU pair construction (App. B.9's shift 1, and the optimal shift) vs the deep
    linear DNC optimum, which lower-bounds the loss of every DNC solution of the deep ReLU UFM under
    Assumption 1 (App. B.9)."""
    s_d, l_d = optimal_scale(dnc_structure(K), L, lam, n)
    sol = relu_pair_solution(K, L, K, lam, n)
    opt = relu_pair_solution(K, L, K, lam, n, shift="optimal")
    return {"K": K, "L": L, "lam": lam, "n": n, "loss_dnc_bound": l_d, "loss_relu_lowrank": sol.loss,
            "s_dnc": s_d, "s_relu_lowrank": sol.scales["s"], "lowrank_wins": bool(sol.loss < l_d * (1 - 1e-12)),
            "reg_condition": relu_reg_condition(K, L),
            "loss_relu_lowrank_opt": opt.loss, "shift_opt": opt.scales["shift"],
            "lowrank_opt_wins": bool(opt.loss < l_d * (1 - 1e-12)),
            "reg_condition_opt": relu_reg_condition(K, L, "optimal")}


def relu_win_table(Ks: Sequence[int], Ls: Sequence[int], lam: float, n: int = 1) -> list[dict]:
    """`relu_compare` for every (K, L): at which K and L the construction beats the linear DNC bound."""
    return [relu_compare(int(K), int(L), lam, n) for K in Ks for L in Ls]
