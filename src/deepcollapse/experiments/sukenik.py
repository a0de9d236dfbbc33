"""Súkeník, Lampert, Mondelli (2024), "Neural collapse vs. low-rank bias": Figures 1, 2 (top), 3, 5, 6.

MSE ReLU L-DUFM trained by full-batch gradient descent (`deepcollapse.train` through
`deepcollapse.sweep`), compared with the closed-form DNC and SRG losses (`deepcollapse.theory`).
Settings the paper states: K = 10, L = 4, lam = 0.004 for every factor, lr 0.5, width 30, 10 runs
(Fig. 2); L = 3, 4, 5 and K = C(r, 2) (Fig. 3 left); L = 4, K = 10, 5 runs (Fig. 3 middle/right);
K = 3, 4, 5 and L = 4 (Fig. 5, no lam given); K = 15, L = 7 (Fig. 6). The reasons for the others are
each figure's `choices`; what the runs show is in docs/findings.md.
"""

from __future__ import annotations

import numpy as np

from deepcollapse import metrics
from deepcollapse.config import DUFMConfig
from deepcollapse.engine import final_class_means, final_features
from deepcollapse.experiments import common as C
from deepcollapse.experiments.registry import Data, register
from deepcollapse.reference import reference_losses, triangular_r

PAPER = "Súkeník, Lampert, Mondelli (2024), Neural collapse vs. low-rank bias"
LAM = 0.004
N_PER_CLASS = 5  # not stated in the paper
INIT = 0.3  # not stated in the paper
#: The choices every Súkeník et al. DUFM figure shares.
DUFM_CHOICES = ("n = 5 samples per class (N = 5K), also in the closed forms; entries initialised N(0, 0.3^2): "
                "0.4 and above diverge at lr 0.5, 0.2 gives some DNC runs; 30000 full-batch steps (20000 quick), "
                "logged every 500, float32; numerical rank at rtol 1e-3 and 'found DNC' = "
                "`metrics.dnc_verdict` (NC2 tolerance 0.25), the project's one rule.")


def _steps(size: str) -> tuple[int, int]:
    """(steps, log_every) of a size."""
    return {"full": (30000, 500), "quick": (20000, 500), "smoke": (20, 10)}[size]


def _base(size: str, **kw) -> dict:
    steps, log_every = _steps(size)
    d = dict(K=10, n=N_PER_CLASS, L=4, width=30, activation="relu", loss="mse", lam_H=LAM, lam_W=LAM,
             lr=0.5, init_scale=INIT, steps=steps, log_every=log_every, seeds=10 if size != "smoke" else 2)
    d.update(kw)
    return d


def _theory_losses(cfg: DUFMConfig) -> dict:
    """L_DNC and, when K = C(r, 2), L_SRG of a config (`reference.reference_losses`), and r."""
    refs = reference_losses(cfg)
    return {"L_DNC": refs["L_DNC"], "L_SRG": refs.get("L_SRG"), "r": triangular_r(cfg.K)}


def _rank(M, rtol: float = 1e-3) -> int:
    return int(metrics.numerical_rank(M, rtol))


def _loss_key(h):
    return h.assign(layer=h["layer"].fillna("").astype(str))


# ------------------------------------------------------------------------------------------------
# Fig. 1: SRG vs DNC class-mean matrices (theory)
# ------------------------------------------------------------------------------------------------

def _fig1_params(size: str) -> dict:
    return {"L": 4, "K": 10, "r": 5, "n": N_PER_CLASS, "lam": LAM, "srg_widths": [5, 5, 5, 10],
            "dnc_widths": [10, 10, 10, 10], "srg_variant": "spec (SPEC.md / the paper's Fig. 1)"}


def _fig1_compute(data: Data) -> None:
    import pandas as pd

    from deepcollapse.theory.mse import dnc_solution
    from deepcollapse.theory.srg import class_mean_matrices, srg_solution

    s = data.params
    srg = srg_solution(s["r"], s["L"], s["srg_widths"], s["n"], s["lam"], s["lam"])
    dnc = dnc_solution(s["K"], s["L"], s["dnc_widths"], s["n"], s["lam"], s["lam"])
    ms, md = class_mean_matrices(srg), class_mean_matrices(dnc)
    mats = {"SRG M3": ms["H"][2], "SRG M4 (before ReLU)": ms["Z"][2],
            "SRG M4^T M4": ms["Z"][2].T @ ms["Z"][2], "DNC M4^T M4": md["Z"][2].T @ md["Z"][2],
            "SRG ReLU(M4)": np.maximum(ms["Z"][2], 0.0)}
    rows = [{"matrix": k, "row": i, "col": j, "value": float(v)}
            for k, M in mats.items() for (i, j), v in np.ndenumerate(M)]
    data.table = pd.DataFrame(rows)
    data.extra.update(mats=mats, loss_srg=srg.loss, loss_dnc=dnc.loss,
                      ranks={k: _rank(M, 1e-9) for k, M in mats.items()})


def _fig1_summary(data: Data) -> str:
    e = data.extra
    lines = [f"SRG solution (r = 5, K = 10, L = 4, lam = {LAM}, n = {N_PER_CLASS}) vs DNC, closed forms.\n",
             f"- L_SRG = {C.fmt(e['loss_srg'], 6)}, L_DNC = {C.fmt(e['loss_dnc'], 6)} "
             f"(ratio {C.fmt(e['loss_srg'] / e['loss_dnc'])})"]
    for k, r in e["ranks"].items():
        lines.append(f"- rank({k}) = {r}")
    lines.append("\nThe paper: rank(M4) = r = 5 before ReLU, rank K = 10 after; DNC has rank K everywhere.")
    return "\n".join(lines) + "\n"


@register("sukenik-fig1", paper=PAPER, figure="Fig. 1",
          description="SRG low-rank solution vs DNC: class-mean matrices M3, M4 (before ReLU) and "
                      "the Gram matrices M4^T M4 of SRG and DNC (L=4, K=10, r=5), closed forms.",
          compute=_fig1_compute, summarize=_fig1_summary, params=_fig1_params,
          choices="The SRG widths (r, r, r, K) = (5, 5, 5, 10), so that M3 is the r x K matrix the paper shows; "
                  "n = 5, lam = 0.004.",
          est_seconds={"smoke": 2, "quick": 2, "full": 2})
def _fig1_plot(out_dir, data: Data):
    plt = C.plt()
    m = data.extra["mats"]
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    C.heatmap(axes[0], m["SRG M3"], "SRG: M3 (r x K)")
    C.heatmap(axes[1], m["SRG M4 (before ReLU)"], "SRG: M4 before ReLU", symmetric=True)
    C.heatmap(axes[2], m["SRG M4^T M4"], r"SRG: $M_4^T M_4$", symmetric=True)
    C.heatmap(axes[3], m["DNC M4^T M4"], r"DNC: $M_4^T M_4$", symmetric=True)
    for ax in axes:
        ax.set_xlabel("class")
    axes[0].set_ylabel("neuron")
    axes[1].set_ylabel("neuron")
    axes[2].set_ylabel("class")
    axes[3].set_ylabel("class")
    return C.save_figure(fig, out_dir, data.name)


# ------------------------------------------------------------------------------------------------
# Fig. 2 (top): 4-DUFM training vs L_DNC and L_SRG
# ------------------------------------------------------------------------------------------------

def _fig2_configs(size: str) -> list[DUFMConfig]:
    return [DUFMConfig(**_base(size))]


def _dufm_compute(data: Data) -> None:
    """Final class-mean singular values of every lane (table) and the theory losses (extra)."""
    data.extra["svals"] = C.class_mean_svals_table(data)
    data.extra["theory"] = _theory_losses(data.configs[0])
    data.table = data.points


def _fig2_summary(data: Data) -> str:
    p = data.points
    ok = C.alive(p)
    th = data.extra["theory"]
    cfg = data.configs[0]
    lines = [f"{len(p)} runs (K={cfg.K}, L={cfg.L}, width {cfg.width}, lam {cfg.lam_H}, lr {cfg.lr}, "
             f"init {cfg.init_scale}, {cfg.steps} steps), {len(p) - len(ok)} diverged.\n",
             f"- final loss: mean {C.fmt(ok['loss'].mean())}, std {C.fmt(ok['loss'].std())}, "
             f"min {C.fmt(ok['loss'].min())}, max {C.fmt(ok['loss'].max())}",
             C.below_line(ok, th["L_DNC"], "L_DNC"), C.below_line(ok, th["L_SRG"], "L_SRG"),
             f"- found DNC: {C.proportion(int(ok['found_dnc'].astype(bool).sum()), len(ok))}"]
    ranks = [c for c in p.columns if c.startswith("rank_") and c != "rank_rtol"]
    if ranks:
        lines.append("- class-mean ranks (mean over runs): " + ", ".join(
            f"{c[5:]} {C.fmt(ok[c].mean(), 3)}" for c in ranks))
    lines += C.convergence_lines(data)
    return "\n".join(lines) + "\n"


@register("sukenik-fig2-dufm", paper=PAPER, figure="Fig. 2 (top row)",
          description="4-DUFM, K=10, lam=0.004, lr 0.5, width 30, 10 seeds: loss vs L_DNC and L_SRG, "
                      "DNC1 per layer over training, singular values of the class means at convergence.",
          configs=_fig2_configs, compute=_dufm_compute, summarize=_fig2_summary, choices=DUFM_CHOICES,
          est_seconds={"smoke": 10, "quick": 20, "full": 30})
def _fig2_plot(out_dir, data: Data):
    plt = C.plt()
    h = _loss_key(data.histories)
    ids = data.points["run_id"].unique()
    th = data.extra["theory"]
    L = data.configs[0].L
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    steps, loss = C.history_matrix(h, ids, "", "loss")
    C.loss_gap_panel(axes[0], steps, loss, th["L_DNC"], "L_DNC", {"L_SRG": th["L_SRG"]})
    axes[0].set_title(f"loss - L_DNC, all {loss.shape[0]} seeds (below 0: beats DNC)")
    for l in range(1, L + 1):
        s, v = C.history_matrix(h, ids, f"H{l}", "nc1_trace")
        if v.size:
            C.band(axes[1], s, v, label=f"H{l}", log=True)
    axes[1].set_yscale("log")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel(r"tr$\Sigma_W$ / tr$\Sigma_B$")
    axes[1].set_title(r"DNC1: tr$\Sigma_W$/tr$\Sigma_B$ per layer (geo. mean, 1 std)")
    axes[1].legend(fontsize=8)
    sv = data.extra["svals"]
    for l in range(1, L + 1):
        sel = sv[sv["layer"] == f"H{l}"]
        if sel.empty:
            continue
        wide = sel.pivot_table(index=["run_id", "lane"], columns="index", values="value")
        C.band(axes[2], wide.columns.to_numpy(), wide.to_numpy(), label=f"M{l}", marker="o", ms=3, log=True)
    axes[2].set_yscale("log")
    axes[2].set_xlabel("singular value index")
    axes[2].set_ylabel("singular value")
    axes[2].set_title("class-mean singular values (geo. mean, 1 std)")
    axes[2].legend(fontsize=8)
    return C.save_figure(fig, out_dir, data.name)


# ------------------------------------------------------------------------------------------------
# Fig. 3 left: L_SRG / L_DNC (theory)
# ------------------------------------------------------------------------------------------------

RATIO_LAM, RATIO_N = 0.002, 1  # neither L_DNC nor L_SRG is the zero solution (loss 1/2) for r <= 10, L <= 5
RATIO_NOISE = 0.01  # std of the noise added to the SRG start of the gradient-descent runs
ZERO_LOSS = 0.5  # MSE loss of Z = 0: ||Y||^2 / (2N)


def _ratio_params(size: str) -> dict:
    rs = [4, 5] if size == "smoke" else list(range(4, 11))
    Ls = [3, 4] if size == "smoke" else [3, 4, 5]
    return {"r": rs, "L": Ls, "lam": RATIO_LAM, "n": RATIO_N, "srg_variant": "spec",
            "variants": ["spec", "balanced", "relaxed"], "gd_r": _ratio_gd_rs(size), "gd_L": _ratio_gd_Ls(size),
            "gd_start": "srg", "gd_noise": RATIO_NOISE}


def _ratio_gd_rs(size: str) -> list[int]:
    return {"smoke": [4], "quick": [4, 6, 8, 10], "full": list(range(4, 11))}[size]


def _ratio_gd_Ls(size: str) -> list[int]:
    return [3] if size == "smoke" else [3, 4, 5]


def _ratio_configs(size: str) -> list[DUFMConfig]:
    """Gradient descent started at the SRG solution plus N(0, 0.01^2) noise (`config.Start`), K = C(r, 2),
    width K in every layer (room for DNC and for the SRG solution), 5 runs (the caption's "averaged over
    5 runs"), stopped when the loss changes by less than 1e-4 relative over 2000 steps."""
    from deepcollapse.config import Convergence, Start

    steps, log_every = {"smoke": (20, 10), "quick": (10000, 500), "full": (40000, 500)}[size]
    window = 10 if size == "smoke" else 2000
    out = []
    for L in _ratio_gd_Ls(size):
        for r in _ratio_gd_rs(size):
            K = r * (r - 1) // 2
            out.append(DUFMConfig(K=K, n=RATIO_N, L=L, width=K, activation="relu", loss="mse", lam_H=RATIO_LAM,
                                  lam_W=RATIO_LAM, lr=0.5, init_scale=0.0, steps=steps, log_every=log_every,
                                  seeds=2 if size == "smoke" else 5, start=Start(structure="srg", noise=RATIO_NOISE),
                                  converge=Convergence(rtol=1e-4, window=window, stop=True)))
    return out


def _ratio_compute(data: Data) -> None:
    """One row per (r, L): L_DNC, the three SRG constructions (spec = `ratio`, balanced, relaxed) and the
    final loss of gradient descent from the SRG solution (mean, std, runs, converged) where trained."""
    import pandas as pd

    from deepcollapse.theory.srg import srg_ratio_table

    s = data.params
    t = pd.DataFrame(srg_ratio_table(s["r"], s["L"], s["lam"], s["n"], "spec"))
    for v in ("balanced", "relaxed"):
        tv = pd.DataFrame(srg_ratio_table(s["r"], s["L"], s["lam"], s["n"], v))
        t[f"loss_srg_{v}"] = tv["loss_srg"].astype(float).to_numpy()
        t[f"ratio_{v}"] = tv["ratio"].astype(float).to_numpy()
    t["zero_solution"] = (t["loss_dnc"] >= ZERO_LOSS - 1e-9) | (t["loss_srg"] >= ZERO_LOSS - 1e-9)
    gd = []
    if data.points is not None:
        ok = C.alive(data.points)
        for (K, L), g in ok.groupby(["K", "L"]):
            gd.append({"K": int(K), "L": int(L), "gd_mean": g["loss"].mean(), "gd_std": g["loss"].std(ddof=0),
                       "gd_runs": len(g), "gd_converged": int(C.converged_mask(g).sum())})
    gd = pd.DataFrame(gd, columns=["K", "L", "gd_mean", "gd_std", "gd_runs", "gd_converged"])
    t = t.merge(gd, on=["K", "L"], how="left")
    t["ratio_gd"] = t["gd_mean"] / t["loss_dnc"]
    t["ratio_gd_std"] = t["gd_std"] / t["loss_dnc"]
    data.table = t


def _ratio_l3_line(t) -> str:
    """Which curve goes below 1 at L = 3 and by how much (issue 12, item 4)."""
    t3 = t[t["L"] == 3]
    parts = []
    for col, name in (("ratio", "SPEC construction"), ("ratio_balanced", "balanced variant"),
                      ("ratio_relaxed", "relaxed variant"), ("ratio_gd", "gradient descent from SRG")):
        v = t3[["r", col]].dropna()
        if v.empty:
            continue
        below = v[v[col] < 1]
        if below.empty:
            parts.append(f"{name}: never below 1 (min {C.fmt(v[col].min())} at r = {int(v.loc[v[col].idxmin(), 'r'])})")
        else:
            best = below.loc[below[col].idxmin()]
            parts.append(f"{name}: below 1 for r = {', '.join(str(int(x)) for x in below['r'])}, lowest "
                         f"{C.fmt(best[col])} at r = {int(best['r'])} ({C.fmt(100 * (1 - best[col]), 3)}% below L_DNC)")
    return "At L = 3: " + "; ".join(parts) + "."


def _ratio_summary(data: Data) -> str:
    t = data.table
    s = data.params
    cols = ["r", "K", "L", "loss_dnc", "ratio", "ratio_balanced", "ratio_relaxed", "ratio_gd", "ratio_gd_std",
            "gd_runs", "gd_converged"]
    zero = int(t["zero_solution"].sum())
    return (f"Loss / L_DNC vs r (K = C(r, 2)), lam = {s['lam']} on every factor, n = {s['n']}: the SPEC construction "
            "(`ratio`, SPEC.md / the paper's Fig. 1), the balanced and relaxed variants (`theory.srg`), closed forms; "
            f"and the final loss of gradient descent started at the SRG solution plus N(0, {s['gd_noise']}^2) noise "
            "(`ratio_gd`: mean and 1 std over the runs, width K, lr 0.5), for r in "
            f"{s['gd_r']}. {zero} of {len(t)} rows have a loss at the zero solution (1/2).\n\n"
            + C.md_table(t.to_dict("records"), cols)
            + f"\nThe SPEC construction beats DNC (ratio < 1) in {int((t['ratio'] < 1).sum())}/{len(t)} cases, never at "
              "L = 3 (it beats DNC iff 2^(L-3) r / (r-1)^(L-2) < 1). " + _ratio_l3_line(t)
            + "\n\nThe paper: the ratio falls below 1 and decreases with r and L, L = 3 among the curves below 1, "
              "'averaged over 5 runs' with confidence intervals (trained runs).\n\n"
            + ("\n".join(C.convergence_lines(data)) + "\n" if data.points is not None else ""))


@register("sukenik-fig3-ratio", paper=PAPER, figure="Fig. 3 (left)",
          description="Loss / L_DNC vs r (K = C(r,2)) for L = 3, 4, 5: the SPEC SRG construction, its balanced and "
                      "relaxed variants (closed forms) and gradient descent started at the SRG solution (5 runs).",
          configs=_ratio_configs, compute=_ratio_compute, summarize=_ratio_summary, params=_ratio_params,
          choices="lam = 0.002 on every factor and n = 1, so that neither L_DNC nor L_SRG is the zero solution "
                  "(loss 1/2) up to r = 10, L = 5 (at lam 0.004, n = 5 L_DNC is 1/2 from r = 10); the SRG "
                  "construction of SPEC.md, its balanced and relaxed variants; gradient descent from the SRG "
                  "solution plus N(0, 0.01^2) noise, width K, lr 0.5, 5 runs, stopped at a relative loss change "
                  "below 1e-4 over 2000 steps (cap 10000 steps quick, 40000 full), r = 4, 6, 8, 10 at quick size.",
          est_seconds={"smoke": 10, "quick": 500, "full": 1800})
def _ratio_plot(out_dir, data: Data):
    plt = C.plt()
    t = data.table
    Ls = sorted(t["L"].unique())
    fig, axes = plt.subplots(1, len(Ls), figsize=(4.6 * len(Ls), 3.8), squeeze=False, sharey=True)
    for ax, L in zip(axes[0], Ls):
        g = t[t["L"] == L].sort_values("r")
        ax.plot(g["r"], g["ratio"], "o-", label="SRG (SPEC construction)")
        ax.plot(g["r"], g["ratio_balanced"], "s--", mfc="none", label="SRG balanced")
        ax.plot(g["r"], g["ratio_relaxed"], "^:", label="SRG relaxed")
        gd = g.dropna(subset=["ratio_gd"])
        if not gd.empty:
            ax.errorbar(gd["r"], gd["ratio_gd"], yerr=gd["ratio_gd_std"], fmt="kx-", capsize=3,
                        label=f"GD from SRG ({int(gd['gd_runs'].max())} runs, mean, 1 std; "
                              f"{int(gd['gd_converged'].sum())}/{int(gd['gd_runs'].sum())} converged)")
        ax.axhline(1.0, color="gray", ls="--", lw=0.8)
        ax.set_xlabel("r  (K = r(r-1)/2)")
        ax.set_title(f"L = {L}", fontsize=10)
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel(r"loss / $L_{DNC}$")
    s = data.params
    fig.suptitle(f"lam = {s['lam']}, n = {s['n']}; below 1: beats DNC", fontsize=9)
    return C.save_figure(fig, out_dir, data.name)


# ------------------------------------------------------------------------------------------------
# Fig. 3 middle: rank vs weight decay
# ------------------------------------------------------------------------------------------------

def _wd_exponents(size: str) -> list[int]:
    return {"full": list(range(-12, -5)), "quick": [-12, -10, -9, -8, -7, -6], "smoke": [-9, -7]}[size]


def _wd_configs(size: str) -> list[DUFMConfig]:
    seeds = 2 if size == "smoke" else 5
    return [DUFMConfig(**_base(size, lam_H=2.0**e, lam_W=2.0**e, seeds=seeds)) for e in _wd_exponents(size)]


def _avg_rank(points, L: int):
    cols = [f"rank_H{l}" for l in range(1, L)]
    return points[cols].mean(axis=1)


def _wd_table(data: Data) -> None:
    p = data.points.copy()
    p["log2_lam"] = np.log2(p["lam_H"].astype(float))
    p["avg_rank"] = _avg_rank(p, data.configs[0].L)
    data.table = p


def _wd_summary(data: Data) -> str:
    p = C.alive(data.table)
    L = data.configs[0].L
    rows = []
    for e, g in p.groupby("log2_lam"):
        row = {"log2 lam": f"{e:.0f}", "avg rank": g["avg_rank"].mean(), "std": g["avg_rank"].std(),
               "P(DNC)": C.proportion(int(g["found_dnc"].astype(bool).sum()), len(g)), "mean loss": g["loss"].mean(),
               "converged": f"{int(C.converged_mask(g).sum())}/{len(g)}"}
        for l in range(1, L + 1):
            row[f"H{l}"] = g[f"rank_H{l}"].mean()
        rows.append(row)
    return (f"Average class-mean rank over H1..H{L - 1} at convergence vs weight decay "
            f"({len(p)} non-diverged runs of {len(data.table)}).\n\n" + C.md_table(rows)
            + "\nThe paper: the rank decreases as the weight decay grows (low-rank bias).\n\n"
            + "\n".join(C.convergence_lines(data)) + "\n")


@register("sukenik-fig3-rank-vs-wd", paper=PAPER, figure="Fig. 3 (middle)",
          description="Average class-mean rank at convergence vs weight decay lam = 2^e (L=4, K=10, 5 seeds).",
          configs=_wd_configs, compute=_wd_table, summarize=_wd_summary,
          choices=DUFM_CHOICES + " K = 10 (the main-text caption; an appendix version says K = 15); lam = 2^e, "
                  "e = -12..-6; the 'average rank' is the mean over H1..H(L-1) of the class-mean rank (the layers "
                  "the SRG solution makes rank r < K), averaged over seeds.",
          est_seconds={"smoke": 10, "quick": 25, "full": 45})
def _wd_plot(out_dir, data: Data):
    plt = C.plt()
    p = C.alive(data.table)
    L = data.configs[0].L
    fig, ax = plt.subplots(figsize=(5, 3.8))
    g = p.groupby("log2_lam")["avg_rank"]
    x, m, s = g.mean().index.to_numpy(), g.mean().to_numpy(), g.std().fillna(0).to_numpy()
    ax.plot(x, m, "o-", color="C0", label=f"mean over H1..H{L - 1}")
    ax.fill_between(x, m - s, m + s, color="C0", alpha=0.25, lw=0)
    for l in range(1, L + 1):
        gl = p.groupby("log2_lam")[f"rank_H{l}"].mean()
        ax.plot(gl.index, gl.to_numpy(), ls=":", lw=1, label=f"H{l}")
    ax.axhline(data.configs[0].K, color="gray", ls="--", lw=0.8, label="K (DNC)")
    ax.set_xlabel(r"$\log_2 \lambda$")
    ax.set_ylabel("rank of class means")
    ax.set_title(f"class-mean rank vs weight decay ({len(p)} seeds, mean and 1 std)", fontsize=9)
    ax.legend(fontsize=7)
    return C.save_figure(fig, out_dir, data.name)


# ------------------------------------------------------------------------------------------------
# Fig. 3 right: P(DNC) vs width
# ------------------------------------------------------------------------------------------------

def _widths(size: str) -> list[int]:
    return {"full": [10, 15, 20, 30, 40, 60, 100], "quick": [10, 20, 30, 40, 60, 100], "smoke": [10]}[size]


def width_init(width: int) -> float:
    """Init std of the width sweep: 0.3 up to width 30, then 0.3 sqrt(30/width) (the forward gain per
    layer stays that of width 30; a fixed 0.3 diverges at width 60)."""
    return float(min(INIT, INIT * np.sqrt(30.0 / width)))


def _pdnc_configs(size: str) -> list[DUFMConfig]:
    return [DUFMConfig(**_base(size, width=w, init_scale=width_init(w))) for w in _widths(size)]


def _pdnc_table(data: Data) -> None:
    data.table = data.points


def _pdnc_rows(points):
    rows = []
    for w, g in points.groupby("width"):
        ok = C.alive(g)
        k = int(ok["found_dnc"].astype(bool).sum())
        lo, hi = C.wilson_interval(k, len(ok))
        rows.append({"width": int(w), "init": float(g["init_scale"].iloc[0]), "runs": len(g),
                     "diverged": len(g) - len(ok), "found DNC": k, "P(DNC)": k / len(ok) if len(ok) else float("nan"),
                     "95% CI lo": lo, "95% CI hi": hi, "mean loss": ok["loss"].mean(),
                     "mean rank H2": ok["rank_H2"].mean() if "rank_H2" in ok else float("nan"),
                     "converged": f"{int(C.converged_mask(ok).sum())}/{len(ok)}"})
    return rows


def _pdnc_summary(data: Data) -> str:
    return ("Empirical probability of finding DNC vs width (L=4, K=10), with 95% Wilson intervals. The init std "
            "shrinks as 0.3 sqrt(30/width) above width 30, so width and init scale change together; "
            "`dufm-init-map` holds the width sweep at a fixed init next to this one.\n\n"
            + C.md_table(_pdnc_rows(data.table))
            + "\nThe paper: P(DNC) grows with the width.\n\n" + "\n".join(C.convergence_lines(data)) + "\n")


@register("sukenik-fig3-pdnc-vs-width", paper=PAPER, figure="Fig. 3 (right)",
          description="Empirical probability of finding DNC vs width (L=4, K=10, 10 seeds per width).",
          configs=_pdnc_configs, compute=_pdnc_table, summarize=_pdnc_summary,
          choices=DUFM_CHOICES + " Widths 10..100; the init std shrinks as 0.3 sqrt(30/width) above width 30 "
                  "(a fixed 0.3 diverges at width 60), so width and init scale change together; 10 seeds per "
                  "width (the paper: 5) so that P(DNC) moves in steps of 0.1.",
          est_seconds={"smoke": 10, "quick": 120, "full": 220})
def _pdnc_plot(out_dir, data: Data):
    plt = C.plt()
    rows = _pdnc_rows(data.table)
    fig, ax = plt.subplots(figsize=(5, 3.8))
    C.wilson_errorbar(ax, [r["width"] for r in rows], [r["found DNC"] for r in rows],
                      [r["runs"] - r["diverged"] for r in rows])
    ax.set_xlabel("width (init std 0.3 sqrt(30/width) above 30)")
    ax.set_ylabel("P(found DNC), 95% Wilson interval")
    ax.set_title(f"{rows[0]['runs']} seeds per width; init scaled with width (see dufm-init-map)", fontsize=8)
    ax.set_ylim(-0.05, 1.05)
    return C.save_figure(fig, out_dir, data.name)


# ------------------------------------------------------------------------------------------------
# Fig. 5: K = 3, 4, 5
# ------------------------------------------------------------------------------------------------

FIG5_LAM = 0.015  # not stated in the paper (choices below; docs/findings.md)
FIG5_INIT = {3: 0.13, 4: 0.15, 5: 0.165}  # per K: just above the escape-from-zero scale
FIG5_STEPS = 40000  # quick and full (the near-threshold init escapes Z = 0 slowly)


def _fig5_Ks(size: str) -> list[int]:
    return [3] if size == "smoke" else [3, 4, 5]


def _fig5_seeds(size: str) -> int:
    return 2 if size == "smoke" else 10


def _fig5_steps(size: str) -> int:
    return _steps(size)[0] if size == "smoke" else FIG5_STEPS


def _fig5_configs(size: str) -> list[DUFMConfig]:
    return [DUFMConfig(**_base(size, K=K, lam_H=FIG5_LAM, lam_W=FIG5_LAM, init_scale=FIG5_INIT[K],
                               steps=_fig5_steps(size), seeds=_fig5_seeds(size))) for K in _fig5_Ks(size)]


def _best_lanes(data: Data, by: str = "K") -> dict:
    """For every value of `by`: (cfg, points row) of the non-diverged lane with the lowest final loss."""
    by_id = {c.run_id(): c for c in data.configs}
    out = {}
    ok = C.alive(data.points)
    for v, g in ok.groupby(by):
        row = g.sort_values("loss").iloc[0]
        out[v] = (by_id[row["run_id"]], row)
    return out


def _fig5_compute(data: Data) -> None:
    data.table = data.points
    mats = {}
    for K, (cfg, row) in _best_lanes(data).items():
        m = final_class_means(C.lane_params(data, row["run_id"], row["lane"]), cfg)
        th = _theory_losses(cfg)
        mats[K] = {"M3": m["H3"], "M4": m["Z3"], "row": row, "theory": th}
    data.extra["best"] = mats


def _fig5_summary(data: Data) -> str:
    rows = []
    ok = C.alive(data.points)
    for K, b in data.extra["best"].items():
        r = b["row"]
        g = ok[ok["K"] == K]
        below = g["loss"] < b["theory"]["L_DNC"]
        low = below & (g["rank_H3"] < K)
        conv = C.converged_mask(g)
        rows.append({"K": str(K), "seed": str(int(r["seed"])), "loss": r["loss"], "fit": r["fit"], "reg": r["reg"],
                     "L_DNC": b["theory"]["L_DNC"], "L_SRG": b["theory"]["L_SRG"],
                     "rank M3": str(_rank(b["M3"])), "rank M4": str(_rank(b["M4"])),
                     "found DNC": str(bool(r["found_dnc"])),
                     "best converged": str(bool(r.get("converged") or False)),
                     "seeds < L_DNC": f"{int(below.sum())}/{len(g)}",
                     "of them rank M3 < K": f"{int(low.sum())}/{len(g)}",
                     "converged of those": f"{int((low & conv).sum())}/{int(low.sum())}"})
    inits = ", ".join(f"{k}: {v}" for k, v in FIG5_INIT.items())
    return ("4-DUFM with few classes, best of the seeds for each K (all seeds counted in the last columns). "
            f"Tuned init std per K ({inits}): at 0.2-0.3 every seed ends at DNC; `dufm-init-map` maps "
            "P(loss < L_DNC) over init scale x lam.\n\n"
            + C.md_table(rows)
            + "\nThe paper: low-rank solutions beat DNC already for K = 3, 4, 5.\n\n"
            + "\n".join(C.convergence_lines(data)) + "\n")


@register("sukenik-fig5", paper=PAPER, figure="Fig. 5",
          description="4-DUFM with K = 3, 4, 5 (lam 0.015, init 0.13-0.165, 10 seeds): loss split into fit "
                      "and regularisation; M3, M4, M3^T M3.",
          configs=_fig5_configs, compute=_fig5_compute, summarize=_fig5_summary,
          choices=DUFM_CHOICES + " Fig. 5 states no lam: lam = 0.015 on every factor, init std 0.13 / 0.15 / "
                  "0.165 for K = 3 / 4 / 5 (just above the scale below which a run stays at Z = 0; at 0.2-0.3 "
                  "every seed ends at DNC, docs/findings.md), 40000 steps at quick and full size, 10 seeds; the "
                  "figure shows the seed with the lowest final loss; M4 = class means of W3 H3 (before the ReLU).",
          est_seconds={"smoke": 10, "quick": 45, "full": 45})
def _fig5_plot(out_dir, data: Data):
    plt = C.plt()
    best = data.extra["best"]
    h = _loss_key(data.histories)
    fig, axes = plt.subplots(len(best), 5, figsize=(20, 3.3 * len(best)), squeeze=False)
    for i, (K, b) in enumerate(best.items()):
        row = b["row"]
        n_seeds = int((data.points["K"] == K).sum())
        hh = h[(h["run_id"] == row["run_id"]) & (h["lane"] == row["lane"]) & (h["layer"] == "")]
        g = hh[hh["metric"] == "loss"].sort_values("step")
        C.loss_gap_panel(axes[i, 0], g["step"].to_numpy(), g["value"].to_numpy()[None, :], b["theory"]["L_DNC"],
                         "L_DNC", {"L_SRG": b["theory"]["L_SRG"]}, label=f"best seed ({int(row['seed'])})")
        axes[i, 0].set_title(f"K = {K}, init {FIG5_INIT[K]} (tuned): best of {n_seeds} seeds", fontsize=9)
        for metric in ("fit", "reg"):
            g = hh[hh["metric"] == metric].sort_values("step")
            axes[i, 1].plot(g["step"], g["value"], label=metric)
        axes[i, 1].set_yscale("log")
        axes[i, 1].set_xlabel("step")
        axes[i, 1].set_ylabel("loss term")
        axes[i, 1].set_title(f"K = {K}: fit and regularisation (best seed)", fontsize=9)
        axes[i, 1].legend(fontsize=7)
        C.heatmap(axes[i, 2], C.nonzero_rows(b["M3"]), "M3 (non-zero rows)")
        C.heatmap(axes[i, 3], C.nonzero_rows(b["M4"]), "M4 before ReLU (non-zero rows)", symmetric=True)
        C.heatmap(axes[i, 4], b["M3"].T @ b["M3"], r"$M_3^T M_3$")
        for ax in axes[i, 2:]:
            ax.set_xlabel("class")
            ax.set_ylabel("class" if ax is axes[i, 4] else "neuron")
    fig.suptitle("Init scale tuned per K (at 0.2-0.3 every seed ends at DNC; map: dufm-init-map)", fontsize=10)
    return C.save_figure(fig, out_dir, data.name)


# ------------------------------------------------------------------------------------------------
# Fig. 6: K = 15, L = 7
# ------------------------------------------------------------------------------------------------

def _fig6_configs(size: str) -> list[DUFMConfig]:
    return [DUFMConfig(**_base(size, K=15, L=7, init_scale=0.2, seeds=2 if size == "smoke" else 3))]


def _fig6_compute(data: Data) -> None:
    data.table = data.points
    (cfg, row), = _best_lanes(data).values()
    params = C.lane_params(data, row["run_id"], row["lane"])
    m = final_class_means(params, cfg)
    Hs, Zs = final_features(params, cfg)
    data.extra.update(row=row, M2=m["H2"], M6=m["H6"], n_seeds=len(data.points),
                      sv_M2=np.linalg.svd(m["H2"], compute_uv=False),
                      sv_pre=np.linalg.svd(np.asarray(Zs[4]), compute_uv=False),
                      sv_post=np.linalg.svd(np.asarray(Hs[5]), compute_uv=False),
                      theory=_theory_losses(cfg))


def _fig6_summary(data: Data) -> str:
    e = data.extra
    r = e["row"]
    return (f"K = 15, L = 7, best of the seeds (seed {int(r['seed'])}): loss {C.fmt(r['loss'])} vs "
            f"L_DNC {C.fmt(e['theory']['L_DNC'])}, L_SRG (r = 6) {C.fmt(e['theory']['L_SRG'])}; found DNC: "
            f"{bool(r['found_dnc'])}.\n\n"
            f"- numerical ranks (rtol 1e-3): M2 {_rank(e['sv_M2'])}, H6 before ReLU {_rank(e['sv_pre'])}, "
            f"after ReLU {_rank(e['sv_post'])}\n"
            "\nThe paper (Fig. 6 caption): the class means of intermediate layers are low rank at K = 15, L = 7; "
            "it shows the singular values of M2 and of H6 before and after the ReLU.\n\n"
            + "\n".join([C.below_line(data.points, e["theory"]["L_DNC"], "L_DNC"),
                          C.below_line(data.points, e["theory"]["L_SRG"], "L_SRG"), *C.convergence_lines(data)])
            + "\n")


@register("sukenik-fig6", paper=PAPER, figure="Fig. 6",
          description="DUFM with K = 15, L = 7: singular values of M2 and of H6 before/after ReLU; M2, M6, M6^T M6.",
          configs=_fig6_configs, compute=_fig6_compute, summarize=_fig6_summary,
          choices=DUFM_CHOICES + " Init std 0.2 (0.3 diverges at L = 7); the best of 3 seeds is shown; 'H6 before "
                  "ReLU' is Z5 = W5 H5, after ReLU H6 (all N columns, not class means).",
          est_seconds={"smoke": 10, "quick": 15, "full": 20})
def _fig6_plot(out_dir, data: Data):
    plt = C.plt()
    e = data.extra
    fig, axes = plt.subplots(2, 4, figsize=(16, 6.5))
    axes[0, 0].semilogy(np.arange(1, len(e["sv_M2"]) + 1), np.clip(e["sv_M2"], 1e-12, None), "o-")
    axes[0, 0].set_title("singular values of M2")
    for ax in (axes[0, 0], axes[1, 0], axes[1, 1]):
        ax.set_xlabel("index")
        ax.set_ylabel("singular value")
    C.heatmap(axes[0, 1], C.nonzero_rows(e["M2"]), "M2 (non-zero rows)")
    C.heatmap(axes[0, 2], C.nonzero_rows(e["M6"]), "M6 (non-zero rows)")
    C.heatmap(axes[0, 3], e["M6"].T @ e["M6"], r"$M_6^T M_6$")
    axes[1, 0].semilogy(np.arange(1, len(e["sv_pre"]) + 1), np.clip(e["sv_pre"], 1e-12, None), "o-")
    axes[1, 0].set_title("singular values of H6 before ReLU")
    axes[1, 1].semilogy(np.arange(1, len(e["sv_post"]) + 1), np.clip(e["sv_post"], 1e-12, None), "o-")
    axes[1, 1].set_title("singular values of H6 = ReLU(.)")
    for ax in axes[0, 1:]:
        ax.set_xlabel("class")
        ax.set_ylabel("class" if ax is axes[0, 3] else "neuron")
    r = e["row"]
    h = _loss_key(data.histories)
    g = h[(h["run_id"] == r["run_id"]) & (h["lane"] == r["lane"]) & (h["layer"] == "") & (h["metric"] == "loss")]
    g = g.sort_values("step")
    C.loss_gap_panel(axes[1, 2], g["step"].to_numpy(), g["value"].to_numpy()[None, :], e["theory"]["L_DNC"], "L_DNC",
                     {"L_SRG": e["theory"]["L_SRG"]}, label=f"best seed ({int(r['seed'])})")
    axes[1, 2].set_title("loss - L_DNC (best seed)", fontsize=9)
    axes[1, 3].axis("off")
    fig.suptitle(f"K = 15, L = 7, init 0.2: best of {e['n_seeds']} seeds (seed {int(r['seed'])}) shown", fontsize=10)
    return C.save_figure(fig, out_dir, data.name)
