"""Figures of one DUFM training run (Súkeník et al. Fig. 2, top row).

Three panels: the training loss against the reference losses L_DNC / L_SRG, the DNC1 metric
(tr Sigma_W / tr Sigma_B) of every layer over training, and the singular values of every layer's
class means at convergence; mean over seeds with a 1-std band. Diverged lanes are left out (their
count is written in the title), so no NaN or inf ever enters a plot as a number.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import dufm, metrics  # noqa: E402
from .reference import reference_losses  # noqa: E402
from .train import TrainResult, final_features  # noqa: E402


def _band(ax, x, ys, label, log=False):
    """Mean and 1-std band over seeds (columns); on a log axis the geometric mean and a 1-std band
    of log10, so the band stays positive."""
    if log:
        lg = np.log10(ys)
        m, lo, hi = (10 ** (lg.mean(axis=1) + k * lg.std(axis=1)) for k in (0, -1, 1))
    else:
        m, sd = ys.mean(axis=1), ys.std(axis=1)
        lo, hi = m - sd, m + sd
    line, = ax.plot(x, m, label=label)
    ax.fill_between(x, lo, hi, alpha=0.2, color=line.get_color())


def class_mean_singular_values(res: TrainResult, lane: int) -> dict[str, np.ndarray]:
    cfg = res.configs[res.lanes[lane].config_index]
    Hs, Zs = final_features(res.lane_params(lane), cfg)
    y = dufm.labels(cfg.sizes)
    feats = {f"H{l}": F for l, F in enumerate(Hs, start=1)} | {"Z": Zs[-1]}
    return {k: np.asarray(metrics.singular_values(metrics.class_means(F, y, cfg.K))) for k, F in feats.items()}


def plot_run(res: TrainResult, out_dir: str | Path, name: str = "training") -> list[Path]:
    """Write `<name>.png` and `<name>.pdf` for the lanes of the first config of `res`."""
    out_dir = Path(out_dir)
    cfg = res.configs[0]
    lanes = [l.index for l in res.lanes if l.config_index == 0 and res.diverged_at[l.index] < 0]
    n_div = sum(1 for l in res.lanes if l.config_index == 0) - len(lanes)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    if lanes:
        steps = res.steps
        loss = res.logs["loss"][:, lanes]
        _band(axes[0], steps, loss, "training loss", log=True)
        for (label, value), ls in zip(reference_losses(cfg).items(), ("--", ":", "-.")):
            axes[0].axhline(value, color="k", ls=ls, lw=1, label=f"{label} = {value:.4f}")
        axes[0].set_yscale("log")
        axes[0].set_xlabel("step")
        axes[0].set_ylabel("loss")
        axes[0].legend()
        for l in range(1, cfg.L + 1):
            v = res.logs[f"H{l}/nc1_trace"][:, lanes]
            ok = np.all(np.isfinite(v) & (v > 0), axis=1)
            _band(axes[1], steps[ok], v[ok], f"layer {l}", log=True)
        axes[1].set_yscale("log")
        axes[1].set_xlabel("step")
        axes[1].set_ylabel(r"DNC1: tr$\Sigma_W$ / tr$\Sigma_B$")
        axes[1].legend()
        svs = [class_mean_singular_values(res, p) for p in lanes]
        for key in svs[0]:
            S = np.stack([s[key] for s in svs], axis=1)
            S = (S / S[:1]).clip(min=1e-12)  # below 1e-12 of the largest: numerically zero
            _band(axes[2], np.arange(1, S.shape[0] + 1), S, key, log=True)
        axes[2].set_yscale("log")
        axes[2].set_xlabel("index")
        axes[2].set_ylabel(r"$s_j / s_1$ of class means")
        axes[2].legend()
    title = f"{cfg.L}-DUFM, K={cfg.K}, n={cfg.sizes[0] if cfg.class_sizes is None else 'imb.'}, " \
            f"width={cfg.width}, {cfg.activation}/{cfg.loss}, lr={cfg.lr}, {len(lanes)} seeds"
    if n_div:
        title += f" ({n_div} diverged, not shown)"
    fig.suptitle(title)
    fig.tight_layout()
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    for p in paths:
        _save(fig, p)
    plt.close(fig)
    return paths


def _save(fig, path: Path) -> None:
    """Save a figure atomically (temporary name, then rename)."""
    import os

    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)
