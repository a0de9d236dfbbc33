"""Critical points of the cross-entropy deep linear UFM and their Hessians (Garrod & Keating, Sec. 3.3).

Model (SPEC.md): loss = fit_CE(Z, Y) + lam/2 (||H_1||^2 + sum_l ||W_l||^2), Z = W_L ... W_1 H_1,
equal weight decay lam on all L+1 factors, balanced classes (n per class, N = nK).

Two structures with one free scale s > 0 (SPEC.md, "Structures to compare"):
  - DNC:   Z = s (I_K - 11^T/K) kron 1_n^T  (simplex ETF, rank K-1, singular values s sqrt(n));
  - pairs: Z = s blockdiag([[1,-1],[-1,1]], ...) kron 1_n^T  (Garrod & Keating Eq. 5, even K;
           rank K/2, singular values 2 s sqrt(n)).
Realised with balanced factors (Lemma 1, `factors.balanced_factors`), the full loss equals the reduced
loss (SPEC.md)
    R(s) = fit(s) + (L+1) lam / 2 * m * (c s sqrt(n))^(2/(L+1)),
with fit_DNC(s) = log(1 + (K-1) e^{-s}), m = K-1, c = 1 (a column s(e_k - 1/K) has true-class
probability e^s/(e^s + K-1)), and fit_pair(s) = log(1 + e^{-2s} + (K-2) e^{-s}), m = K/2, c = 2
(a column has logits s, -s and K-2 zeros).

Why a critical point of R is a critical point of the full loss (all parameters). dLoss/dZ = E/N with
E = softmax(Z) - Y. For DNC, E = -K/(e^s+K-1) (I - 11^T/K) kron 1_n^T is proportional to Z (the
paper's Eq. 14). For the pairs, E = u B_- kron 1_n^T + (terms whose rows are orthogonal to the row
space of Z), B_- the pair blocks. With balanced aligned factors, the gradient of the fit with respect
to W_l is A^T (E/N) B^T (A, B the products after/before W_l), which then equals -c(s) sigma^{2L} W_l
(sigma = the common singular value of the factors); the condition -c sigma^{2L} + lam = 0 is one scalar
equation for all l (Appendix B.6, Eq. 18), and it must coincide with R'(s) = 0 because R is the loss
along the curve s -> balanced factors. Solving R'(s) = 0 for lam gives the paper's Eq. 19 (DNC) and
Eq. 27 (pairs), in this project's normalisation:

    DNC  (Eq. 19): lam = g(s) = s^{(L-1)/(L+1)} / ( n^{1/(L+1)} (e^s + K - 1) )
    pairs(Eq. 27): lam = g(s) = (2 e^{-s} + K - 2) s^{(L-1)/(L+1)}
                                / ( (K/2) (4n)^{1/(L+1)} (e^s + e^{-s} + K - 2) )

For L >= 2, g(0) = 0, g(inf) = 0, g > 0 with a unique maximum at s*: for DNC, d log g / ds = 0 gives
(L-1)/(L+1) (e^s + K - 1) = s e^s, whose left side minus right side is decreasing (the paper's
argument). For the pairs the paper reads unimodality off plots; here it is assumed, and was checked on a
log grid s in [1e-6, 1e3] for even K <= 10, L <= 5 (not proven).
So there are two critical scales for lam < lam_max = g(s*), one
(lam = lam_max) at the threshold, none above: the threshold of Theorem 4's "lam suitably small".
As lam -> 0 the small scale -> 0 like (lam K n^{1/(L+1)})^{(L+1)/(L-1)} and the large one diverges
like log(1/lam). For L = 1 (a = 0) g decreases from g(0+) = 1/(sqrt(n) K): one critical scale for
lam < 1/(sqrt(n) K), none above.

Along the curve s -> balanced factors the small critical scale is a local maximum of R (R increases
from R(0) = log K for L >= 2), so there the full Hessian has a negative eigenvalue: a strict saddle.
The large (scale-divergent) one is a local minimum of R; Theorem 4 (ii): its full Hessian has no
negative eigenvalues for small lam.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from deepcollapse import dufm
from deepcollapse.theory.ce import dnc_structure, pair_structure
from deepcollapse.theory.factors import balanced_factors
from deepcollapse.theory.hessian import DEFAULT_TOL, spectrum_summary

from .roots import brentq

STRUCTURES = ("dnc", "pairs")
WHICH = ("small", "large")
_RTOL = 4 * np.finfo(float).eps  # brentq's smallest allowed rtol is 4 eps


def _check(K: int, L: int, n: int, structure: str = "dnc") -> None:
    if structure not in STRUCTURES:
        raise ValueError(f"structure must be one of {STRUCTURES}, got {structure!r}")
    if not isinstance(K, (int, np.integer)) or K < 2:
        raise ValueError(f"K must be an int >= 2, got {K!r}")
    if structure == "pairs" and K % 2:
        raise ValueError(f"the pair structure (Eq. 5) needs an even K, got K={K}")
    if not isinstance(L, (int, np.integer)) or L < 1:
        raise ValueError(f"L must be an int >= 1, got {L!r}")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")


def _check_lam(lam) -> float:
    lam = float(lam)
    if not (lam > 0 and np.isfinite(lam)):
        raise ValueError(f"lam must be a finite number > 0, got {lam!r}")
    return lam


# ----------------------------------------------------------------------------- the two structures


def class_mean_logits(structure: str, K: int, s: float = 1.0) -> np.ndarray:
    """K x K class-mean logits: DNC s (I_K - 11^T/K); pairs s blockdiag([[1,-1],[-1,1]]) (Eq. 5);
    the structures of `deepcollapse.theory.ce`."""
    _check(K, 1, 1, structure)
    return s * (dnc_structure(K) if structure == "dnc" else pair_structure(K))


def logits(structure: str, K: int, n: int, s: float) -> np.ndarray:
    """Z = class_mean_logits kron 1_n^T (K x nK, columns class by class)."""
    _check(K, 1, n, structure)
    return np.kron(class_mean_logits(structure, K, s), np.ones((1, n)))


def structure_fit(structure: str, s, K: int):
    """CE fit of the structure at scale s: DNC log(1+(K-1)e^{-s}); pairs log(1+e^{-2s}+(K-2)e^{-s})."""
    s = np.asarray(s, np.float64)
    if structure == "dnc":
        return np.log1p((K - 1) * np.exp(-s))
    if structure == "pairs":
        return np.log1p(np.exp(-2 * s) + (K - 2) * np.exp(-s))
    raise ValueError(f"structure must be one of {STRUCTURES}, got {structure!r}")


def _sv_count(structure: str, K: int) -> tuple[int, float]:
    """(number m of non-zero singular values, their value per unit scale and sqrt(n): c)."""
    return (K - 1, 1.0) if structure == "dnc" else (K // 2, 2.0)


def structure_reduced_loss(structure: str, s, K: int, L: int, lam: float, n: int):
    """R(s) = fit(s) + (L+1) lam/2 * m (c s sqrt(n))^{2/(L+1)}: the reduced loss (SPEC.md; Garrod & Keating
    App. B.3) of the DNC (m = K-1, c = 1) or Eq. 5 pair (m = K/2, c = 2) structure at scale s."""
    _check(K, L, n, structure)
    m, c = _sv_count(structure, K)
    s = np.asarray(s, np.float64)
    return structure_fit(structure, s, K) + 0.5 * (L + 1) * lam * m * (c * s * np.sqrt(n)) ** (2.0 / (L + 1))


def _log_g(structure: str, K: int, L: int, n: int) -> tuple[Callable, Callable]:
    """(log g(s), d log g / ds) for g the RHS of Eq. 19 (DNC) or Eq. 27 (pairs); see the module doc."""
    a = (L - 1) / (L + 1)
    if structure == "dnc":
        c0 = np.log(n) / (L + 1)

        def logg(s):
            return a * np.log(s) - np.logaddexp(s, np.log(K - 1)) - c0

        def dlogg(s):
            return a / s - 1.0 / (1.0 + (K - 1) * np.exp(-s))

        return logg, dlogg
    c0 = np.log(K / 2) + np.log(4 * n) / (L + 1)

    def logg(s):
        num = np.logaddexp(np.log(2.0) - s, np.log(K - 2)) if K > 2 else np.log(2.0) - s
        den = np.logaddexp(np.logaddexp(s, -s), np.log(K - 2)) if K > 2 else np.logaddexp(s, -s)
        return a * np.log(s) + num - den - c0

    def dlogg(s):
        em = np.exp(-s)
        return (a / s - 2 * em / (2 * em + K - 2)
                - (1 - np.exp(-2 * s)) / (1 + np.exp(-2 * s) + (K - 2) * em))

    return logg, dlogg


def critical_scale_equation(structure: str, s, K: int, L: int, n: int):
    """g(s), the RHS of Eq. 19 (DNC) / Eq. 27 (pairs): s > 0 is a critical scale iff lam = g(s)."""
    _check(K, L, n, structure)
    logg, _ = _log_g(structure, K, L, n)
    return np.exp(logg(np.asarray(s, np.float64)))


def lam_threshold(structure: str, K: int, L: int, n: int) -> tuple[float, float]:
    """(lam_max, s*): critical scales exist iff lam < lam_max (two for L >= 2, one for L = 1).

    L >= 2: s* is the unique maximiser of g (root of d log g/ds, for DNC (L-1)/(L+1)(e^s+K-1) = s e^s),
    found by bracketing; lam_max = g(s*) (at lam = lam_max the two scales merge at s*).
    L = 1: g is decreasing, lam_max = g(0+) = 1/(sqrt(n) K) for both structures and s* = 0.
    """
    _check(K, L, n, structure)
    logg, dlogg = _log_g(structure, K, L, n)
    if L == 1:
        return float(np.exp(logg(np.finfo(float).tiny))), 0.0
    lo = 1.0
    while dlogg(lo) <= 0:
        lo *= 0.5
    hi = 2.0 * lo
    while dlogg(hi) >= 0:
        hi *= 2.0
    s_star = brentq(dlogg, lo, hi, xtol=1e-300, rtol=_RTOL, maxiter=4000)
    return float(np.exp(logg(s_star))), float(s_star)


def critical_scales(structure: str, K: int, L: int, lam: float, n: int) -> list[float]:
    """All critical scales s > 0 of the structure (roots of R'(s), i.e. lam = g(s)), sorted.

    Bracketing (brentq on log g(s) - log lam, brackets found by halving/doubling from s*) to machine
    precision (rtol = 4 eps). L >= 2: [small, large] for lam < lam_max, [s*] at lam = lam_max, []
    above. L = 1: [s] for lam < 1/(sqrt(n) K), [] otherwise.
    """
    _check(K, L, n, structure)
    lam = _check_lam(lam)
    logg, _ = _log_g(structure, K, L, n)
    lam_max, s_star = lam_threshold(structure, K, L, n)
    if lam > lam_max:
        return []
    if L >= 2 and lam == lam_max:
        return [s_star]
    h = lambda s: logg(s) - np.log(lam)  # noqa: E731  (> 0 between the roots)
    out = []
    if L >= 2:  # small root in (lo, s*): walk down from s* until h < 0
        lo = s_star
        while h(lo) > 0:
            lo *= 0.5
        out.append(brentq(h, lo, s_star, xtol=1e-300, rtol=_RTOL, maxiter=4000))
        lo = s_star
    else:  # g is decreasing from g(0+) > lam
        lo = np.finfo(float).tiny
    hi = max(2.0 * lo, 1.0)  # large root in (lo, hi): walk up until h < 0
    while h(hi) > 0:
        lo, hi = hi, 2.0 * hi
    out.append(brentq(h, lo, hi, xtol=1e-300, rtol=_RTOL, maxiter=4000))
    return [float(s) for s in sorted(out)]


def dnc_critical_scales(K: int, L: int, lam: float, n: int = 1) -> list[float]:
    """Critical scales of the DNC structure s (I - 11^T/K) kron 1_n^T (Garrod & Keating, Theorem 4,
    Eq. 19: lam = s^{(L-1)/(L+1)} / (n^{1/(L+1)} (e^s + K - 1))), sorted; [] for lam above
    `lam_threshold("dnc", K, L, n)[0]`. See `critical_scales`."""
    return critical_scales("dnc", K, L, lam, n)


def pair_critical_scales(K: int, L: int, lam: float, n: int = 1) -> list[float]:
    """Critical scales of the Eq. 5 pair structure (Garrod & Keating, App. B.8, Eq. 27), sorted."""
    return critical_scales("pairs", K, L, lam, n)


# ----------------------------------------------------------------------------- parameter points


def _pick(scales: list[float], which: str, L: int) -> float:
    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}, got {which!r}")
    if not scales:
        raise ValueError("no critical scale: lam is above the threshold lam_threshold(...)")
    if which == "small" and (L == 1 or len(scales) < 2):
        raise ValueError("there is no small critical scale (L = 1, or lam at the threshold)")
    return scales[0] if which == "small" else scales[-1]


def critical_point(structure: str, K: int, L: int, lam: float, n: int, width, which: str = "large") -> dict:
    """Balanced parameters {"H1", "W"} (float64 numpy) of the structure at its `which` critical scale,
    built by `factors.balanced_factors` (Lemma 1); a critical point of the full loss."""
    s = _pick(critical_scales(structure, K, L, lam, n), which, L)
    return balanced_factors(logits(structure, K, n, s), L, width, lam, lam)


def dnc_critical_point(K: int, L: int, lam: float, n: int, width, which: str = "large") -> dict:
    """DNC critical point (Theorem 4 (i)): balanced factors of s (I - 11^T/K) kron 1_n^T at the
    `which` ("small" or "large", the scale-divergent one) root of Eq. 19."""
    return critical_point("dnc", K, L, lam, n, width, which)


def ce_loss(params: dict, Y, lam) -> jax.Array:
    """The full deep linear UFM CE loss (`dufm.total_loss`, activation "linear") with weight decay lam on
    every factor; module-level so that jitted Hessians compile once per shape (lam, Y are arguments)."""
    L = len(params["W"])
    hyp = dufm.Hyper(jnp.asarray(lam), jnp.full((L,), lam))
    return dufm.total_loss(params, Y, hyp, "linear", "ce")


def ce_args(K: int, n: int, lam: float) -> tuple:
    """(Y, lam) for `ce_loss`: balanced one-hot labels (K x nK) and the weight decay, float64."""
    return jnp.asarray(dufm.one_hot([n] * K)), jnp.asarray(lam, jnp.float64)


def ce_loss_fn(K: int, L: int, lam: float, n: int) -> Callable:
    """params -> the full loss `ce_loss(params, Y, lam)` (a closure, for one-off use)."""
    Y, lam_ = ce_args(K, n, lam)
    return lambda p: ce_loss(p, Y, lam_)


@partial(jax.jit, static_argnums=0)
def _grad(f: Callable, params, args: tuple):
    return jax.grad(f)(params, *args)


def max_abs_grad(f: Callable, params, args: tuple = ()) -> float:
    """max |d f(params, *args) / d theta| over all parameters (jax.grad)."""
    g = _grad(f, jax.tree_util.tree_map(jnp.asarray, params), tuple(args))
    return float(max(jnp.max(jnp.abs(x)) for x in jax.tree_util.tree_leaves(g)))


def critical_point_report(K: int, L: int, lam: float, n: int, width, structure: str = "dnc",
                          method: str = "auto", tol: float = DEFAULT_TOL) -> list[dict]:
    """For each critical scale of the structure: {which, scale, loss, max_abs_grad, **spectrum} with the
    spectrum summary (`hessian.spectrum_summary`) of the Hessian of the FULL loss in all parameters.

    Theorem 4 (ii): at the large (scale-divergent) DNC scale, n_negative = 0 for small lam; at the
    small scale the point is a strict saddle (n_negative > 0; see the module doc). "Small" matters:
    for K=4, L=3, n=1, d=4 the large point has 2 negative eigenvalues (min -0.058) at lam = 0.9 lam_max
    and none at 0.5 lam_max and below.
    """
    args = ce_args(K, n, lam)
    scales = critical_scales(structure, K, L, lam, n)
    rows = []
    for i, s in enumerate(scales):
        which = "large" if i == len(scales) - 1 else "small"
        p = balanced_factors(logits(structure, K, n, s), L, width, lam, lam)
        rows.append({"structure": structure, "which": which, "scale": s,
                     "loss": float(ce_loss(jax.tree_util.tree_map(jnp.asarray, p), *args)),
                     "max_abs_grad": max_abs_grad(ce_loss, p, args),
                     **spectrum_summary(ce_loss, p, method=method, tol=tol, args=args)})
    return rows


def flatness_ratio(K: int, L: int, lams: Sequence[float], n: int = 1, width=None,
                   method: str = "dense") -> list[dict]:
    """Theorem 6: Hessian norms at the scale-divergent DNC and Eq. 5 pair critical points, and ratios.

    For each lam: rows {lam, s_dnc, s_pairs, and for norm in (frobenius, spectral, trace, nuclear):
    <norm>_dnc, <norm>_pairs, <norm>_ratio = dnc / pairs}. Theorem 6 (App. B.8): both Hessians are,
    to leading order, a fixed matrix times a factor proportional to lam log(1/lam) (the softmax
    curvature e^{-s} times sigma^{2L}, with e^{-s} ~ lam s^{-(L-1)/(L+1)} from Eq. 19/27 and
    sigma^{2L} ~ s^{2L/(L+1)}), so every norm -> 0 as lam -> 0 and their ratio tends to a constant
    (depending on the norm). The corrections are O(1/log(1/lam)), so the ratio converges slowly; the
    limits are `flatness_limit`. width: d (default K), even K >= 4 only.
    Precision: the Hessian comes from autodiff of log_softmax, whose curvature 1 - p_k ~ e^{-s} is
    formed with cancellation, relative error ~ 1e-16 e^{s}: keep lam >= ~1e-10 in float64.
    """
    _check(K, L, n, "pairs")
    if K < 4:
        raise ValueError(f"K must be even and >= 4 (for K = 2 the pairs are the DNC structure), got {K}")
    width = K if width is None else width
    rows = []
    for lam in lams:
        row = {"lam": float(lam)}
        args = ce_args(K, n, lam)
        for structure in STRUCTURES:
            scales = critical_scales(structure, K, L, lam, n)
            if not scales or (L >= 2 and len(scales) < 2):
                raise ValueError(f"lam={lam} is too large for a scale-divergent {structure} critical point")
            p = balanced_factors(logits(structure, K, n, scales[-1]), L, width, lam, lam)
            S = spectrum_summary(ce_loss, p, method=method, args=args)
            row[f"s_{structure}"] = scales[-1]
            for norm in ("frobenius", "spectral", "trace", "nuclear"):
                row[f"{norm}_{structure}"] = S[norm]
        for norm in ("frobenius", "spectral", "trace", "nuclear"):
            a, b = row[f"{norm}_dnc"], row[f"{norm}_pairs"]
            row[f"{norm}_ratio"] = None if a is None or b is None else a / b
        rows.append(row)
    return rows


def _unit_structure_jacobian(structure: str, K: int, L: int, n: int, width) -> tuple[np.ndarray, np.ndarray]:
    """(J, S): J = d vec(Z)/d theta (K x N x P) at the balanced factors of S kron 1_n^T scaled to unit
    singular values (every factor then has singular values 1), and S the unit-scale class-mean logits."""
    S = class_mean_logits(structure, K, 1.0)
    _, c = _sv_count(structure, K)
    p = balanced_factors(np.kron(S / (c * np.sqrt(n)), np.ones((1, n))), L, width, 1.0, 1.0)
    x0, unravel = ravel_pytree(jax.tree_util.tree_map(jnp.asarray, p))

    def product(x):
        q = unravel(x)
        out = q["H1"]
        for Wl in q["W"]:
            out = Wl @ out
        return out

    return np.asarray(jax.jacfwd(product)(x0)), S


def limit_hessian(structure: str, K: int, L: int, n: int = 1, width=None) -> np.ndarray:
    """lim_{lam -> 0} Hess / (n lam s) at the scale-divergent critical point (Theorem 6, App. B.8).

    Derivation. Hess = J^T (d^2 fit/dZ^2) J + (fit gradient x second derivatives of Z) + lam I, the last
    two O(lam). J is homogeneous of degree L in the factors, which are sigma times unit factors theta_1,
    sigma = (c s sqrt(n))^{1/(L+1)}: J = sigma^L J_1. d^2 fit/dZ^2 = (1/N) blockdiag_i(diag p_i - p_i p_i^T)
    = (e^{-s}/N) blockdiag_i(M_{k(i)}) (1 + O(e^{-s})), with M_k = sum_{j : S_kk - S_jk = 1}
    (e_j - e_k)(e_j - e_k)^T (the classes one unit of logit behind; the pair partner is two behind).
    Eq. 19 (DNC) and Eq. 27 (pairs) at large s give sigma^{2L} e^{-s} = kappa n lam s (1 + o(1)),
    kappa = 1 (DNC), 2K/(K-2) (pairs). Hence Hess / (n lam s) -> kappa J_1^T blockdiag(M) J_1 / N, with
    corrections O(1/s) = O(1/log(1/lam)).
    """
    _check(K, L, n, structure)
    if structure == "pairs" and K < 4:
        raise ValueError(f"the pair limit needs an even K >= 4, got K={K}")
    width = K if width is None else width
    J, S = _unit_structure_jacobian(structure, K, L, n, width)
    N = K * n
    P = J.shape[-1]
    H = np.zeros((P, P))
    for k in range(K):
        M = np.zeros((K, K))
        for j in range(K):
            if j != k and abs(S[k, k] - S[j, k] - 1.0) < 1e-12:
                e = np.zeros(K)
                e[j], e[k] = 1.0, -1.0
                M += np.outer(e, e)
        Jk = J[:, k * n:(k + 1) * n, :]  # K x n x P, the columns of class k
        H += np.einsum("aip,ab,biq->pq", Jk, M, Jk) / N
    kappa = 1.0 if structure == "dnc" else 2.0 * K / (K - 2)
    return kappa * 0.5 * (H + H.T)


def flatness_limit(K: int, L: int, n: int = 1, width=None) -> dict:
    """Theorem 6's constants: norms of `limit_hessian` for DNC and the pairs and their ratios,
    {"dnc": {frobenius, spectral, trace}, "pairs": {...}, "ratio": {...}}; `flatness_ratio`'s
    <norm>_ratio tends to ratio[<norm>] and <norm>_<structure> / (n lam s_<structure>) to the norms."""
    out = {}
    for structure in STRUCTURES:
        eig = np.linalg.eigvalsh(limit_hessian(structure, K, L, n, width))
        out[structure] = {"frobenius": float(np.sqrt(np.sum(eig**2))), "spectral": float(np.max(np.abs(eig))),
                          "trace": float(np.sum(eig))}
    out["ratio"] = {k: out["dnc"][k] / out["pairs"][k] for k in out["dnc"]}
    return out
