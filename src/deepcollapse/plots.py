"""Figures of one training run, any model (Súkeník et al. Fig. 2: the DUFM's top row, the network's
bottom row), and the figure helpers every experiment shares.

Three panels: the training loss against the reference losses L_DNC / L_SRG, the DNC1 metric
(tr Sigma_W / tr Sigma_B) of every layer over training, and the singular values of every layer's
class means at convergence; mean over seeds with a 1-std band. Diverged lanes are left out (their
count is written in the title), so no NaN or inf ever enters a plot as a number.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import LogFormatter  # noqa: E402

from .reference import run_references  # noqa: E402
from .results import TrainResult, atomic_write  # noqa: E402


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed), constrained layout."""
    plt.rcParams["figure.constrained_layout.use"] = True  # room for colour bars and titles
    return plt


def band(ax, x, values, label: str | None = None, color=None, spread: str = "std", log: bool = False, **kw):
    """Plot the mean over the rows of `values` (runs x len(x)) with a shaded band.

    spread "std": mean +- 1 standard deviation (Súkeník et al., Fig. 2-3); "minmax": the min-max
    range (Zangrando et al., Fig. 3). NaN entries (diverged runs) are ignored.
    log: statistics of log10(values) (geometric mean, band of +-1 std in log10) on a log axis.
    """
    v = np.asarray(values, float)
    if v.ndim == 1:
        v = v[None, :]
    if log:
        with np.errstate(all="ignore"):
            lv = np.log10(np.where(v > 0, v, np.nan))
        ax.set_yscale("log")
        return band(ax, x, lv, label=label, color=color, spread=spread, _exp10=True, **kw)
    exp10 = kw.pop("_exp10", False)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(v, axis=0)
        if spread == "std":
            sd = np.nanstd(v, axis=0)
            lo, hi = mean - sd, mean + sd
        else:
            lo, hi = np.nanmin(v, axis=0), np.nanmax(v, axis=0)
    if exp10:
        mean, lo, hi = 10**mean, 10**lo, 10**hi
    (line,) = ax.plot(x, mean, label=label, color=color, **kw)
    ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.25, lw=0)
    return line


class PlainLogFormatter(LogFormatter):
    """Matplotlib's choice of which log-axis ticks to label, each label the value as plain text
    (`%g`: 0.2, 1e-05). The default labels (10^-2 in mathtext) build mathtext's parser on a
    process's first figure, on the critical path of every `deepcollapse train` (docs/speed.md)."""

    def __call__(self, x, pos=None):
        return f"{x:g}" if super().__call__(x, pos) else ""


def plain_log_axis(ax) -> None:
    """A log-scale y axis of `ax` labelled by `PlainLogFormatter` (majors, and minors where matplotlib
    labels them: an axis spanning few decades)."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PlainLogFormatter())
    ax.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))


def save_figure(fig, out_dir: str | Path, stem: str, formats=("png", "pdf"), tight: bool = True) -> list[Path]:
    """Write `fig` as <stem>.png (150 dpi) and <stem>.pdf (the `formats`) into out_dir, each
    atomically (`results.atomic_write`: a unique temporary name, then rename), close it, return the
    paths. tight: crop to the drawn area (`bbox_inches="tight"`, one more layout pass)."""
    out_dir = Path(out_dir)
    paths = [out_dir / f"{stem}.{f}" for f in formats]
    for path in paths:
        buf = io.BytesIO()
        fig.savefig(buf, format=path.suffix[1:], dpi=150, bbox_inches="tight" if tight else None)
        atomic_write(path, buf.getvalue())
    plt.close(fig)
    return paths


def plot_run(res: TrainResult, out_dir: str | Path, name: str = "training", formats=("png",)) -> list[Path]:
    """Write `<name>.png` (and `<name>.pdf` if in `formats`) for the lanes of the first config of
    `res` (any model).

    Panels: loss against the reference losses, DNC1 of every layer H_1..H_L over training, and the
    singular values of every layer's class means at the end (from the run's summary), normalised by
    the largest. The title says when a panel shows fewer lanes than were run (diverged lanes), and
    when the run has not finished or not converged. The layout is fixed (no constrained layout, no
    tight crop) and the labels are plain text, the log axes' tick labels too (`plain_log_axis`): on
    the critical path of every `deepcollapse train`, these cost more than the training of a small run
    (docs/speed.md).
    """
    out_dir = Path(out_dir)
    cfg = res.configs[0]
    lanes = [l.index for l in res.lanes if l.config_index == 0 and res.diverged_at[l.index] < 0]
    n_div = sum(1 for l in res.lanes if l.config_index == 0) - len(lanes)
    x_name = "epoch" if "epoch" in res.time_columns else "step"
    x = np.asarray(res.time_columns.get("epoch", res.steps))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), layout="none")
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.13, top=0.87, wspace=0.22)
    if lanes:
        loss = res.logs["loss"][:, lanes]
        band(axes[0], x, loss.T, "training loss", log=True)
        for (label, value), ls in zip(run_references(res).items(), ("--", ":", "-.")):
            axes[0].axhline(value, color="k", ls=ls, lw=1, label=f"{label} = {value:.4f}")
        plain_log_axis(axes[0])
        axes[0].set_xlabel(x_name)
        axes[0].set_ylabel("loss")
        axes[0].legend()
        for l in range(1, cfg.L + 1):
            v = res.logs[f"H{l}/nc1_trace"][:, lanes]
            ok = np.all(np.isfinite(v) & (v > 0), axis=1)
            band(axes[1], x[ok], v[ok].T, f"layer {l}", log=True)
        plain_log_axis(axes[1])
        axes[1].set_xlabel(x_name)
        axes[1].set_ylabel("DNC1: tr Σ_W / tr Σ_B")
        axes[1].legend()
        rows = [res.summary[p] for p in lanes]
        keys = [f"H{l}" for l in range(1, cfg.L + 1)] + [f"Z{cfg.L}"]
        for key in keys:
            S = np.stack([np.asarray(r["singular_values"][key], float) for r in rows], axis=1)
            with np.errstate(all="ignore"):
                S = (S / S[:1]).clip(min=1e-12)  # below 1e-12 of the largest: numerically zero
            band(axes[2], np.arange(1, S.shape[0] + 1), S.T, "Z (output)" if key == f"Z{cfg.L}" else key, log=True)
        plain_log_axis(axes[2])
        axes[2].set_xlabel("index")
        axes[2].set_ylabel("s_j / s_1 of class means")
        axes[2].legend()
    fig.suptitle(run_title(res, len(lanes), n_div))
    return save_figure(fig, out_dir, name, formats, tight=False)


def run_title(res: TrainResult, shown: int, n_div: int) -> str:
    cfg = res.configs[0]
    if cfg.kind == "net":
        title = (f"{cfg.backbone_name} + {cfg.L}-layer {cfg.activation} head on {cfg.dataset} "
                 f"(n={res.summary[0].get('n_per_class')}), {cfg.loss}, {cfg.reg} reg., lr={cfg.lr}, {shown} seeds")
    else:
        n = cfg.sizes[0] if cfg.class_sizes is None else "imb."
        title = (f"{cfg.L}-DUFM, K={cfg.K}, n={n}, width={cfg.width}, {cfg.activation}/{cfg.loss}, "
                 f"lr={cfg.lr}, {shown} seeds")
    if n_div:
        title += f" ({n_div} diverged, not shown)"
    if not res.complete:
        title += " -- NOT FINISHED"
    else:
        rows = [r for r in res.summary if r.get("config", 0) == 0 and not r.get("diverged")]
        unconverged = sum(1 for r in rows if r.get("converged") is False)
        if unconverged:
            title += f" -- {unconverged}/{len(rows)} seeds NOT CONVERGED"
    return title
