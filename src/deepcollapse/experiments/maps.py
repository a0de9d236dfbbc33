"""Where the DUFM results depend on the initialisation scale and the learning rate (issue 12, item 2).

Several figures reproduce a paper's below-DNC result only at a tuned init std (sukenik-fig5: 0.13 /
0.15 / 0.165 for K = 3 / 4 / 5; garrod-fig6: 0.07) or change the init with the width
(sukenik-fig3-pdnc-vs-width). `dufm-init-map` maps, over init std x lam (and lr), the probability that
a run ends below L_DNC, the probability that it finds DNC (`metrics.dnc_verdict`) and the mean
class-mean rank, for

  - "few classes": Súkeník et al.'s Fig. 5 setting (MSE, ReLU, L = 4, width 30, n = 5, lr 0.5),
    K = 3, 4, 5, init x lam;
  - "K = 10": the Fig. 2 setting (K = 10, L = 4), init x lr at lam 0.004;
  - "CE ReLU": Garrod & Keating's Fig. 6 model (CE, ReLU, L = 3, width 70, lam 2^-9), init only;
  - "width": P(DNC) vs width at fixed init 0.2 and 0.3 next to the scaled init of
    sukenik-fig3-pdnc-vs-width (0.3 sqrt(30/width) above width 30).

Every probability carries its 95% Wilson interval; the summary says per cell how many runs converged
(`config.Convergence`, the default criterion: relative loss change <= 1e-4 over a tenth of the steps).
"""

from __future__ import annotations

import numpy as np

from deepcollapse.config import DUFMConfig
from deepcollapse.experiments import common as C
from deepcollapse.experiments.registry import Data, register
from deepcollapse.experiments.sukenik import FIG5_INIT, width_init

NAME = "dufm-init-map"


def _grid(size: str) -> dict:
    """Axes and budgets of each block at a size."""
    if size == "smoke":
        return {"Ks": [3], "few_init": [0.13, 0.3], "few_lam": [0.015], "k10_init": [0.3], "k10_lr": [0.5],
                "ce_init": [0.07], "widths": [30], "width_inits": [0.3], "seeds": 2,
                "steps": {"few": 20, "k10": 20, "ce": 20, "width": 20}, "log_every": 10}
    full = size == "full"
    return {"Ks": [3, 4, 5],
            "few_init": [0.1, 0.13, 0.15, 0.165, 0.2, 0.25, 0.3] if full else [0.13, 0.165, 0.2, 0.3],
            "few_lam": [0.004, 0.008, 0.015, 0.03] if full else [0.004, 0.015],
            "k10_init": [0.1, 0.15, 0.2, 0.3] if full else [0.1, 0.2, 0.3],
            "k10_lr": [0.1, 0.25, 0.5] if full else [0.25, 0.5],
            "ce_init": [0.05, 0.06, 0.07, 0.1, 0.15, 0.2] if full else [0.05, 0.07, 0.1, 0.15],
            "widths": [10, 20, 30, 40, 60, 100] if full else [10, 30, 60, 100],
            "width_inits": [0.2, 0.3],
            "seeds": 10 if full else 3,
            "steps": ({"few": 40000, "k10": 30000, "ce": 60000, "width": 30000} if full else
                      {"few": 30000, "k10": 20000, "ce": 30000, "width": 20000}),
            "log_every": 500}


def _mse(size: str, **kw) -> dict:
    g = _grid(size)
    d = {"K": 10, "n": 5, "L": 4, "width": 30, "activation": "relu", "loss": "mse", "lam_H": 0.004,
         "lam_W": 0.004, "lr": 0.5, "seeds": g["seeds"], "log_every": g["log_every"]}
    d.update(kw)
    return d


def _configs(size: str) -> list[DUFMConfig]:
    g = _grid(size)
    st = g["steps"]
    out = []
    for K in g["Ks"]:  # init and lam are lane fields: one program per K
        out += [DUFMConfig(**_mse(size, K=K, init_scale=i, lam_H=lam, lam_W=lam, steps=st["few"]))
                for i in g["few_init"] for lam in g["few_lam"]]
    out += [DUFMConfig(**_mse(size, init_scale=i, lr=lr, steps=st["k10"])) for i in g["k10_init"] for lr in g["k10_lr"]]
    ce = {"K": 10, "n": 5, "L": 3, "width": 70, "activation": "relu", "loss": "ce", "lam_H": 2.0**-9,
          "lam_W": 2.0**-9, "lr": 0.5, "seeds": g["seeds"], "log_every": g["log_every"], "steps": st["ce"]}
    out += [DUFMConfig(**ce, init_scale=i) for i in g["ce_init"]]
    for w in g["widths"]:
        inits = sorted({*g["width_inits"], width_init(w)})
        out += [DUFMConfig(**_mse(size, width=w, init_scale=i, steps=st["width"])) for i in inits]
    seen = {}
    for c in out:
        seen.setdefault(c.run_id(), c)
    return list(seen.values())


def _blocks(p, g: dict):
    """The points with a `block` column; a point in two blocks (K = 10, width 30 runs of the lr map
    and of the width sweep, when their budgets agree) appears once in each."""
    import pandas as pd

    mse, K, width, steps = p["loss_fn"] == "mse", p["K"].astype(int), p["width"].astype(int), p["steps"].astype(int)
    init, lr = p["init_scale"].astype(float), p["lr"].astype(float)
    st = g["steps"]
    masks = {
        "few": mse & (K < 10),
        "k10": mse & (K == 10) & (width == 30) & (steps == st["k10"]) & init.isin(g["k10_init"]) & lr.isin(g["k10_lr"]),
        "ce": p["loss_fn"] == "ce",
        "width": mse & (K == 10) & (steps == st["width"]) & (lr == 0.5)
                 & (init.isin(g["width_inits"]) | np.isclose(init, [width_init(w) for w in width])),
    }
    return pd.concat([p[m].assign(block=b) for b, m in masks.items()], ignore_index=True)


def _compute(data: Data) -> None:
    """Per (block, K, width, init, lam, lr): counts and probabilities over the non-diverged seeds."""
    import pandas as pd

    g = _grid(data.size)
    p = data.points.copy()
    p["mean_rank"] = [np.nanmean([r[f"rank_H{l}"] for l in range(1, int(r["L"]))]) for _, r in p.iterrows()]
    p["below"] = (p["loss"] < p["loss_dnc"].astype(float)).astype(float)
    p["dnc"] = p["found_dnc"].fillna(False).astype(bool).astype(float)
    p["conv"] = C.converged_mask(p).astype(float)
    p = _blocks(p, g)
    keys = ["block", "K", "width", "init_scale", "lam_H", "lr"]
    rows = []
    for k, grp in p.groupby(keys):
        ok = C.alive(grp)
        n = len(ok)
        row = dict(zip(keys, k))
        row.update(runs=len(grp), diverged=len(grp) - n, converged=int(ok["conv"].sum()),
                   below=int(ok["below"].sum()), dnc=int(ok["dnc"].sum()),
                   p_below=ok["below"].mean() if n else np.nan, p_dnc=ok["dnc"].mean() if n else np.nan,
                   mean_rank=ok["mean_rank"].mean() if n else np.nan, mean_loss=ok["loss"].mean() if n else np.nan,
                   loss_dnc=float(grp["loss_dnc"].astype(float).iloc[0]))
        lo, hi = C.wilson_interval(row["below"], n) if n else (np.nan, np.nan)
        row.update(p_below_lo=lo, p_below_hi=hi)
        lo, hi = C.wilson_interval(row["dnc"], n) if n else (np.nan, np.nan)
        row.update(p_dnc_lo=lo, p_dnc_hi=hi)
        row["init_rule"] = ("scaled" if row["block"] == "width" and np.isclose(row["init_scale"], width_init(row["width"]))
                            and row["init_scale"] not in g["width_inits"] else "fixed")
        rows.append(row)
    data.table = pd.DataFrame(rows)
    data.extra["points"] = p


def _cell(r) -> str:
    return (f"{r['below']}/{r['runs'] - r['diverged']} below, {r['dnc']} DNC, rank {C.fmt(r['mean_rank'], 3)}, "
            f"conv {r['converged']}" + (f", {r['diverged']} div." if r["diverged"] else ""))


def _grid_rows(g, label: str, column: str) -> list[dict]:
    """One table row per init std, one `_cell` per value of `column` (headed "label value")."""
    rows = []
    for init, gi in g.groupby("init_scale"):
        row = {"init": C.fmt(init)}
        for _, r in gi.iterrows():
            row[f"{label} {C.fmt(r[column])}"] = _cell(r)
        rows.append(row)
    return rows


def _summary(data: Data) -> str:
    t = data.table
    out = [("P(final loss < L_DNC), P(found DNC) and the mean class-mean rank of H1..H(L-1) over the init std, "
            "with 95% Wilson intervals in results.csv (p_below_lo/hi, p_dnc_lo/hi). Each cell: runs below L_DNC / "
            "non-diverged runs, runs that found DNC, mean rank, converged runs.\n")]
    few = t[t["block"] == "few"]
    for K, g in few.groupby("K"):
        rows = _grid_rows(g, "lam", "lam_H")
        out.append(f"\n**Few classes, K = {int(K)}** (L = 4, width 30, lr 0.5; sukenik-fig5 uses init "
                   f"{FIG5_INIT.get(int(K))}, lam 0.015):\n\n" + C.md_table(rows))
    k10 = t[t["block"] == "k10"]
    if len(k10):
        rows = _grid_rows(k10, "lr", "lr")
        out.append("\n**K = 10, L = 4** (width 30, lam 0.004; sukenik-fig2-dufm uses init 0.3, lr 0.5):\n\n"
                   + C.md_table(rows))
    ce = t[t["block"] == "ce"]
    if len(ce):
        rows = [{"init": C.fmt(r["init_scale"]), "cell": _cell(r), "mean loss": r["mean_loss"],
                 "DNC bound": r["loss_dnc"]} for _, r in ce.sort_values("init_scale").iterrows()]
        out.append("\n**CE ReLU, K = 10, L = 3** (width 70, lam 2^-9; garrod-fig6 uses init 0.07), 'below' = below "
                   "the linear DNC bound:\n\n" + C.md_table(rows))
    w = t[t["block"] == "width"]
    if len(w):
        rows = [{"width": str(int(r["width"])), "init": C.fmt(r["init_scale"], 3), "rule": r["init_rule"],
                 "P(DNC)": C.proportion(r["dnc"], r["runs"] - r["diverged"]), "diverged": str(r["diverged"]),
                 "cell": _cell(r)} for _, r in w.sort_values(["width", "init_scale"]).iterrows()]
        out.append("\n**Width sweep** (K = 10, L = 4, lam 0.004, lr 0.5) at fixed init next to the scaled init of "
                   "sukenik-fig3-pdnc-vs-width:\n\n" + C.md_table(rows))
    out.append("")
    out += C.convergence_lines(data)
    return "\n".join(out) + "\n"


def _heat(ax, t, x: str, y: str, value: str, title: str, vmax=1.0, fmt_cell=None):
    piv = t.pivot_table(index=y, columns=x, values=value, aggfunc="first")
    im = ax.imshow(piv.to_numpy(float), origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=vmax)
    ax.set_xticks(range(len(piv.columns)), [C.fmt(v, 3) for v in piv.columns], fontsize=7)
    ax.set_yticks(range(len(piv.index)), [C.fmt(v, 3) for v in piv.index], fontsize=7)
    for (i, j), v in np.ndenumerate(piv.to_numpy(float)):
        if np.isfinite(v):
            ax.text(j, i, fmt_cell(v) if fmt_cell else f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="w" if v < 0.6 * vmax else "k")
    ax.set_title(title, fontsize=8)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)


@register(NAME, paper="Súkeník et al. (2024); Garrod & Keating", figure="init-scale / lr map (ours)",
          description="P(loss < L_DNC), P(found DNC) and the mean class-mean rank over init std x lam (K = 3, 4, 5, "
                      "L = 4), init x lr (K = 10, L = 4), init (CE ReLU, L = 3), and P(DNC) vs width at fixed and "
                      "scaled init: where the tuned-init figures' results hold.",
          configs=_configs, compute=_compute, summarize=_summary,
          choices="Quick: init 0.13-0.3 x lam {0.004, 0.015} for K = 3, 4, 5 (30000 steps), init {0.1, 0.2, 0.3} x lr "
                  "{0.25, 0.5} at K = 10 (20000), CE ReLU init 0.05-0.15 (30000), widths 10-100 at init 0.2, 0.3 and "
                  "the scaled init (20000); 3 seeds per cell (10 full). The other settings are those of the figures "
                  "mapped (sukenik-fig5, sukenik-fig2-dufm, garrod-fig6, sukenik-fig3-pdnc-vs-width).",
          est_seconds={"smoke": 20, "quick": 420, "full": 3600})
def _plot(out_dir, data: Data):
    import pandas as pd

    plt = C.plt()
    t = data.table
    few = t[t["block"] == "few"]
    Ks = sorted(few["K"].unique())
    nrows = len(Ks) + 1
    fig, axes = plt.subplots(nrows, 3, figsize=(14, 3.2 * nrows), squeeze=False)
    seeds = int(t["runs"].max())
    for i, K in enumerate(Ks):
        g = few[few["K"] == K]
        _heat(axes[i, 0], g, "init_scale", "lam_H", "p_below", f"K = {int(K)}: P(loss < L_DNC), {seeds} seeds")
        _heat(axes[i, 1], g, "init_scale", "lam_H", "p_dnc", f"K = {int(K)}: P(found DNC)")
        _heat(axes[i, 2], g, "init_scale", "lam_H", "mean_rank", f"K = {int(K)}: mean rank H1..H3 (DNC: K)",
              vmax=float(K), fmt_cell=lambda v: f"{v:.1f}")
        for ax in axes[i]:
            ax.set_xlabel("init std")
            ax.set_ylabel("lam")
    k10 = t[t["block"] == "k10"]
    ax = axes[-1, 0]
    if len(k10):
        _heat(ax, k10, "init_scale", "lr", "p_below", "K = 10, L = 4, lam 0.004: P(loss < L_DNC)")
        ax.set_xlabel("init std")
        ax.set_ylabel("learning rate")
    ce = t[t["block"] == "ce"].sort_values("init_scale")
    ax = axes[-1, 1]
    if len(ce):
        n = ce["runs"] - ce["diverged"]
        C.wilson_errorbar(ax, ce["init_scale"], ce["below"], n, label="P(loss < DNC bound)")
        C.wilson_errorbar(ax, ce["init_scale"], ce["dnc"], n, fmt="s--", mfc="none", label="P(found DNC)")
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("init std")
        ax.set_ylabel("probability (95% Wilson)")
        ax.set_title("CE ReLU, K = 10, L = 3 (garrod-fig6: init 0.07)", fontsize=8)
        ax.legend(fontsize=7)
    w = t[t["block"] == "width"]
    ax = axes[-1, 2]
    if len(w):
        # the scaled init equals 0.3 up to width 30: those runs belong to both series
        same = w[(w["init_rule"] == "fixed") & np.isclose(w["init_scale"], [width_init(x) for x in w["width"]])]
        w = pd.concat([w, same.assign(init_rule="scaled")], ignore_index=True)
        for (rule, init), g in w.groupby(["init_rule", w["init_scale"].where(w["init_rule"] == "fixed", -1)]):
            g = g.sort_values("width")
            label = "scaled init 0.3 sqrt(30/w)" if rule == "scaled" else f"fixed init {C.fmt(init)}"
            C.wilson_errorbar(ax, g["width"], g["dnc"], g["runs"] - g["diverged"], label=label)
        ax.set_xscale("log")
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("width")
        ax.set_ylabel("P(found DNC) (95% Wilson)")
        ax.set_title("width sweep: fixed vs scaled init (K = 10, L = 4)", fontsize=8)
        ax.legend(fontsize=7)
    return C.save_figure(fig, out_dir, data.name)
