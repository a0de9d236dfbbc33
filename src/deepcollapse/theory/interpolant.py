"""Minimum-norm interpolating MLPs: the singular values weight decay drives the weights to as it vanishes.

Zangrando et al. (2025), Fig. 2, compares the singular values of trained weights with those the
DNC1-optimal network predicts, for a weight decay delta -> 0 (their Prop. "Gamma-convergence of the
first-layer-regularised loss" with their Thm. "DNC1 optimal (feedforward)"). The project's copy of that
paper states neither formula; this module computes the limit itself, for the case where it is exact.

Setting: data X (d x N, class by class), targets Y (K x N, one-hot), an L-layer network without biases
Z = W_L act(... act(W_1 X)), loss J_delta = fit + delta/2 sum_l ||W_l||_F^2. As delta -> 0 the
minimisers of J_delta approach the minimisers of sum_l ||W_l||_F^2 among the interpolating networks
(least-squares fits when interpolation is impossible): Gamma-convergence of delta-penalised problems.

Linear activations (exact). Write A = W_L ... W_1 for the end-to-end map.
  1. For a fixed A, min sum_l ||W_l||_F^2 over factorisations = L sum_i s_i(A)^(2/L), attained by the
     balanced factors (every W_l with singular values s_i(A)^(1/L), W_{l+1}^T W_{l+1} = W_l W_l^T; the
     representation cost of deep linear networks, e.g. Dai, Karzand, Srebro 2021, Thm. 1). Balance also
     holds at every critical point of J_delta with equal weight decay (the gradient identity
     W_{l+1}^T dJ/dW_{l+1} = dJ/dW_l W_l^T gives W_{l+1}^T W_{l+1} - W_l W_l^T = 0).
  2. Every least-squares solution is A = A0 + C with A0 = Y X^+ and C X = 0; then
     A A^T = A0 A0^T + C C^T (the cross term C X^{+T} vanishes: X^{+T} has columns in range(X)), so
     s_i(A) >= s_i(A0) for every i (Weyl) and A0 minimises every Schatten quasi-norm.
  Hence the delta -> 0 limit: every W_l has the non-zero singular values s_i(Y X^+)^(1/L) (at most K of
  them), total norm L sum_i s_i(Y X^+)^(2/L). The intermediate features B_l X (B_l = W_l ... W_1) are
  then collapsed whenever X can be interpolated (d >= N, X of full column rank): the row space of B_l is
  that of A0, and A0 x_i = y_i, so DNC1 holds in every layer. This is `predicted_singular_values`.

ReLU activations. A ReLU network whose every hidden feature is entrywise >= 0 computes the same map as
its linear counterpart, so the balanced linear solution is a ReLU network of the same cost whenever its
features can be rotated into the non-negative orthant; then the value above is an upper bound on the
ReLU network's minimal cost, not a proof of optimality (Súkeník et al. show that ReLU networks can do
better with low-rank, non-collapsed layers). The experiment shows both activations against it.

Numerics: NumPy float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deepcollapse.theory.factors import nonzero_singular_values


def _check_xy(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, np.float64)
    Y = np.asarray(Y, np.float64)
    if X.ndim != 2 or Y.ndim != 2:
        raise ValueError(f"X (d x N) and Y (K x N) must be matrices, got shapes {X.shape} and {Y.shape}")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y must have the same number of columns N, got {X.shape[1]} and {Y.shape[1]}")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Y))):
        raise ValueError("X and Y must be finite")
    return X, Y


def _check_L(L: int) -> int:
    if not isinstance(L, (int, np.integer)) or L < 1:
        raise ValueError(f"L (number of weight layers) must be a positive int, got {L!r}")
    return int(L)


def min_norm_interpolant(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """A0 = Y X^+ (K x d): the minimum-Frobenius-norm least-squares solution of A X = Y, and by the
    module's step 2 the solution with the smallest singular values (each one) among all of them."""
    X, Y = _check_xy(X, Y)
    return Y @ np.linalg.pinv(X)


def interpolates(X: np.ndarray, Y: np.ndarray, rtol: float = 1e-8) -> bool:
    """Whether some linear map A has A X = Y exactly (to rtol): then the delta -> 0 limit fits the data."""
    X, Y = _check_xy(X, Y)
    R = min_norm_interpolant(X, Y) @ X - Y
    return bool(np.linalg.norm(R) <= rtol * max(np.linalg.norm(Y), 1e-300))


def predicted_singular_values(X: np.ndarray, Y: np.ndarray, L: int, rank_rtol: float = 1e-10) -> np.ndarray:
    """Non-zero singular values shared by every W_l of the minimum-norm deep linear interpolant:
    s_i(Y X^+)^(1/L), descending (module docstring, steps 1-2; the delta -> 0 limit of weight decay).

    Singular values of Y X^+ below rank_rtol * s_max count as zeros and are dropped.
    """
    L = _check_L(L)
    return nonzero_singular_values(min_norm_interpolant(X, Y), rank_rtol) ** (1.0 / L)


def min_weight_norm(X: np.ndarray, Y: np.ndarray, L: int) -> float:
    """min sum_l ||W_l||_F^2 over linear L-layer networks fitting (least squares) X -> Y:
    L sum_i s_i(Y X^+)^(2/L) (module docstring)."""
    return float(_check_L(L) * np.sum(predicted_singular_values(X, Y, L) ** 2))


def balanced_factors(A: np.ndarray, widths: Sequence[int], rank_rtol: float = 1e-10) -> list[np.ndarray]:
    """Weights W_1 .. W_L of a linear network with W_L ... W_1 = A and the smallest sum_l ||W_l||_F^2.

    A = U S V^T (thin, the r non-zero singular values); W_1 = P_1 S^(1/L) V^T,
    W_l = P_l S^(1/L) P_{l-1}^T, W_L = U S^(1/L) P_{L-1}^T, where P_l (d_{l+1} x r) embeds R^r as the
    first r coordinates. widths: (d_2, ..., d_L) hidden widths, each >= rank(A); A is K x d_1.
    These are Garrod & Keating's balanced factors (`theory.factors.balanced_factors`, Lemma 1) of A
    with L - 1 weights after a "feature" factor, which here is W_1.
    """
    from deepcollapse.theory.factors import balanced_factors as ufm_factors

    A = np.asarray(A, np.float64)
    widths = [int(w) for w in widths]
    if not widths:
        return [A.copy()]
    r = len(nonzero_singular_values(A, rank_rtol))
    if any(w < r for w in widths):
        raise ValueError(f"every hidden width must be >= rank(A) = {r}, got {widths}")
    f = ufm_factors(A, len(widths), widths, 1.0, 1.0, rank_rtol=rank_rtol)
    return [f["H1"], *f["W"]]
