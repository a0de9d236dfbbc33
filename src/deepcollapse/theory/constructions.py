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


def known_constructions(cfg) -> dict:
    """The explicit solutions that exist for a DUFM config, name -> zero-argument builder.

    MSE (Súkeník et al.): "dnc" (`mse.dnc_solution`, widths >= K), and with ReLU, K = C(r, 2),
    balanced classes and L >= 2: "srg", "srg-balanced" (`srg.srg_solution` variants) and
    "srg-relaxed" (`srg.srg_relaxed_solution`), the last two for L >= 3. Cross-entropy with balanced classes and one weight decay
    on every factor (Garrod & Keating): linear: "dnc", "pairs" (Eq. 5), "rank2" (`ce.*_solution`);
    ReLU: "relu-pairs" (Theorem 7's construction, `ce.relu_pair_solution`). Free features only; each
    builder returns a `Construction` at the config's widths, class sizes and weight decays.
    """
    from deepcollapse.reference import triangular_r

    if getattr(cfg, "data", None) is not None or getattr(cfg, "residual", None):
        return {}
    K, L, widths, sizes = cfg.K, cfg.L, list(cfg.widths), list(cfg.sizes)
    lams, balanced = list(cfg.lams_W), len(set(cfg.sizes)) == 1
    out = {}
    if cfg.loss == "mse":
        from deepcollapse.theory import mse, srg

        if min(widths) >= K and cfg.lam_H > 0 and min(lams) > 0:
            out["dnc"] = lambda: mse.dnc_solution(K, L, widths, sizes, cfg.lam_H, lams)
        r = triangular_r(K)
        fits = r is not None and r >= 3 and L >= 2 and widths[-1] >= K and min(widths[:-1]) >= r
        if cfg.activation == "relu" and balanced and fits and cfg.lam_H > 0 and min(lams) > 0:
            out["srg"] = lambda: srg.srg_solution(r, L, widths, sizes[0], cfg.lam_H, lams)
            if L >= 3:  # both variants need a ReLU layer between W_1 and W_(L-1)
                out["srg-balanced"] = lambda: srg.srg_solution(r, L, widths, sizes[0], cfg.lam_H, lams, "balanced")
                out["srg-relaxed"] = lambda: srg.srg_relaxed_solution(r, L, widths, sizes[0], cfg.lam_H, lams)
        return out
    if not balanced or len({cfg.lam_H, *lams}) != 1 or cfg.lam_H <= 0 or min(widths) < K:
        return out
    from deepcollapse.theory import ce

    lam, n = cfg.lam_H, sizes[0]
    if cfg.activation == "linear":
        out["dnc"] = lambda: ce.dnc_solution(K, L, widths, lam, n)
        out["pairs"] = lambda: ce.pair_solution(K, L, widths, lam, n)
        out["rank2"] = lambda: ce.rank2_solution(K, L, widths, lam, n)
    else:
        out["relu-pairs"] = lambda: ce.relu_pair_solution(K, L, widths, lam, n)
    return out


def build(cfg, name: str) -> Construction:
    """The construction `name` of a config (`known_constructions`); ValueError naming the ones it has."""
    known = known_constructions(cfg)
    if name not in known:
        raise ValueError(f"start.structure: {name!r} has no construction for this config (K={cfg.K}, L={cfg.L}, "
                         f"{cfg.activation}/{cfg.loss}, widths {list(cfg.widths)}); it has: "
                         f"{', '.join(known) or 'none'}")
    return known[name]()
