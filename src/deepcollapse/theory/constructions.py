"""`Construction`: an explicit L-DUFM parameter point built from a paper's analytic solution.

Shared by the MSE (Súkeník et al.) and cross-entropy (Garrod & Keating) constructions, so that every
analytic solution comes with parameters whose loss can be recomputed through `deepcollapse.dufm`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Construction:
    """An analytic solution realised at given widths.

    params: the L-DUFM pytree {"H1": (d_1, N), "W": (W_1, ..., W_L)}, numpy float64 arrays.
    loss, fit, reg: the claimed total loss and its fit and regularisation parts (loss = fit + reg).
    scales: the free scalars of the construction at the optimum (names documented by the builder).
    meta: anything else (K, L, sizes, lams, widths, rank structure, solver diagnostics).
    """

    params: dict
    loss: float
    fit: float
    reg: float
    scales: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
