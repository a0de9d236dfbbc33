"""Zangrando, Deidda, Brugiapaglia, Guglielmi, Tudisco, "Provable Emergence of Deep Neural Collapse and
Low-Rank Bias in L2-Regularized Nonlinear Networks": Figures 1, 2, 3, 5.

These figures train an MLP on FIXED data (K Gaussian clusters, `deepcollapse.data.gaussian`): the
L-DUFM with H_1 = X given and not optimised, i.e. the engine with `DUFMConfig(data=GaussianData(...))`
run through `deepcollapse.sweep`. The engine logs what the figures plot: the loss, every layer's TCV
(`H{l}/tcv`, `H{l}/tcv_norm`) and every weight's distance to rank K and norm (`W{l}/dist_rank_K`,
`W{l}/norm`). One program holds one data matrix, so each sigma is its own program; lam and the
initialisation seeds are lanes of it. The reasons for the settings are each figure's `choices`.
"""

from __future__ import annotations

import numpy as np

from deepcollapse import metrics
from deepcollapse.engine import final_features, input_data
from deepcollapse.experiments import common as C
from deepcollapse.experiments.registry import Data, register

PAPER = ("Zangrando, Deidda, Brugiapaglia, Guglielmi, Tudisco, Provable Emergence of Deep Neural Collapse "
         "and Low-Rank Bias in L2-Regularized Nonlinear Networks")

K, N_PER_CLASS, DIM, WIDTH, L = 10, 10, 32, 32, 4


#: The choices of Figs. 1, 3, 5.
MLP_CHOICES = ("Data: K = 10 clusters in R^32, n = 10 per class, centres uniform on the unit sphere, within-class std "
               "sigma, data seed 0 (seeds vary the initialisation only). Network: L = 4 bias-free layers of width 32, "
               "ReLU, MSE fit 1/(2N)||Z - Y||^2, weight decay lam/2 ||W_l||^2 on every layer. Training: full-batch "
               "GD, lr 0.2, init N(0, 1/32), 20000 steps (quick 6000), logged every 500. Weight components outside "
               "the data's span decay like (1 - lr lam)^t, so the lam grid starts at 1e-3 (lr lam t = 4 at full "
               "size); at lam >= 3e-2 the network collapses to a near-zero output.")


def _steps(size: str) -> tuple[int, int]:
    """(steps, log_every) of a size."""
    return {"full": (20000, 500), "quick": (6000, 500), "smoke": (20, 10)}[size]


def mlp_config(size: str, lam: float, sigma: float, seeds, steps: int | None = None):
    """The MLP of Figs. 1, 3, 5 (module docstring) as an engine config on fixed Gaussian-cluster data."""
    from deepcollapse.config import DUFMConfig, GaussianData

    total, log_every = _steps(size)
    return DUFMConfig(K=K, n=N_PER_CLASS, L=L, width=WIDTH, activation="relu", loss="mse", lam_H=0.0,
                      lam_W=lam, init_scale=WIDTH**-0.5, lr=0.2, steps=total if steps is None else steps,
                      log_every=log_every, seeds=seeds, data=GaussianData(dim=DIM, sigma=sigma, seed=0))


def _last(data: Data, layer: str, metric: str) -> dict:
    """{(run_id, lane): final logged value} of one quantity."""
    h = data.histories
    h = h[(h["layer"].fillna("") == layer) & (h["metric"] == metric)]
    h = h.sort_values("step").groupby(["run_id", "lane"]).last()
    return {k: float(v) for k, v in h["value"].items()}


# ------------------------------------------------------------------------------------------------
# Fig. 1: distance of trained weights to rank K over (lam, sigma)
# ------------------------------------------------------------------------------------------------

def _fig1_grid(size: str):
    return {"full": ([1e-3, 2e-3, 3e-3, 5e-3, 1e-2], [0.0, 0.1, 0.2, 0.3, 0.5], 3),
            "quick": ([1e-3, 3e-3, 1e-2], [0.0, 0.1, 0.3, 0.5], 2),
            "smoke": ([1e-3, 1e-2], [0.0, 0.5], 1)}[size]


def _fig1_configs(size: str):
    lams, sigmas, seeds = _fig1_grid(size)
    return [mlp_config(size, lam, s, seeds) for s in sigmas for lam in lams]


def _fig1_compute(data: Data) -> None:
    import pandas as pd

    by_id = {c.run_id(): c for c in data.configs}
    loss = _last(data, "", "loss")
    rows = []
    for l in range(1, L + 1):
        dist = _last(data, f"W{l}", "dist_rank_K")
        tcv_in = _last(data, f"H{l}", "tcv_norm")  # TCV of W_l's input (H_1 = X: the data's)
        for (run_id, lane), v in dist.items():
            cfg = by_id[run_id]
            rows.append({"run_id": run_id, "lane": int(lane), "lam": cfg.lams_W[0], "sigma": cfg.data.sigma,
                         "seed": int(cfg.seed_list[int(lane)]), "layer": f"W{l}", "dist_rank_K": v,
                         "final_loss": loss[(run_id, lane)], "tcv_norm_input": tcv_in[(run_id, lane)]})
    data.table = pd.DataFrame(rows)


def _fig1_summary(data: Data) -> str:
    t = data.table
    m = t[t["layer"] != f"W{L}"].groupby(["lam", "sigma"])["dist_rank_K"].mean().reset_index()
    return ("Relative distance of the trained W_1..W_{L-1} to rank K = 10 (mean over layers and seeds).\n\n"
            + C.md_table(m.to_dict("records"), ["lam", "sigma", "dist_rank_K"])
            + "\nThe paper: the distance grows with the within-class spread sigma (TCV) and shrinks as lam grows.\n\n"
            + "\n".join(C.convergence_lines(data)) + "\n")


@register("zangrando-fig1", paper=PAPER, figure="Fig. 1",
          description="MLPs on K=10 Gaussian clusters (std sigma) trained with weight decay lam: distance of "
                      "each trained weight matrix to rank K over a (lam, sigma) grid (heat maps).",
          configs=_fig1_configs, compute=_fig1_compute, summarize=_fig1_summary,
          choices=MLP_CHOICES + " Grid lam in {1e-3, 2e-3, 3e-3, 5e-3, 1e-2} x sigma in {0, 0.1, 0.2, 0.3, 0.5}, 3 seeds "
                  "(quick: lam {1e-3, 3e-3, 1e-2}, sigma {0, 0.1, 0.3, 0.5}, 2 seeds); the heat map shows the seed "
                  "mean of the distance of W_1..W_(L-1) to rank K (W_L has K rows: distance 0).",
          est_seconds={"smoke": 10, "quick": 40, "full": 300})
def _fig1_plot(out_dir, data: Data):
    plt = C.plt()
    t = data.table
    layers = sorted(t["layer"].unique())[:-1] or sorted(t["layer"].unique())
    fig, axes = plt.subplots(1, len(layers), figsize=(4.2 * len(layers), 3.6), squeeze=False)
    for ax, layer in zip(axes[0], layers):
        m = t[t["layer"] == layer].pivot_table(index="lam", columns="sigma", values="dist_rank_K", aggfunc="mean")
        im = ax.imshow(m.to_numpy(), origin="lower", aspect="auto", cmap="magma")
        ax.set_xticks(range(len(m.columns)), [f"{v:g}" for v in m.columns])
        ax.set_yticks(range(len(m.index)), [f"{v:g}" for v in m.index])
        ax.set_xlabel(r"$\sigma$")
        ax.set_ylabel(r"$\lambda$")
        ax.set_title(f"{layer}: " + r"$\sum_{j>K}s_j^2/\sum_j s_j^2$", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return C.save_figure(fig, out_dir, data.name)


# ------------------------------------------------------------------------------------------------
# Fig. 2: singular values of trained weights vs the delta -> 0 prediction
# ------------------------------------------------------------------------------------------------

FIG2_DELTAS = (10.0, 2.0, 1.0, 0.1, 0.01)
FIG2_DATA = dict(dim=100, sigma=0.1, seed=0)  # d = 100 >= N = 50: the clusters can be interpolated
FIG2_ACTIVATIONS = ("linear", "relu")


def _fig2_configs(size: str):
    """One engine point (`DUFMConfig` with fixed data) per (activation, delta); lam_W = delta / N.

    J_delta = 1/2 sum_i ||f(x_i) - y_i||^2 + delta/2 sum_l ||W_l||^2 is the engine's loss (mean fit)
    times N with lam_W = delta / N (the paper's normalisation of the fit is not in our copy).
    init 0.1 and lr 0.3: smaller inits (0.03) leave some linear runs at delta = 0.1 on a rank-6 critical
    point; components of the weights outside the data's span decay like (1 - lr lam)^t, so delta = 0.01
    (lam = 2e-4) needs lr lam t of a few: 40000 steps (quick) leave them at ~0.1 of the kept values.
    """
    from deepcollapse.config import DUFMConfig, GaussianData

    steps, log_every, seeds = {"full": (80000, 2000, 5), "quick": (40000, 2000, 2), "smoke": (20, 10, 1)}[size]
    deltas = FIG2_DELTAS if size != "smoke" else (1.0, 0.01)
    n = 5
    return [DUFMConfig(K=K, n=n, L=4, width=32, activation=act, loss="mse", lam_H=0.0, lam_W=delta / (K * n),
                       init_scale=0.1, lr=0.3, steps=steps, log_every=log_every, seeds=seeds,
                       data=GaussianData(**FIG2_DATA))
            for act in FIG2_ACTIVATIONS for delta in deltas]


def _fig2_compute(data: Data) -> None:
    import pandas as pd

    from deepcollapse import dufm
    from deepcollapse.theory.interpolant import min_weight_norm, predicted_singular_values

    by_id = {c.run_id(): c for c in data.configs}
    cfg0 = data.configs[0]
    X, Y = input_data(cfg0), dufm.one_hot(cfg0.sizes)
    pred = predicted_singular_values(X, Y, cfg0.L)
    rows = []
    for _, pt in data.points.iterrows():
        cfg = by_id[pt["run_id"]]
        delta = cfg.lam_W * cfg.N
        params = C.lane_params(data, pt["run_id"], pt["lane"])
        for l, W in enumerate(params["W"], start=1):
            s = np.linalg.svd(np.asarray(W, np.float64), compute_uv=False)
            for i, v in enumerate(s):
                rows.append({"run_id": pt["run_id"], "lane": int(pt["lane"]), "activation": cfg.activation,
                             "delta": delta, "seed": int(pt["seed"]),
                             "layer": f"W{l}", "index": i + 1, "trained": float(v),
                             "predicted": float(pred[i]) if i < len(pred) else 0.0,
                             "final_loss": float(pt["loss"])})
    data.table = pd.DataFrame(rows)
    # J_delta / N of the exact minimum-norm interpolant (fit 0): what a run at delta can beat
    cost = min_weight_norm(X, Y, cfg0.L)  # the same X, Y and L for every config
    data.extra["interpolant_loss"] = {c.lam_W * c.N: c.lam_W / 2 * cost for c in data.configs}
    data.extra["pred"] = pred


def _fig2_rows(data: Data) -> list[dict]:
    t = data.table
    r = len(data.extra["pred"])
    rows = []
    order = {a: i for i, a in enumerate(FIG2_ACTIVATIONS)}
    keys = sorted(t.groupby(["activation", "delta"]).groups, key=lambda k: (order[k[0]], -k[1]))
    for act, delta in keys:
        g = t[(t["activation"] == act) & (t["delta"] == delta)]
        top = g[g["index"] <= r]
        rel = np.abs(top["trained"] - top["predicted"]) / top["predicted"]
        ranks = g.groupby(["seed", "layer"])["trained"].apply(  # numerical rank, rtol 1e-3; 0 for W ~ 0
            lambda s: int(metrics.numerical_rank(s.to_numpy())) if s.max() > 1e-12 else 0)
        rows.append({"activation": act, "delta": f"{delta:g}", "final loss (mean)": g.groupby("seed")["final_loss"].first().mean(),
                     "interpolant J/N": data.extra["interpolant_loss"][delta],
                     "max rel. error top K": float(rel.max()), "mean rel. error top K": float(rel.mean()),
                     "rank of W_l (min-max)": f"{ranks.min()}-{ranks.max()}"})
    return rows


def _fig2_summary(data: Data) -> str:
    pred = data.extra["pred"]
    return ("Singular values of the trained W_1..W_4 against the delta -> 0 prediction s_i(Y X^+)^(1/L) "
            f"(predicted: {', '.join(C.fmt(v, 4) for v in pred)}), every seed and layer; relative errors over "
            "the top K values. 'interpolant J/N' is the loss (engine units) of the exact minimum-norm "
            "interpolating linear network at that delta.\n\n"
            + C.md_table(_fig2_rows(data))
            + "\nThe paper: the singular values converge to the predicted ones as delta -> 0. The prediction is "
              "exact for linear networks (theory.interpolant); ReLU runs may end at a lower loss with other "
              "singular values, which the table shows when they do.\n\n"
            + "\n".join(C.convergence_lines(data)) + "\n")


@register("zangrando-fig2", paper=PAPER, figure="Fig. 2",
          description="Singular values of trained MLP weights (linear and ReLU, K=10 Gaussian clusters) vs the "
                      "delta -> 0 prediction s_i(Y X^+)^(1/L), for delta = 1/lam in {10, 2, 1, 0.1, 0.01}.",
          configs=_fig2_configs, compute=_fig2_compute, summarize=_fig2_summary,
          choices="K = 10 clusters in R^100, n = 5 (d >= N, so the data can be interpolated), sigma 0.1, L = 4, width 32, "
                  "linear and ReLU, lam_W = delta / N (the fit summed over samples), init std 0.1, lr 0.3, 80000 steps "
                  "(quick 40000), 5 seeds (quick 2). The prediction is the delta -> 0 limit s_i(Y X^+)^(1/L), derived "
                  "in `theory.interpolant` (exact for linear networks; our copy of the paper does not state it).",
          est_seconds={"smoke": 10, "quick": 60, "full": 240})
def _fig2_plot(out_dir, data: Data):
    plt = C.plt()
    t = data.table
    deltas = sorted(t["delta"].unique(), reverse=True)
    acts = [a for a in FIG2_ACTIVATIONS if a in set(t["activation"])]
    pred = data.extra["pred"]
    fig, axes = plt.subplots(len(acts), len(deltas), figsize=(3.4 * len(deltas), 3.0 * len(acts)),
                             squeeze=False, sharey=True)
    for i, act in enumerate(acts):
        for j, delta in enumerate(deltas):
            ax = axes[i, j]
            g = t[(t["activation"] == act) & (t["delta"] == delta)]
            best = g.sort_values("final_loss")["seed"].iloc[0]
            for layer, gl in g[g["seed"] == best].groupby("layer"):
                ax.plot(gl["index"], gl["trained"], "-", lw=1.2, label=layer)
            ax.plot(np.arange(1, len(pred) + 1), pred, "ko", ms=3, label="predicted")
            ax.set_title(f"{act}, delta = {delta:g}", fontsize=9)
            ax.set_xlabel("index i")
            if j == 0:
                ax.set_ylabel("singular value")
    axes[0, 0].legend(fontsize=7)
    return C.save_figure(fig, out_dir, data.name)


# ------------------------------------------------------------------------------------------------
# Fig. 3: TCV and other per-layer quantities over training, many initialisations
# ------------------------------------------------------------------------------------------------

FIG3_LAM, FIG3_SIGMA = 3e-3, 0.3


def _fig3_inits(size: str) -> int:
    return {"full": 100, "quick": 100, "smoke": 2}[size]


def _fig3_configs(size: str):
    return [mlp_config(size, FIG3_LAM, FIG3_SIGMA, _fig3_inits(size))]


def _fig3_compute(data: Data) -> None:
    """Arrays (T, P[, layers]) of the logged loss, TCV of H_2..H_L and W_l's distance to rank K / norm."""
    run_ids = [c.run_id() for c in data.configs]
    h = data.histories
    data.table = h[h["run_id"].isin(run_ids)].reset_index(drop=True)
    steps, loss = C.history_matrix(h, run_ids, "", "loss")
    res = {"steps": steps.astype(int), "loss": loss.T}
    for key, layers, metric in (("tcv", [f"H{l}" for l in range(2, L + 1)], "tcv"),
                                ("tcv_norm", [f"H{l}" for l in range(2, L + 1)], "tcv_norm"),
                                ("dist_rank", [f"W{l}" for l in range(1, L + 1)], "dist_rank_K"),
                                ("wnorm", [f"W{l}" for l in range(1, L + 1)], "norm")):
        res[key] = np.stack([C.history_matrix(h, run_ids, layer, metric)[1].T for layer in layers], axis=2)
    data.extra["res"] = res


def _fig3_summary(data: Data) -> str:
    res = data.extra["res"]
    tcvn = res["tcv_norm"]
    dist = res["dist_rank"][:, :, :-1]
    lines = [f"{tcvn.shape[1]} initialisations, lam = {FIG3_LAM}, sigma = {FIG3_SIGMA}.\n",
             f"- final loss: mean {C.fmt(np.nanmean(res['loss'][-1]))}, min {C.fmt(np.nanmin(res['loss'][-1]))}, "
             f"max {C.fmt(np.nanmax(res['loss'][-1]))}",
             "- normalised TCV per intermediate layer, start -> end (mean over inits): "
             + ", ".join(f"H{l + 2} {C.fmt(np.nanmean(tcvn[0, :, l]), 3)} -> {C.fmt(np.nanmean(tcvn[-1, :, l]), 3)}"
                         for l in range(tcvn.shape[2])),
             f"- distance of W_1..W_(L-1) to rank K, start -> end (mean): {C.fmt(np.nanmean(dist[0]), 3)} -> "
             f"{C.fmt(np.nanmean(dist[-1]), 3)}",
             "\nThe paper: TCV decreases layer by layer and over training; the weights approach rank K.\n"]
    return "\n".join(lines + C.convergence_lines(data)) + "\n"


@register("zangrando-fig3", paper=PAPER, figure="Fig. 3",
          description="MLP on Gaussian clusters: loss, TCV and distance of weights to rank K averaged over the "
                      "intermediate layers during training (mean and min-max band over initialisations); "
                      "TCV per layer.",
          configs=_fig3_configs, compute=_fig3_compute, summarize=_fig3_summary,
          choices=MLP_CHOICES + " lam = 3e-3, sigma = 0.3, 100 initialisations (the paper's 100, also at quick size); "
                  "the bands are min-max over initialisations (the paper's shadows).",
          est_seconds={"smoke": 10, "quick": 60, "full": 200})
def _fig3_plot(out_dir, data: Data):
    plt = C.plt()
    res = data.extra["res"]
    s = res["steps"]
    fig, axes = plt.subplots(1, 4, figsize=(18, 3.6))
    C.band(axes[0], s, res["loss"].T, spread="minmax", log=True)
    axes[0].set_title("loss")
    C.band(axes[1], s, np.nanmean(res["tcv_norm"], axis=2).T, spread="minmax", log=True)
    axes[1].set_title("normalised TCV (mean over layers)")
    C.band(axes[2], s, np.nanmean(res["dist_rank"][:, :, :-1], axis=2).T, spread="minmax", log=True)
    axes[2].set_title("dist. of W_l to rank K (mean, l < L)")
    for l in range(res["tcv"].shape[2]):
        C.band(axes[3], s, res["tcv"][:, :, l].T, spread="minmax", log=True, label=f"H{l + 2}")
    axes[3].set_title("TCV per intermediate layer")
    axes[3].legend(fontsize=7)
    for ax in axes:
        ax.set_xlabel("step")
    return C.save_figure(fig, out_dir, data.name)


# ------------------------------------------------------------------------------------------------
# Fig. 5: block structure of the Gram matrices during training
# ------------------------------------------------------------------------------------------------

def _fig5_steps(size: str) -> list[int]:
    """Ends of the runs whose final features are the snapshots (multiples of log_every)."""
    return {"full": [500, 1000, 2000, 5000, 10000, 20000], "quick": [500, 1000, 2000, 4000, 6000],
            "smoke": [10, 20]}[size]


def _fig5_configs(size: str):
    return [mlp_config(size, FIG3_LAM, FIG3_SIGMA, [0], steps=t) for t in _fig5_steps(size)]


def _fig5_compute(data: Data) -> None:
    import pandas as pd

    from deepcollapse import dufm

    chosen = []
    for cfg in sorted(data.configs, key=lambda c: c.steps):
        _, Zs = final_features(C.lane_params(data, cfg.run_id(), 0), cfg)
        chosen.append((cfg.steps, [np.asarray(Z) for Z in Zs], cfg.run_id()))
    y = dufm.labels([N_PER_CLASS] * K)
    rows = []
    for step, Zs, run_id in chosen:
        for l, Z in enumerate(Zs, start=1):
            rows.append({"run_id": run_id, "lane": 0, "step": step, "layer": f"Z{l}", "tcv_norm": float(metrics.tcv_normalised(Z, y, K)),
                         "gram_block_ratio": _block_ratio(Z.T @ Z, K, N_PER_CLASS)})
    data.table = pd.DataFrame(rows)
    data.extra["chosen"] = [(step, Zs) for step, Zs, _ in chosen]


def _block_ratio(G: np.ndarray, K: int, n: int) -> float:
    """Share of ||G||_F^2 off the K diagonal class blocks (columns class by class): 0 for collapsed
    features with orthogonal class means (DNC1 plus the orthogonal frame of the MSE ReLU optimum),
    larger the less block-diagonal G is; nan for G = 0."""
    mask = np.kron(np.eye(K), np.ones((n, n))).astype(bool)
    tot = float(np.sum(G**2))
    return float(np.sum(G[~mask] ** 2) / tot) if tot > 0 else float("nan")


def _fig5_summary(data: Data) -> str:
    return (f"Gram matrices Z_l^T Z_l of one initialisation during training (lam = {FIG3_LAM}, sigma = {FIG3_SIGMA}); "
            "normalised TCV and the off-block share of the Gram.\n\n"
            + C.md_table(data.table.to_dict("records"), ["step", "layer", "tcv_norm", "gram_block_ratio"])
            + "\nThe paper: a K-block structure (DNC1) emerges during training, deeper layers first.\n")


@register("zangrando-fig5", paper=PAPER, figure="Fig. 5",
          description="MLP on Gaussian clusters: emergence of the class-block structure of each layer's Gram "
                      "matrix Z_l^T Z_l during training.",
          configs=_fig5_configs, compute=_fig5_compute, summarize=_fig5_summary,
          choices=MLP_CHOICES + " lam = 3e-3, sigma = 0.3, one initialisation; the snapshots are the final Gram "
                  "matrices Z_l^T Z_l of runs of increasing length (a run of t steps is the first t steps of a "
                  "longer one: the same chunks).",
          est_seconds={"smoke": 10, "quick": 20, "full": 40})
def _fig5_plot(out_dir, data: Data):
    plt = C.plt()
    chosen = data.extra["chosen"]
    L = len(chosen[0][1])
    fig, axes = plt.subplots(len(chosen), L, figsize=(3.0 * L, 2.8 * len(chosen)), squeeze=False)
    for i, (step, Zs) in enumerate(chosen):
        for l, Z in enumerate(Zs):
            ax = axes[i, l]
            ax.imshow(Z.T @ Z, cmap="viridis", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"step {step}, Z{l + 1}", fontsize=8)
    return C.save_figure(fig, out_dir, data.name)


# ------------------------------------------------------------------------------------------------
# Fig. 4: norms of the intermediate weights of an L = 6 residual network during training
# ------------------------------------------------------------------------------------------------

FIG4_L, FIG4_LAMS, FIG4_SIGMA = 6, (1e-3, 3e-3), 0.3


def _fig4_configs(size: str) -> list:
    seeds = 2 if size == "smoke" else 3
    lams = FIG4_LAMS[:1] if size == "smoke" else FIG4_LAMS
    out = []
    for lam in lams:
        c = mlp_config(size, lam, FIG4_SIGMA, seeds)
        out.append(c.model_copy(update={"L": FIG4_L, "residual": True}))
    from deepcollapse.config import DUFMConfig

    return [DUFMConfig(**c.to_dict()) for c in out]  # validated again with L = 6


def _fig4_compute(data: Data) -> None:
    import pandas as pd

    rows = []
    h = data.histories
    for l in range(1, FIG4_L + 1):
        g = h[(h["layer"] == f"W{l}") & (h["metric"] == "norm")].sort_values("step")
        for (rid, lane), gg in g.groupby(["run_id", "lane"]):
            v = gg["value"].to_numpy(float)
            steps = gg["step"].to_numpy()
            tail = v[steps >= 0.9 * steps[-1]]
            rows.append({"run_id": rid, "lane": int(lane), "lam": float(gg["lam_W"].iloc[0]), "layer": f"W{l}",
                         "norm_start": v[0], "norm_end": v[-1],
                         "rel_change_last_10pct": float((tail.max() - tail.min()) / max(abs(v[-1]), 1e-30))})
    data.table = pd.DataFrame(rows)


def _fig4_summary(data: Data) -> str:
    t = data.table
    m = t.groupby(["lam", "layer"])[["norm_start", "norm_end", "rel_change_last_10pct"]].mean().reset_index()
    return (f"Residual MLP (L = {FIG4_L}, layers 2..{FIG4_L - 1} residual: H_(l+1) = H_l + ReLU(W_l H_l)), the data and "
            f"training of Fig. 3 (sigma = {FIG4_SIGMA}), lam = {', '.join(map(str, FIG4_LAMS))}: Frobenius norms of "
            "W_1..W_6 at the start and the end (mean over seeds) and their relative change over the last 10% of the "
            "steps.\n\n" + C.md_table(m.to_dict("records"))
            + "\nThe paper (Fig. 4 caption): the norms converge to the structured minima of its residual-network "
              "theorem (delta = 1/lambda). The project's copy of the paper lacks that theorem's statement, so the "
              "values of those minima are not checked here; the figure shows whether and where the norms settle.\n\n"
            + "\n".join(C.convergence_lines(data)) + "\n")


@register("zangrando-fig4", paper=PAPER, figure="Fig. 4",
          description="Norms of the weight matrices of an L = 6 residual MLP (layers 2..5 residual) on Gaussian "
                      "clusters during training.",
          configs=_fig4_configs, compute=_fig4_compute, summarize=_fig4_summary,
          choices=MLP_CHOICES + " Fig. 4: L = 6, layers 2..5 residual blocks H_(l+1) = H_l + ReLU(W_l H_l) (the "
                  "block form is ours: the project's copy of the paper does not define it), sigma = 0.3, "
                  "lam in {1e-3, 3e-3}, 3 seeds.",
          est_seconds={"smoke": 10, "quick": 60, "full": 200})
def _fig4_plot(out_dir, data: Data):
    plt = C.plt()
    lams = sorted(data.table["lam"].unique())
    fig, axes = plt.subplots(1, len(lams), figsize=(5.5 * len(lams), 3.8), squeeze=False, sharey=True)
    h = data.histories
    for ax, lam in zip(axes[0], lams):
        ids = data.points[np.isclose(data.points["lam_W"].astype(float), lam)]["run_id"].unique()
        for l in range(1, FIG4_L + 1):
            steps, v = C.history_matrix(h, ids, f"W{l}", "norm")
            C.band(ax, steps, v, label=f"W{l}" + (" (residual)" if 1 < l < FIG4_L else ""))
        ax.set_xlabel("step")
        n_seeds = int(data.points["run_id"].isin(ids).sum())
        ax.set_title(f"lam = {lam}: {n_seeds} seeds (mean, 1 std)", fontsize=9)
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel(r"$\|W_l\|_F$")
    return C.save_figure(fig, out_dir, data.name)
