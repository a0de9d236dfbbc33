"""Real-network figures: ResNet-20 + MLP head on MNIST / CIFAR-10 (`deepcollapse.nets`), run as sweep
points like the DUFM figures (local or Ray; each network config is one point, its record in
`points/<run_id>/`).

  sukenik-fig2-resnet  Súkeník et al. (2024), Fig. 2 bottom row: CIFAR-10, 4-layer ReLU head of width
                       64, MSE, DUFM-like regularisation: loss vs L_DNC and L_SRG, DNC1 of every head
                       layer over training, class-mean singular values at the end.
  garrod-fig3          Garrod & Keating, Fig. 3: cross-entropy, UFM-style regularisation; linear head
                       L = 3 on MNIST and CIFAR-10, ReLU head L = 4 on CIFAR-10: loss vs the DNC bound,
                       class-mean logit matrix, its singular values (count > 1e-6).
  garrod-fig4          Fig. 4: standard weight decay on every parameter, CIFAR-10.
  garrod-fig7          App. D, Fig. 7: the MNIST counterpart of Fig. 3's ReLU row.
  garrod-fig8          App. D, Fig. 8: the MNIST counterpart of Fig. 4.

Reference losses (the dashed lines) are `reference.reference_losses(cfg, n)`: the DUFM's L_DNC and
L_SRG (MSE) or the deep linear DNC and Eq. (5) pair optima (CE) at the run's K, L, lams and n per
class; a network's loss is at least the DUFM's global minimum (its H_1 is constrained), so below L_DNC
means better than every DNC solution. Standard weight decay regularises the backbone too: no bound.
"""

from __future__ import annotations

import numpy as np

from deepcollapse import metrics
from deepcollapse.experiments import common as C
from deepcollapse.experiments.registry import Data, register

SUKENIK = "Súkeník, Lampert, Mondelli (2024), Neural collapse vs. low-rank bias"
GARROD = "Garrod, Keating, The Persistence of Neural Collapse Despite Low-Rank Bias"

FULL_N = 5000  # samples per class at full size (both papers)
SUKENIK_LAM_W = 0.005
SUKENIK_LAM_H_N = 5e-6 * FULL_N  # lam_H * n of the paper (0.025), kept at every size
GARROD_LAM_W = 5e-3
GARROD_LAM_H_N = 1e-6 * FULL_N  # 5e-3
GARROD_WD = 1e-2
WIDTH = 64
LOGIT_ATOL = 1e-6  # Garrod & Keating, Sec. 4: "the number of singular values above 1e-6"
#: ... "was 4 for MNIST and 3 for CIFAR-10" (Sec. 4, UFM-style regularisation): shown beside ours
PAPER_LOGIT_RANK = {"mnist": 4, "cifar10": 3}

_SIZES = {
    # n per class, batch (None: full), epochs (UFM-style), epochs (standard wd), eval_every, seeds (Súkeník)
    "full": dict(n=FULL_N, batch=10_000, epochs=2000, epochs_standard=4000, eval_every=20, seeds=5),
    "medium": dict(n=10, batch=None, epochs=30_000, epochs_standard=30_000, eval_every=500, seeds=2),
    "quick": dict(n=200, batch=200, epochs=20, epochs_standard=20, eval_every=4, seeds=2),
    "smoke": dict(n=2, batch=None, epochs=1, epochs_standard=1, eval_every=1, seeds=1),
}
#: The medium size's backbone and optimiser (docs/findings.md, "The medium size" under "Real networks", tells how
#: they were chosen): a one-hidden-layer pixel MLP instead of ResNet-20, full-batch GD with momentum, the
#: backbone at a tenth of the head's learning rate, and the convergence criterion every medium run uses.
MEDIUM_NET = dict(backbone="mlp", mlp_widths=(256,), mlp_init_scale=0.3, momentum=0.9,
                  converge=dict(rtol=1e-4, min_accuracy=0.99))
#: (head lr, backbone lr) of the medium size per kind of run, the largest of those measured at which every
#: run of that kind trains without diverging or collapsing (docs/findings.md, "The medium size")
MEDIUM_LR = {"ce": (0.1, 0.01), "standard": (0.05, 0.005), "mse": (0.02, 0.002)}


def _optim(size: str, lr: float, kind: str) -> dict:
    """The optimiser and backbone fields of a run: the paper's lr (ResNet-20) except at medium size,
    where `kind` ("ce", "standard" or "mse") picks the medium learning rates."""
    if size != "medium":
        return dict(lr=lr)
    head_lr, backbone_lr = MEDIUM_LR[kind]
    return dict(MEDIUM_NET, lr=head_lr, backbone_lr=backbone_lr)


def _dataset(name: str, size: str) -> dict:
    """NetConfig data fields: the train split, except MNIST at smoke size (the small t10k file)."""
    split = "test" if (size == "smoke" and name == "mnist") else "train"
    return {"dataset": name, "split": split}


# ------------------------------------------------------------------------------------------------
# Run configurations
# ------------------------------------------------------------------------------------------------

def _sukenik_runs(size: str) -> list[tuple[str, dict]]:
    z = _SIZES[size]
    return [("cifar10-relu-L4", dict(
        **_dataset("cifar10", size), n_per_class=z["n"], L=4, width=WIDTH, activation="relu", loss="mse",
        reg="dufm", lam_H=SUKENIK_LAM_H_N / z["n"], lam_W=SUKENIK_LAM_W, **_optim(size, 0.05, "mse"), batch_size=z["batch"],
        epochs=z["epochs"], eval_every=z["eval_every"], seeds=z["seeds"]))]


def _garrod_ufm(name: str, L: int, activation: str, size: str) -> tuple[str, dict]:
    z = _SIZES[size]
    return (f"{name}-{activation}-L{L}", dict(
        **_dataset(name, size), n_per_class=z["n"], L=L, width=WIDTH, activation=activation, loss="ce",
        reg="dufm", lam_H=GARROD_LAM_H_N / z["n"], lam_W=GARROD_LAM_W, **_optim(size, 0.05, "ce"), batch_size=z["batch"],
        epochs=z["epochs"], eval_every=z["eval_every"], seeds=1, logit_sv_atol=LOGIT_ATOL))


def _garrod_standard(name: str, size: str) -> tuple[str, dict]:
    """Standard regularisation: weight decay on every parameter. The head of Fig. 3's bottom row
    (ReLU, L = 4) -- the papers do not state the head of Fig. 4 / 8."""
    z = _SIZES[size]
    return (f"{name}-relu-L4-standard", dict(
        **_dataset(name, size), n_per_class=z["n"], L=4, width=WIDTH, activation="relu", loss="ce",
        reg="standard", weight_decay=GARROD_WD, **_optim(size, 1e-3, "standard"), batch_size=z["batch"], epochs=z["epochs_standard"],
        eval_every=z["eval_every"], seeds=1, logit_sv_atol=LOGIT_ATOL))


RUNS = {
    "sukenik-fig2-resnet": _sukenik_runs,
    "garrod-fig3": lambda size: [_garrod_ufm("mnist", 3, "linear", size), _garrod_ufm("cifar10", 3, "linear", size),
                                 _garrod_ufm("cifar10", 4, "relu", size)],
    "garrod-fig4": lambda size: [_garrod_standard("cifar10", size)],
    "garrod-fig7": lambda size: [_garrod_ufm("mnist", 4, "relu", size)],
    "garrod-fig8": lambda size: [_garrod_standard("mnist", size)],
}


def run_label(cfg) -> str:
    """The row name of a run in the figures: dataset-activation-L<L>[-standard]."""
    return f"{cfg.dataset}-{cfg.activation}-L{cfg.L}" + ("-standard" if cfg.reg == "standard" else "")


def net_configs(name: str, size: str, data_root: str | None = None) -> list:
    """The NetConfigs of experiment `name` at `size` ("full", "quick", "smoke").

    data_root: None leaves the config's data root to $DEEPCOLLAPSE_DATA or the default at run time.
    """
    from deepcollapse.config import NetConfig

    if name not in RUNS:
        raise ValueError(f"name must be one of {sorted(RUNS)}, got {name!r}")
    if size not in _SIZES:
        raise ValueError(f"size must be one of {tuple(_SIZES)}, got {size!r}")
    return [NetConfig(data_root=data_root, **kw) for _, kw in RUNS[name](size)]


def _configs(name: str):
    return lambda size: net_configs(name, size)


def _num(v) -> float:
    """A summary number, NaN where the run recorded none (a diverged lane)."""
    return float("nan") if v is None else float(v)


def _compute(data: Data) -> None:
    """One table row per run and seed (the records' summaries), with the histories, class-mean logit
    matrices, references and singular values the plots read."""
    import pandas as pd

    from deepcollapse.reference import reference_losses

    rows, hists, logits, refs, svals = [], [], {}, {}, []
    p = data.points
    for cfg in data.configs:
        label, rid = run_label(cfg), cfg.run_id()
        logits[label] = []
        for _, pt in p[p["run_id"] == rid].sort_values("lane").iterrows():
            lane = C.lane_summary(data, rid, pt["lane"])
            refs[label] = reference_losses(cfg, lane["n_per_class"])
            diverged = bool(lane.get("diverged"))  # a diverged lane has no final metrics: NaN in its row
            if not diverged:
                logits[label].append(np.asarray(lane["class_mean_logits"]))
            sv_logit = np.asarray(lane["singular_values"][f"Z{cfg.L}"]) if not diverged else None
            nan = float("nan")
            row = {"run": label, "seed": lane["seed"], "dataset": cfg.dataset, "n_per_class": lane["n_per_class"],
                   "L": cfg.L, "width": cfg.width, "activation": cfg.activation, "loss_fn": cfg.loss, "reg": cfg.reg,
                   "lr": cfg.lr, "backbone_lr": cfg.backbone_lr or cfg.lr, "momentum": cfg.momentum,
                   "batch_size": cfg.batch_size or cfg.K * lane["n_per_class"], "epochs": lane["epochs"],
                   "steps": lane["steps"], "loss": _num(lane["loss"]), "fit": _num(lane["fit"]),
                   "reg_term": _num(lane["reg"]), "accuracy": _num(lane["train_accuracy"]),
                   "logit_rank": _num(lane.get("logit_rank")), "logit_rank_atol": cfg.logit_sv_atol,
                   "logit_rank_rel": nan if diverged else int(metrics.numerical_rank(sv_logit, cfg.rank_rtol)),
                   "L_DNC": refs[label].get("L_DNC"), "L_SRG": refs[label].get("L_SRG"),
                   "L_lowrank": refs[label].get("L_lowrank"), "converged": lane.get("converged"),
                   "converged_at": lane.get("converged_at"), "diverged": diverged,
                   "diverged_at": lane.get("diverged_at"), "backbone": cfg.backbone_name, "run_id": rid}
            for layer, sv in lane.get("singular_values", {}).items():
                s = np.asarray(sv)
                row[f"rank_{layer}"] = int(metrics.numerical_rank(s, cfg.rank_rtol))
                svals += [{"run": label, "seed": lane["seed"], "layer": layer, "index": i + 1, "value": float(v)}
                          for i, v in enumerate(s)]
            rows.append(row)
        h = data.histories[data.histories["run_id"] == rid]
        seeds = dict(zip(p.loc[p["run_id"] == rid, "lane"], p.loc[p["run_id"] == rid, "seed"]))
        hists.append(h.assign(run=label, seed=h["lane"].map(seeds)))
    data.table = pd.DataFrame(rows)
    data.extra.update(history=pd.concat(hists, ignore_index=True), logits=logits, references=refs,
                      svals=pd.DataFrame(svals, columns=["run", "seed", "layer", "index", "value"]))


# ------------------------------------------------------------------------------------------------
# Plots
# ------------------------------------------------------------------------------------------------

def _curve(hist, run: str, layer: str, metric: str):
    """(epochs, values runs x epochs) of one logged quantity of one run label over its seeds."""
    h = hist[(hist["run"] == run) & (hist["layer"].fillna("") == layer) & (hist["metric"] == metric)]
    if h.empty:
        return np.zeros(0), np.zeros((0, 0))
    wide = h.pivot_table(index="seed", columns="epoch", values="value", aggfunc="first")
    return np.asarray(wide.columns, float), wide.to_numpy(float)


def _loss_panel(ax, data: Data, run: str) -> None:
    hist = data.extra["history"]
    ep, loss = _curve(hist, run, "", "loss")
    C.band(ax, ep, np.clip(loss, 1e-12, None), label="training loss")
    ref = data.extra["references"][run]
    styles = {"L_DNC": ("k", "--"), "L_SRG": ("r", ":"), "L_lowrank": ("tab:green", ":")}
    for key, (color, ls) in styles.items():
        if ref.get(key) is not None:
            ax.axhline(ref[key], color=color, ls=ls, lw=1.2, label=f"{key} = {ref[key]:.4g}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    title = f"{run}: loss (mean, 1 std)" if loss.shape[0] > 1 else f"{run}: loss"
    g = data.table.loc[data.table["run"] == run]
    if "diverged" in g and g["diverged"].any():
        title += f" ({int(g['diverged'].sum())}/{len(g)} DIVERGED at step {int(g['diverged_at'].min())})"
    ax.set_title(title, fontsize=9, color="tab:red" if "DIVERGED" in title else "black")
    ax.legend(fontsize=7)


def _svals_panel(ax, data: Data, run: str, layers: list[str], title: str, atol: float | None = None) -> None:
    sv = data.extra["svals"]
    for layer in layers:
        sel = sv[(sv["run"] == run) & (sv["layer"] == layer)]
        if sel.empty:
            continue
        wide = sel.pivot_table(index="seed", columns="index", values="value")
        C.band(ax, wide.columns.to_numpy(), np.clip(wide.to_numpy(), 1e-12, None), label=layer, marker="o", ms=3)
    if atol is not None:
        ax.axhline(atol, color="gray", ls=":", lw=1, label=f"{atol:g}")
    ax.set_yscale("log")
    ax.set_xlabel("singular value index")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)


def convergence_title(data: Data) -> str:
    """The figure's title: the experiment, its size and backbone, and, in the image itself, how many
    runs have not converged (`converged` of every run's summary; the criterion is config.Convergence)."""
    t = data.table
    backbones = ", ".join(dict.fromkeys(t["backbone"])) if "backbone" in t else "ResNet-20"
    conv = t["converged"] if "converged" in t else None
    n = len(t)
    if conv is None or conv.isna().all():
        state = "convergence not recorded"
    elif bool(conv.fillna(False).all()):
        state = f"all {n} runs converged"
    else:
        state = f"{n - int(conv.fillna(False).sum())}/{n} runs NOT CONVERGED"
        if "diverged" in t and t["diverged"].any():
            state += f" ({int(t['diverged'].sum())} diverged)"
    setting = ""
    if {"n_per_class", "lr", "backbone_lr", "momentum"} <= set(t.columns):
        r0 = t.iloc[0]
        lr = f"lr {C.fmt(r0['lr'])}" + (f" (backbone {C.fmt(r0['backbone_lr'])})" if r0["backbone_lr"] != r0["lr"] else "")
        setting = (f", n = {int(r0['n_per_class'])}/class, batch {int(r0['batch_size'])}, {lr}"
                   + (f", momentum {C.fmt(r0['momentum'])}" if r0["momentum"] else ""))
    return f"{data.name}, {data.size} size, {backbones}{setting}: {state}"


def _plot_sukenik(out_dir, data: Data):
    plt = C.plt()
    (run,) = data.extra["references"]
    L = int(data.table["L"].iloc[0])
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    _loss_panel(axes[0], data, run)
    hist = data.extra["history"]
    for l in range(1, L + 1):
        ep, v = _curve(hist, run, f"H{l}", "nc1_trace")
        if v.size:
            C.band(axes[1], ep, np.clip(v, 1e-12, None), label=f"H{l}")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("epoch")
    axes[1].set_title(r"DNC1: tr$\Sigma_W$/tr$\Sigma_B$ per head layer", fontsize=9)
    axes[1].legend(fontsize=7)
    _svals_panel(axes[2], data, run, [f"H{l}" for l in range(1, L + 1)] + [f"Z{L}"],
                 "class-mean singular values at the end")
    fig.suptitle(convergence_title(data))
    return C.save_figure(fig, out_dir, data.name)


def _plot_garrod(out_dir, data: Data):
    """One row per run: loss (with the DNC bound for UFM-style runs), class-mean logit matrix, its
    singular values (and those of every head layer's class means)."""
    plt = C.plt()
    runs = list(data.extra["references"])
    fig, axes = plt.subplots(len(runs), 3, figsize=(15, 3.8 * len(runs)), squeeze=False)
    for i, run in enumerate(runs):
        _loss_panel(axes[i, 0], data, run)
        g = data.table.loc[data.table["run"] == run]
        done = g.loc[~g["diverged"]]
        row = (done if len(done) else g).iloc[0]
        paper = PAPER_LOGIT_RANK.get(row["dataset"]) if row["reg"] == "dufm" else None
        paper_note = f"; paper: {paper})" if paper is not None else ")"
        if len(done):
            C.heatmap(axes[i, 1], data.extra["logits"][run][0], f"{run}: class-mean logits (rank "
                      f"{int(row['logit_rank'])} at {LOGIT_ATOL:g}" + paper_note, symmetric=True)
            axes[i, 1].set_xlabel("class")
            axes[i, 1].set_ylabel("logit")
        else:  # every seed diverged: no final logits to show, and the panel says so
            axes[i, 1].text(0.5, 0.5, f"DIVERGED at step {int(row['diverged_at'])}\nno final logits",
                            ha="center", va="center", fontsize=11, color="tab:red", transform=axes[i, 1].transAxes)
            axes[i, 1].set_title(f"{run}: class-mean logits" + (f" (paper: rank {paper})" if paper else ""), fontsize=9)
            axes[i, 1].set_axis_off()
        L = int(row["L"])
        _svals_panel(axes[i, 2], data, run, [f"H{l}" for l in range(1, L + 1)] + [f"Z{L}"],
                     "class-mean singular values (Z%d = logits)" % L, atol=LOGIT_ATOL)
    fig.suptitle(convergence_title(data))
    return C.save_figure(fig, out_dir, data.name)


# ------------------------------------------------------------------------------------------------
# Summaries
# ------------------------------------------------------------------------------------------------

def _summary(data: Data) -> str:
    t = data.table
    lines = []
    for run, g in t.groupby("run", sort=False):
        r0 = g.iloc[0]
        lines.append(f"### {run}\n")
        lines.append(f"{r0['dataset']}, n = {r0['n_per_class']} per class, head L = {r0['L']} "
                     f"({r0['activation']}, width {r0['width']}), {r0['loss_fn']} loss, {r0['reg']} "
                     f"regularisation, lr {r0['lr']}, {r0['epochs']} epochs ({r0['steps']} steps), "
                     f"{len(g)} seed(s).\n")
        if g["diverged"].any():
            lines.append(f"- DIVERGED: {int(g['diverged'].sum())}/{len(g)} seed(s), at step(s) "
                         + ", ".join(str(int(v)) for v in g.loc[g["diverged"], "diverged_at"])
                         + " (no final metrics" + ("; the numbers below are over the other seeds)"
                                                     if not g["diverged"].all() else ")"))
        g = g.loc[~g["diverged"]]
        if g.empty:
            lines.append("")
            continue
        r0 = g.iloc[0]
        loss = g["loss"].to_numpy(float)
        lines.append(f"- final loss: mean {C.fmt(loss.mean())}" + (f", std {C.fmt(loss.std(ddof=1))}, "
                     f"min {C.fmt(loss.min())}, max {C.fmt(loss.max())}" if len(g) > 1 else ""))
        for key in ("L_DNC", "L_SRG", "L_lowrank"):
            ref = r0[key]
            if ref is not None and np.isfinite(float(ref)):
                below = int((loss < float(ref)).sum())
                lines.append(f"- {key} = {C.fmt(ref)}; final loss / {key} = {C.fmt(loss.mean() / float(ref))}; "
                             f"runs below: {below}/{len(g)}")
        if all(r0[k] is None or not np.isfinite(float(r0[k])) for k in ("L_DNC", "L_SRG", "L_lowrank")):
            lines.append("- no analytic bound (standard weight decay regularises the backbone too)")
        lines.append(f"- train accuracy: {C.fmt(g['accuracy'].mean())}")
        lines.append(f"- class-mean logit rank (singular values > {C.fmt(r0['logit_rank_atol'])}): "
                     f"{', '.join(str(int(v)) for v in g['logit_rank'])}; relative (> 1e-3 s_max): "
                     f"{', '.join(str(int(v)) for v in g['logit_rank_rel'])}")
        ranks = [c for c in t.columns if c.startswith("rank_") and g[c].notna().any()]
        lines.append("- class-mean ranks at rtol 1e-3 (mean over seeds): " + ", ".join(
            f"{c[5:]} {C.fmt(g[c].mean(), 3)}" for c in ranks))
        M = data.extra["logits"][run][0]
        s = np.linalg.svd(M, compute_uv=False)
        lines.append(f"- logit singular values (seed {int(r0['seed'])}): " + ", ".join(C.fmt(v, 3) for v in s))
        lines.append("")
    conv = t["converged"].fillna(False).astype(bool) if "converged" in t else None
    if data.size == "medium":
        done = "none recorded" if conv is None else f"{int(conv.sum())}/{len(t)} runs converged"
        lines.append(f"Size medium ({', '.join(dict.fromkeys(t['backbone']))}, {done}): the papers' claims tested at "
                     "a CPU size; the choices and how they were measured are in experiment.json and docs/findings.md.")
    elif data.size != "full":
        lines.append(f"Size {data.size}: far from converged; the papers' comparison needs the full size "
                     "(the figure's choices in experiment.json).")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------
# Registration
# ------------------------------------------------------------------------------------------------

# Seconds per image and SGD step of ResNet-20 + head on the 2-core CPU (benchmarks/resnet_throughput.py
# measures it: ~220 img/s at 32x32x3, batch 128), plus compilation and metric passes per run.
_CPU_SECONDS_PER_IMAGE = {"mnist": 3.6e-3, "cifar10": 4.6e-3}
_CPU_SECONDS_PER_RUN = 25.0
#: Medium size: wall time of `deepcollapse reproduce NAME --size medium` on the 2-core CPU, measured
#: 2026-12-03 with two figures running at a time, one per core (docs/findings.md, "The medium size").
#: Runs stop at convergence, so the step count is a cap and a change of learning rate changes these.
MEDIUM_SECONDS = {"sukenik-fig2-resnet": 675, "garrod-fig3": 384, "garrod-fig4": 338, "garrod-fig7": 119,
                  "garrod-fig8": 167}


def _est_seconds(name: str, size: str) -> float:
    """Estimated CPU time of experiment `name` at `size` (for `deepcollapse list`), from RUNS."""
    total = 0.0
    if size == "medium":
        return MEDIUM_SECONDS[name]
    for _, kw in RUNS[name](size):
        seeds = kw["seeds"] if isinstance(kw["seeds"], int) else len(kw["seeds"])
        total += seeds * (kw["n_per_class"] * 10 * kw["epochs"] * _CPU_SECONDS_PER_IMAGE[kw["dataset"]]
                          + _CPU_SECONDS_PER_RUN)
    return total

CHOICES = (
    "Full size: 5,000 samples per class (Garrod & Keating, App. D; CIFAR-10's train set), batch 10,000 ('batch "
    "gradient descent with batch size 10,000', App. D; used for Súkeník et al. too, whose caption gives no batch "
    "size), plain SGD, no augmentation, inputs standardised per channel; 2,000 epochs for the UFM-style runs and "
    "4,000 for standard weight decay at lr 1e-3; metrics every 20 epochs; head width 64 (Súkeník et al.'s; Garrod "
    "& Keating do not state it); one seed for Garrod & Keating ('a single indicative run'), five for Súkeník et "
    "al. Smaller sizes rescale lam_H so that lam_H * n keeps the paper's value (the DUFM losses depend on lam_H "
    "only through lam_H * n_k, so L_DNC and L_SRG are the paper's numbers at every size). Quick: 200 per class, "
    "batch 200, 20 epochs; smoke: 2 per class, one full-batch epoch. Quick and smoke do not converge: they check "
    "the pipeline, not the papers' claims. Medium (a CPU size that converges): 10 per class, full batch, a pixel "
    "MLP backbone (one hidden layer of 256, weights at 0.3 of LeCun's scale) instead of ResNet-20, whose "
    "convolution gradients make thousands of full-batch steps hours on XLA:CPU; gradient descent with momentum "
    "0.9, the backbone at a tenth of the head's lr (one lr for both kills classes or stalls at a rank-2 saddle): "
    "head lr 0.1 for the UFM-style cross-entropy runs, 0.05 for standard weight decay, 0.02 for MSE (larger "
    "rates diverged, collapsed to zero or killed a class in those runs); at most 30,000 steps, stopped once the loss changes by less than 1e-4 (relative) over a tenth of "
    "the steps at train accuracy >= 0.99.")


def _register_net(name: str, plot, **fields) -> None:
    """Register a real-network figure: its configs, the shared compute and summary, CPU estimates."""
    register(name, configs=_configs(name), compute=_compute, summarize=_summary, choices=CHOICES,
             sizes=tuple(_SIZES), est_seconds={size: _est_seconds(name, size) for size in _SIZES}, **fields)(plot)


_register_net("sukenik-fig2-resnet", _plot_sukenik, paper=SUKENIK, figure="Fig. 2 (bottom row)",
              description="ResNet-20 + 4-layer ReLU MLP head (width 64) on CIFAR-10, MSE, DUFM-like regularisation "
                          "(weight decay 0.005 on the head, lam_H = 5e-6 at n = 5000), lr 0.05, 5 seeds: loss vs "
                          "L_DNC and L_SRG (K = 10, r = 5, L = 4), DNC1 per head layer over training, class-mean "
                          "singular values at convergence.")

_register_net("garrod-fig3", _plot_garrod, paper=GARROD, figure="Fig. 3",
              description="ResNet-20 + MLP head, cross-entropy, UFM-style regularisation (lam_W = 5e-3, lam_H = 1e-6 "
                          "at n = 5000), lr 0.05: linear head L = 3 on MNIST and CIFAR-10, ReLU head L = 4 on "
                          "CIFAR-10. Loss vs the DNC bound, class-mean logit matrix, count of its singular values "
                          "above 1e-6.")

_register_net("garrod-fig4", _plot_garrod, paper=GARROD, figure="Fig. 4",
              description="ResNet-20 + ReLU MLP head (L = 4) on CIFAR-10, cross-entropy, standard weight decay 1e-2 on "
                          "every parameter, lr 1e-3: the class-mean logit matrix is low rank and not a simplex.")

_register_net("garrod-fig7", _plot_garrod, paper=GARROD, figure="Fig. 7 (App. D)",
              description="MNIST counterpart of Fig. 3 bottom row: ResNet-20 + ReLU MLP head (L = 4), cross-entropy, "
                          "UFM-style regularisation (lam_W = 5e-3, lam_H = 1e-6 at n = 5000), lr 0.05: loss vs the "
                          "DNC bound, class-mean logits and their singular values.")

_register_net("garrod-fig8", _plot_garrod, paper=GARROD, figure="Fig. 8 (App. D)",
              description="MNIST counterpart of Fig. 4: ResNet-20 + ReLU MLP head (L = 4), cross-entropy, standard "
                          "weight decay 1e-2 on every parameter, lr 1e-3: low-rank class-mean logits, not a simplex.")
