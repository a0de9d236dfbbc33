"""Zangrando, Deidda, Brugiapaglia, Guglielmi, Tudisco, "Provable Emergence of Deep Neural Collapse and
Low-Rank Bias in L2-Regularized Nonlinear Networks": Figures 1, 2, 3, 5.

These figures train an MLP on FIXED data (K Gaussian clusters, `deepcollapse.data.gaussian`): the
L-DUFM with H_1 = X given and not optimised. Fig. 2 runs on the engine (`DUFMConfig(data=...)` through
`deepcollapse.sweep`: checkpoints, resume, stored points). Figs. 1, 3 and 5 still use this module's small
loop (`train_mlp`): `jax.vmap` over lanes (lam, sigma, seed) of a `lax.scan` of full-batch gradient steps
on `dufm.loss_terms(params_without_H1, Y, hyper, H1=X)`, metrics after every chunk; on the engine each
sigma would be its own program (the data is part of the shape key) and Fig. 5's snapshots of the
features during training have no engine counterpart yet.

Settings the paper summary does not state, chosen here (also in `settings(size)`):
  - data: K = 10 clusters in R^32, n = 10 samples per class, centres uniform on the unit sphere,
    within-class std sigma (`gaussian_clusters`, data seed = the lane's seed);
  - network: L = 4 weight layers, widths 32 -> 32 -> 32 -> 32 -> K, ReLU, no biases, MSE fit
    1/(2N)||Z - Y||^2, weight decay lam/2 ||W_l||^2 on every layer;
  - training: full-batch gradient descent, lr 0.2, init N(0, 1/32) (std 1/sqrt(width)), 20000 steps
    (full; 6000 quick), logged every 500. Weight components outside the data's span decay like
    (1 - lr lam)^t, so a run is near its limit only once lr lam t >> 1: the lam grid starts at 1e-3
    (lr lam t = 4 at full size); at lam >= 3e-2 the network collapses to a near-zero output;
  - Fig. 1 grid: lam in {1e-3, 2e-3, 3e-3, 5e-3, 1e-2}, sigma in {0, 0.1, 0.2, 0.3, 0.5}, 3 seeds
    (quick: lam {1e-3, 3e-3, 1e-2}, sigma {0, 0.1, 0.3, 0.5}, 2 seeds); the heat map shows the seed
    mean of sum_{j>K} s_j^2 / sum_j s_j^2 for W_1..W_{L-1} (W_L has K rows, so its distance is 0);
  - Fig. 3 / 5: lam = 3e-3, sigma = 0.3; Fig. 3 uses 100 initialisations (the paper's 100; also at quick size),
    Fig. 5 one initialisation, Gram matrices Z_l^T Z_l of the pre-activations at 6 times;
  - Fig. 2 (its own settings, `_fig2_configs`): K = 10 clusters in R^100, n = 5 (d >= N, so the data can
    be interpolated), sigma 0.1, L = 4, width 32, linear and ReLU, lam_W = delta / N (the fit summed over
    samples), init std 0.1, lr 0.3, 80000 steps (quick 40000), 5 seeds (quick 2). The prediction is the
    delta -> 0 limit s_i(Y X^+)^(1/L) (`deepcollapse.theory.interpolant`, derived there: exact for linear
    networks; the project's copy of the paper does not state its formula).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from deepcollapse.experiments import common as C
from deepcollapse.experiments.registry import Data, register

PAPER = ("Zangrando, Deidda, Brugiapaglia, Guglielmi, Tudisco, Provable Emergence of Deep Neural Collapse "
         "and Low-Rank Bias in L2-Regularized Nonlinear Networks")


@dataclass(frozen=True)
class MLPSpec:
    """An MLP trained on fixed Gaussian-cluster data (the L-DUFM with H_1 = X, not optimised)."""

    K: int = 10
    d_in: int = 32
    width: int = 32
    L: int = 4
    n: int = 10
    activation: str = "relu"
    loss: str = "mse"
    lr: float = 0.2
    init_scale: float = 32**-0.5
    steps: int = 20000
    log_every: int = 500

    def __post_init__(self):
        if self.steps % self.log_every:
            raise ValueError(f"log_every must divide steps={self.steps}, got {self.log_every}")
        if self.L < 2:
            raise ValueError(f"L must be >= 2 (at least one intermediate layer), got {self.L}")

    @property
    def widths(self) -> list[int]:
        """[d_in, width, ..., width]: W_1 is width x d_in, W_L is K x width (`dufm.init_params`)."""
        return [self.d_in] + [self.width] * (self.L - 1)


def lane_data(spec: MLPSpec, sigmas, seeds) -> np.ndarray:
    """X of every lane (P, d_in, N): `gaussian_clusters(K, d_in, n, sigma, seed)`."""
    from deepcollapse.data.gaussian import gaussian_clusters

    return np.stack([gaussian_clusters(spec.K, spec.d_in, spec.n, float(s), seed=int(sd))[0]
                     for s, sd in zip(sigmas, seeds)])


def train_mlp(spec: MLPSpec, lams, sigmas, seeds, snapshot_lane: int | None = None) -> dict:
    """Full-batch gradient descent of every lane (lam_p, sigma_p, seed_p) in one vmapped program.

    Model: Z_1 = W_1 X, H_{l+1} = act(Z_l), Z = W_L H_L; loss = fit(Z, Y) + sum_l lam/2 ||W_l||^2
    (`dufm.loss_terms` with H1=X, Zangrando et al. Sec. 2 with weight decay on every layer).
    Returns {"steps" (T,), "loss", "fit" (T, P), "tcv" and "tcv_norm" (T, P, L-1) of the intermediate
    features H_2..H_L (Def. 3.2), "dist_rank" (T, P, L) of W_1..W_L to rank K, "wnorm" (T, P, L),
    "params" (final, stacked), "snapshots" [(step, [Z_1..Z_L])] of `snapshot_lane`}.
    """
    import jax
    import jax.numpy as jnp
    import optax

    from deepcollapse import dufm, metrics

    lams = np.asarray(lams, np.float32)
    P = len(lams)
    X = jnp.asarray(lane_data(spec, sigmas, seeds), jnp.float32)
    Y = jnp.asarray(dufm.one_hot([spec.n] * spec.K), jnp.float32)
    y = dufm.labels([spec.n] * spec.K)
    keys = jnp.stack([jax.random.PRNGKey(int(s) + 7919) for s in seeds])
    opt = optax.sgd(spec.lr)

    def init(key):
        p = dufm.init_params(key, spec.widths, spec.K, spec.K * spec.n, spec.init_scale, jnp.float32,
                             free_features=False)
        return p, opt.init(p)

    def loss_fn(params, x, lam):
        hyper = dufm.Hyper(jnp.zeros((), jnp.float32), jnp.full((spec.L,), lam, jnp.float32))
        total, fit, _ = dufm.loss_terms(params, Y, hyper, spec.activation, spec.loss, H1=x)
        return total, fit

    def chunk(params, opt_state, x, lam):
        def step(carry, _):
            p, s = carry
            g = jax.grad(lambda q: loss_fn(q, x, lam)[0])(p)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        (params, opt_state), _ = jax.lax.scan(step, (params, opt_state), None, length=spec.log_every)
        return params, opt_state

    def measure(params, x, lam):
        total, fit = loss_fn(params, x, lam)
        Hs, Zs = dufm.forward(params, spec.activation, H1=x)
        tcv = jnp.stack([metrics.tcv(H, y, spec.K) for H in Hs[1:]])
        tcv_n = jnp.stack([metrics.tcv_normalised(H, y, spec.K) for H in Hs[1:]])
        return total, fit, tcv, tcv_n, Zs

    init_v = jax.jit(jax.vmap(init))
    chunk_v = jax.jit(jax.vmap(chunk))
    measure_v = jax.jit(jax.vmap(measure))
    params, opt_state = init_v(keys)
    lam_j = jnp.asarray(lams)
    logs = {k: [] for k in ("loss", "fit", "tcv", "tcv_norm", "dist_rank", "wnorm")}
    snapshots = []

    def record(step, params):
        total, fit, tcv, tcv_n, Zs = jax.device_get(measure_v(params, X, lam_j))
        Ws = [np.asarray(W, np.float64) for W in jax.device_get(params["W"])]
        dist = np.zeros((P, spec.L))
        for l, W in enumerate(Ws):  # SVDs in NumPy (outside the compiled program)
            s2 = np.linalg.svd(W, compute_uv=False) ** 2
            tot = s2.sum(axis=1)
            dist[:, l] = np.where(tot > 0, s2[:, spec.K:].sum(axis=1) / np.where(tot > 0, tot, 1), np.nan)
        logs["loss"].append(np.asarray(total))
        logs["fit"].append(np.asarray(fit))
        logs["tcv"].append(np.asarray(tcv))
        logs["tcv_norm"].append(np.asarray(tcv_n))
        logs["dist_rank"].append(dist)
        logs["wnorm"].append(np.stack([np.linalg.norm(W, axis=(1, 2)) for W in Ws], axis=1))
        if snapshot_lane is not None:
            snapshots.append((step, [np.asarray(Z[snapshot_lane]) for Z in Zs]))

    record(0, params)
    for c in range(spec.steps // spec.log_every):
        params, opt_state = chunk_v(params, opt_state, X, lam_j)
        record((c + 1) * spec.log_every, params)
    out = {k: np.stack(v) for k, v in logs.items()}
    out["steps"] = np.arange(len(out["loss"])) * spec.log_every
    out["params"] = jax.device_get(params)
    out["snapshots"] = snapshots
    return out


def _spec(size: str, **kw) -> MLPSpec:
    steps, log_every = {"full": (20000, 500), "quick": (6000, 500), "smoke": (20, 10)}[size]
    return MLPSpec(steps=steps, log_every=log_every, **kw)


# ------------------------------------------------------------------------------------------------
# Fig. 1: distance of trained weights to rank K over (lam, sigma)
# ------------------------------------------------------------------------------------------------

def _fig1_grid(size: str):
    return {"full": ([1e-3, 2e-3, 3e-3, 5e-3, 1e-2], [0.0, 0.1, 0.2, 0.3, 0.5], 3),
            "quick": ([1e-3, 3e-3, 1e-2], [0.0, 0.1, 0.3, 0.5], 2),
            "smoke": ([1e-3, 1e-2], [0.0, 0.5], 1)}[size]


def _fig1_settings(size: str) -> dict:
    lams, sigmas, seeds = _fig1_grid(size)
    return {"spec": asdict(_spec(size)), "lam": lams, "sigma": sigmas, "seeds": seeds,
            "data": "gaussian_clusters(K=10, d=32, n=10, sigma, seed), unit-norm random centres"}


def _fig1_compute(data: Data) -> None:
    import pandas as pd

    lams, sigmas, seeds = _fig1_grid(data.size)
    spec = MLPSpec(**data.settings["spec"])
    grid = [(lam, s, sd) for lam in lams for s in sigmas for sd in range(seeds)]
    res = train_mlp(spec, [g[0] for g in grid], [g[1] for g in grid], [g[2] for g in grid])
    rows = []
    for p, (lam, s, sd) in enumerate(grid):
        for l in range(spec.L):
            rows.append({"lam": lam, "sigma": s, "seed": sd, "layer": f"W{l + 1}",
                         "dist_rank_K": float(res["dist_rank"][-1, p, l]), "final_loss": float(res["loss"][-1, p]),
                         "tcv_norm_prev": float(res["tcv_norm"][-1, p, l - 1]) if l >= 1 else float("nan")})
    data.table = pd.DataFrame(rows)


def _fig1_summary(data: Data) -> str:
    t = data.table
    m = t[t["layer"] != f"W{MLPSpec().L}"].groupby(["lam", "sigma"])["dist_rank_K"].mean().reset_index()
    return ("Relative distance of the trained W_1..W_{L-1} to rank K = 10 (mean over layers and seeds).\n\n"
            + C.md_table(m.to_dict("records"), ["lam", "sigma", "dist_rank_K"])
            + "\nThe paper: the distance grows with the within-class spread sigma (TCV) and shrinks as lam grows.\n")


@register("zangrando-fig1", paper=PAPER, figure="Fig. 1",
          description="MLPs on K=10 Gaussian clusters (std sigma) trained with weight decay lam: distance of "
                      "each trained weight matrix to rank K over a (lam, sigma) grid (heat maps).",
          compute=_fig1_compute, summarize=_fig1_summary, settings=_fig1_settings,
          est_seconds_quick=10, est_seconds_full=80)
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


def _fig2_configs(quick: bool, smoke: bool):
    """One engine point (`DUFMConfig` with fixed data) per (activation, delta); lam_W = delta / N.

    J_delta = 1/2 sum_i ||f(x_i) - y_i||^2 + delta/2 sum_l ||W_l||^2 is the engine's loss (mean fit)
    times N with lam_W = delta / N (the paper's normalisation of the fit is not in our copy).
    init 0.1 and lr 0.3: smaller inits (0.03) leave some linear runs at delta = 0.1 on a rank-6 critical
    point; components of the weights outside the data's span decay like (1 - lr lam)^t, so delta = 0.01
    (lam = 2e-4) needs lr lam t of a few: 40000 steps (quick) leave them at ~0.1 of the kept values.
    """
    from deepcollapse.config import DUFMConfig, GaussianData

    size = "smoke" if smoke else ("quick" if quick else "full")
    steps, log_every, seeds = {"full": (80000, 2000, 5), "quick": (40000, 2000, 2), "smoke": (20, 10, 1)}[size]
    deltas = FIG2_DELTAS if size != "smoke" else (1.0, 0.01)
    K, n = 10, 5
    return [DUFMConfig(K=K, n=n, L=4, width=32, activation=act, loss="mse", lam_H=0.0, lam_W=delta / (K * n),
                       init_scale=0.1, lr=0.3, steps=steps, log_every=log_every, seeds=seeds,
                       data=GaussianData(**FIG2_DATA))
            for act in FIG2_ACTIVATIONS for delta in deltas]


def _fig2_settings(size: str) -> dict:
    cfgs = _fig2_configs(size == "quick", size == "smoke")
    c = cfgs[0]
    return {"deltas": sorted({round(x.lam_W * x.N, 12) for x in cfgs}, reverse=True), "lam_W": "delta / N",
            "data": f"gaussian_clusters(K=10, d={FIG2_DATA['dim']}, n=5, sigma={FIG2_DATA['sigma']}, "
                    f"seed={FIG2_DATA['seed']})", "L": c.L, "width": 32, "activations": list(FIG2_ACTIVATIONS),
            "init_scale": c.init_scale, "lr": c.lr, "steps": c.steps, "seeds": c.seeds,
            "prediction": "s_i(Y X^+)^(1/L) for every layer (theory.interpolant.predicted_singular_values): "
                          "the delta -> 0 limit, exact for linear networks, an upper bound on the cost for ReLU"}


def _fig2_compute(data: Data) -> None:
    import pandas as pd

    from deepcollapse import dufm
    from deepcollapse.theory.interpolant import min_weight_norm, predicted_singular_values
    from deepcollapse.train import input_data

    by_id = {c.run_id(): c for c in data.configs}
    cfg0 = data.configs[0]
    X, Y = input_data(cfg0), dufm.one_hot(cfg0.sizes)
    pred = predicted_singular_values(X, Y, cfg0.L)
    rows = []
    for _, pt in data.points.iterrows():
        cfg = by_id[pt["run_id"]]
        delta = cfg.lam_W * cfg.N
        params = C.lane_params(data.sweep_dir, pt["run_id"], pt["lane"])
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
    data.extra["interpolant_loss"] = {c.lam_W * c.N: c.lam_W / 2 * min_weight_norm(X, Y, c.L) for c in data.configs}
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
        ranks = g.groupby(["seed", "layer"])["trained"].apply(  # numerical rank, rtol 1e-3 (0 for W = 0)
            lambda s: int(np.sum(s.to_numpy() > max(1e-3 * s.max(), 1e-12))))
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
              "singular values, which the table shows when they do.\n")


@register("zangrando-fig2", paper=PAPER, figure="Fig. 2",
          description="Singular values of trained MLP weights (linear and ReLU, K=10 Gaussian clusters) vs the "
                      "delta -> 0 prediction s_i(Y X^+)^(1/L), for delta = 1/lam in {10, 2, 1, 0.1, 0.01}.",
          configs=_fig2_configs, compute=_fig2_compute, summarize=_fig2_summary, settings=_fig2_settings,
          est_seconds_quick=60, est_seconds_full=240)
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


def _fig3_settings(size: str) -> dict:
    return {"spec": asdict(_spec(size)), "lam": FIG3_LAM, "sigma": FIG3_SIGMA, "inits": _fig3_inits(size),
            "band": "min-max over initialisations (the paper's shadows)"}


def _fig3_compute(data: Data) -> None:
    import pandas as pd

    spec = MLPSpec(**data.settings["spec"])
    P = _fig3_inits(data.size)
    res = train_mlp(spec, [FIG3_LAM] * P, [FIG3_SIGMA] * P, list(range(P)))
    rows = []
    for t, step in enumerate(res["steps"]):
        for p in range(P):
            rows.append({"step": int(step), "init": p, "layer": "", "metric": "loss",
                         "value": float(res["loss"][t, p])})
            for l in range(spec.L - 1):
                for m in ("tcv", "tcv_norm"):
                    rows.append({"step": int(step), "init": p, "layer": f"H{l + 2}", "metric": m,
                                 "value": float(res[m][t, p, l])})
            for l in range(spec.L):
                for m in ("dist_rank", "wnorm"):
                    rows.append({"step": int(step), "init": p, "layer": f"W{l + 1}", "metric": m,
                                 "value": float(res[m][t, p, l])})
    data.table = pd.DataFrame(rows)
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
             "\nThe paper: TCV decreases layer by layer and over training; the weights approach rank K."]
    return "\n".join(lines) + "\n"


@register("zangrando-fig3", paper=PAPER, figure="Fig. 3",
          description="MLP on Gaussian clusters: loss, TCV and distance of weights to rank K averaged over the "
                      "intermediate layers during training (mean and min-max band over initialisations); "
                      "TCV per layer.",
          compute=_fig3_compute, summarize=_fig3_summary, settings=_fig3_settings,
          est_seconds_quick=30, est_seconds_full=80)
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

def _fig5_settings(size: str) -> dict:
    return {"spec": asdict(_spec(size)), "lam": FIG3_LAM, "sigma": FIG3_SIGMA, "seed": 0, "snapshots": 6,
            "gram": "Z_l^T Z_l of the pre-activations Z_l = W_l H_l, l = 1..L"}


def _fig5_compute(data: Data) -> None:
    import pandas as pd

    spec = MLPSpec(**data.settings["spec"])
    res = train_mlp(spec, [FIG3_LAM], [FIG3_SIGMA], [0], snapshot_lane=0)
    snaps = res["snapshots"]
    idx = np.unique(np.round(np.geomspace(1, len(snaps), min(6, len(snaps))) - 1).astype(int))
    chosen = [snaps[i] for i in idx]
    from deepcollapse import dufm, metrics

    y = dufm.labels([spec.n] * spec.K)
    rows = []
    for step, Zs in chosen:
        for l, Z in enumerate(Zs, start=1):
            G = Z.T @ Z
            rows.append({"step": step, "layer": f"Z{l}", "tcv_norm": float(metrics.tcv_normalised(Z, y, spec.K)),
                         "gram_block_ratio": _block_ratio(G, spec.K, spec.n)})
    data.table = pd.DataFrame(rows)
    data.extra["chosen"] = chosen
    data.extra["spec"] = spec


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
          compute=_fig5_compute, summarize=_fig5_summary, settings=_fig5_settings,
          est_seconds_quick=5, est_seconds_full=10)
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
