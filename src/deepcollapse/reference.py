"""Reference losses of the analytic solutions for a training config (the lines in the loss plots).

L_DNC: the MSE ReLU DNC optimum (Súkeník et al.; `theory.mse.dnc_loss`), any K, class sizes and
per-layer lams. L_SRG: the SRG solution's optimum (`theory.srg.srg_loss`, SPEC.md construction), only
when K = C(r, 2), classes are balanced and L >= 2. Cross-entropy runs get the deep linear CE DNC and
Eq. 5 pair-structure optima (Garrod & Keating; `theory.ce.optimal_scale`). A value that the theory
does not define is left out. Also used for the real networks' heads (`experiments.nets_figures`).
"""

from __future__ import annotations

import math

from .config import DUFMConfig


def triangular_r(K: int) -> int | None:
    """r with K = C(r, 2), or None."""
    r = int(round((1 + math.sqrt(1 + 8 * K)) / 2))
    return r if r * (r - 1) // 2 == K else None


def reference_losses_for(K: int, L: int, sizes, lam_H: float, lam_W, loss: str, activation: str
                         ) -> dict[str, float]:
    """The analytic losses a model with these shapes and weight decays is compared with.

    MSE: L_DNC (`theory.mse.dnc_loss`, any class sizes, per-layer lams) and, with ReLU, K = C(r, 2),
    balanced classes and L >= 2, L_SRG (`theory.srg.srg_loss`). CE, balanced classes: the deep linear
    DNC optimum L_DNC and the Eq. (5) pair optimum L_lowrank (`theory.ce.optimal_scale`) at
    lam_geo = (lam_H prod_l lam_l)^(1/(L+1)), on which the reduced loss of Garrod & Keating's
    Lemma 1 depends alone (SPEC.md). Keys the theory does not define are left out.
    """
    lams = [float(x) for x in (lam_W if hasattr(lam_W, "__len__") else [lam_W] * L)]
    sizes = list(sizes)
    out: dict[str, float] = {}
    if min(lams) <= 0 or lam_H <= 0:
        return out
    balanced = len(set(sizes)) == 1
    if loss == "mse":
        from .theory.mse import dnc_loss
        from .theory.srg import srg_loss

        out["L_DNC"] = float(dnc_loss(K, L, sizes, lam_H, lams)[0])
        r = triangular_r(K)
        if r is not None and r >= 3 and balanced and L >= 2 and activation == "relu":
            out["L_SRG"] = float(srg_loss(r, L, sizes[0], lam_H, lams)[0])
    elif balanced:
        from .theory.ce import dnc_structure, optimal_scale, pair_structure

        lam_geo = math.exp((math.log(lam_H) + sum(math.log(x) for x in lams)) / (L + 1))
        out["L_DNC"] = float(optimal_scale(dnc_structure(K), L, lam_geo, n=sizes[0])[1])
        out["L_lowrank"] = float(optimal_scale(pair_structure(K), L, lam_geo, n=sizes[0])[1])
    return out


def reference_losses(cfg: DUFMConfig) -> dict[str, float]:
    """`reference_losses_for` a DUFM config (with fixed data H_1 is not free: none)."""
    if getattr(cfg, "data", None) is not None:
        return {}
    return reference_losses_for(cfg.K, cfg.L, cfg.sizes, cfg.lam_H, cfg.lams_W, cfg.loss, cfg.activation)
