"""Reference losses of the analytic solutions for a training config (the lines in the loss plots).

L_DNC: the MSE ReLU DNC optimum (Súkeník et al.; `theory.mse.dnc_loss`), any K, class sizes and
per-layer lams. L_SRG: the SRG solution's optimum (`theory.srg.srg_loss`, SPEC.md construction), only
when K = C(r, 2), classes are balanced and L >= 2. Cross-entropy runs get the deep linear CE DNC and
Eq. 5 pair-structure optima (Garrod & Keating; `theory.ce.optimal_scale`) when every lam is equal.
A value that the theory does not define for the config is None.
"""

from __future__ import annotations

import math

from .config import DUFMConfig


def triangular_r(K: int) -> int | None:
    """r with K = C(r, 2), or None."""
    r = int(round((1 + math.sqrt(1 + 8 * K)) / 2))
    return r if r * (r - 1) // 2 == K else None


def reference_losses(cfg: DUFMConfig) -> dict[str, float | None]:
    lams = cfg.lams_W
    out: dict[str, float | None] = {}
    if min(lams) <= 0 or cfg.lam_H <= 0:
        return out
    if cfg.loss == "mse":
        from .theory.mse import dnc_loss
        from .theory.srg import srg_loss

        out["L_DNC"] = float(dnc_loss(cfg.K, cfg.L, list(cfg.sizes), cfg.lam_H, list(lams))[0])
        r = triangular_r(cfg.K)
        if r is not None and cfg.class_sizes is None and cfg.L >= 2 and cfg.activation == "relu":
            out["L_SRG"] = float(srg_loss(r, cfg.L, cfg.n, cfg.lam_H, list(lams))[0])
    elif cfg.class_sizes is None and len({cfg.lam_H, *lams}) == 1:
        from .theory.ce import dnc_structure, optimal_scale, pair_structure

        out["L_DNC"] = float(optimal_scale(dnc_structure(cfg.K), cfg.L, cfg.lam_H, n=cfg.n)[1])
        out["L_lowrank"] = float(optimal_scale(pair_structure(cfg.K), cfg.L, cfg.lam_H, n=cfg.n)[1])
    return out
