"""Imbalanced classes in the deep linear CE UFM (Garrod & Keating, App. A).

With class sizes n_1..n_K (columns class by class) Lemma 1 still holds, so the loss is the reduced loss
of the output Z (K x N) with the per-class weighted CE fit. Theorem A3: under (R, rho)-STEP imbalance the
generalised DNC structure (proportional to the SEL matrix, rank K-1) is not a global minimum for
enough layers and small lam; the lower-rank competitor is the Eq. (5) pairing with repeated columns.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from deepcollapse.theory.ce import (
    _check_K,
    dnc_structure,
    optimal_scale,
    pair_structure,
    repeat_columns,
)


def step_sizes(K: int, R: float, rho: float, n_maj: int) -> list[int]:
    """Class sizes of an (R, rho)-STEP imbalance (Garrod & Keating, App. A.2, after Thrampoulidis et al.).

    (1 - rho) K majority classes of size n_maj first, then rho K minority classes of size n_maj / R.
    rho K and n_maj / R must be integers.
    """
    K = _check_K(K)
    if not R >= 1:
        raise ValueError(f"R (imbalance ratio) must be >= 1, got {R}")
    if not 0 < rho < 1:
        raise ValueError(f"rho (minority fraction) must be in (0, 1), got {rho}")
    n_min_minor = rho * K
    if abs(n_min_minor - round(n_min_minor)) > 1e-9:
        raise ValueError(f"rho * K must be an integer number of minority classes, got {n_min_minor}")
    n_minor_classes = int(round(n_min_minor))
    n_min = n_maj / R
    if abs(n_min - round(n_min)) > 1e-9 or round(n_min) < 1:
        raise ValueError(f"n_maj / R must be a positive integer minority size, got {n_min}")
    return [int(n_maj)] * (K - n_minor_classes) + [int(round(n_min))] * n_minor_classes


def sel_matrix(sizes: Sequence[int]) -> np.ndarray:
    """Simplex-encoded label matrix (Garrod & Keating, App. A.2; Thrampoulidis et al.): K x N, column
    k of the simplex ETF I - 11^T/K repeated n_k times. Diagonally superior, rank K-1."""
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must be >= 2 positive class sizes, got {sizes}")
    return repeat_columns(dnc_structure(len(sizes)), sizes)


def imbalanced_compare(sizes: Sequence[int], L: int, lam: float) -> dict:
    """Generalised DNC (s * SEL) vs the Eq. (5) pairs with repeated columns, each at its optimal scale,
    in the reduced loss with per-class sizes (Garrod & Keating, Theorem A3).

    Pairs follow the class order (majorities first), so pairs are majority-majority and
    minority-minority except at most one mixed pair.
    Returns {sizes, L, lam, loss_dnc, loss_lowrank, s_dnc, s_lowrank, lowrank_wins}.
    """
    sizes = [int(s) for s in sizes]
    K = len(sizes)
    s_d, l_d = optimal_scale(dnc_structure(K), L, lam, sizes=sizes)
    s_p, l_p = optimal_scale(pair_structure(K), L, lam, sizes=sizes)
    return {"sizes": sizes, "L": L, "lam": lam, "loss_dnc": l_d, "loss_lowrank": l_p, "s_dnc": s_d,
            "s_lowrank": s_p, "lowrank_wins": bool(l_p < l_d * (1 - 1e-12))}
