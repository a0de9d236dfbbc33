"""Helpers shared by the experiment modules: figures, bands over seeds, what a point's record holds.

Side effects (files, plots) live here and in the experiment modules, never in the numerics.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from deepcollapse.plots import band, save_figure  # noqa: F401  (shared with the training figure)
from deepcollapse.plots import pyplot as plt  # noqa: F401


def heatmap(ax, M, title: str, cmap: str = "viridis", symmetric: bool = False):
    """Matrix as an image with a colour bar (rows top to bottom, columns left to right)."""
    M = np.asarray(M, float)
    kw = {}
    if symmetric:
        m = float(np.nanmax(np.abs(M))) or 1.0
        kw = {"vmin": -m, "vmax": m}
        cmap = "RdBu_r"
    im = ax.imshow(M, cmap=cmap, aspect="auto", interpolation="nearest", **kw)
    ax.set_title(title, fontsize=9)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return im


def nonzero_rows(M, rtol: float = 1e-3) -> np.ndarray:
    """The rows of M whose norm exceeds rtol * the largest row norm (dead neurons removed for display)."""
    M = np.asarray(M, float)
    norms = np.linalg.norm(M, axis=1)
    keep = norms > rtol * (norms.max() if norms.size and norms.max() > 0 else 1.0)
    return M[keep] if keep.any() else M[:1]


def history_matrix(histories, run_ids: Sequence[str], layer: str, metric: str):
    """(steps, values) of one logged quantity: values is runs x steps, one row per (point, lane)."""
    h = histories[(histories["layer"] == layer) & (histories["metric"] == metric)
                  & histories["run_id"].isin(list(run_ids))]
    if h.empty:
        return np.zeros(0), np.zeros((0, 0))
    wide = h.pivot_table(index=["run_id", "lane"], columns="step", values="value", aggfunc="first", dropna=False)
    return np.asarray(wide.columns, float), wide.to_numpy(float)


def lane_params(data, run_id: str, lane: int) -> dict:
    """Final parameters of one lane of a point of this experiment (`results.load_params`)."""
    from deepcollapse import results

    return results.load_params(data.point_dir(run_id), int(lane))


def lane_summary(data, run_id: str, lane: int) -> dict:
    """The summary row of one lane of a point of this experiment (its run record's summary.json)."""
    from deepcollapse import results

    return results.read_summary(data.point_dir(run_id), verify=False)["lanes"][int(lane)]


def class_mean_svals_table(data) -> "pd.DataFrame":  # noqa: F821
    """Tidy table (run_id, lane, seed, layer, index, value) of the singular values of every layer's
    class means at the end of training (the run records' summaries), for every non-diverged lane of
    `data.points`."""
    import pandas as pd

    rows = []
    for _, p in data.points.iterrows():
        if bool(p.get("diverged", False)):
            continue
        for layer, s in lane_summary(data, p["run_id"], p["lane"])["singular_values"].items():
            for i, v in enumerate(s, start=1):
                rows.append({"run_id": p["run_id"], "lane": int(p["lane"]), "seed": int(p["seed"]),
                             "layer": layer, "index": i, "value": float(v)})
    return pd.DataFrame(rows, columns=["run_id", "lane", "seed", "layer", "index", "value"])


def fmt(x, digits: int = 4) -> str:
    """A number for a summary: 4 significant digits, 'n/a' for None/NaN."""
    if x is None:
        return "n/a"
    try:
        xf = float(x)
    except (TypeError, ValueError):
        return str(x)
    return "n/a" if not np.isfinite(xf) else f"{xf:.{digits}g}"


def md_table(rows: list[dict], columns: Sequence[str] | None = None) -> str:
    """A Markdown pipe table of dict rows (numbers through `fmt`)."""
    if not rows:
        return "(no rows)\n"
    cols = list(columns or rows[0].keys())
    out = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    for r in rows:
        out.append("| " + " | ".join(fmt(r.get(c)) if not isinstance(r.get(c), str) else r.get(c)
                                      for c in cols) + " |")
    return "\n".join(out) + "\n"


def alive(points):
    """Rows of lanes that did not diverge."""
    if "diverged" not in points:
        return points
    return points[~points["diverged"].astype(bool)]


# ------------------------------------------------------------------------------------------------
# Probabilities over seeds, convergence, losses against a reference (issue 12, items 1 and 7)
# ------------------------------------------------------------------------------------------------

def wilson_interval(k, n, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k/n (default 95%; Wilson 1927, Eq. for
    (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)); (nan, nan) for n = 0.

    Unlike the normal interval sqrt(p(1-p)/n) it does not collapse to a point at p = 0 or 1: with
    0 of 10 seeds the 95% interval is [0, 0.28]."""
    k, n = float(k), float(n)
    if n <= 0:
        return float("nan"), float("nan")
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    den = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    return (0.0 if k == 0 else float(lo)), (1.0 if k == n else float(hi))


def proportion(k, n) -> str:
    """'k/n = p [lo, hi]' with the 95% Wilson interval, for a summary."""
    if n == 0:
        return "0/0"
    lo, hi = wilson_interval(k, n)
    return f"{int(k)}/{int(n)} = {k / n:.2f} [95% CI {lo:.2f}, {hi:.2f}]"


def wilson_errorbar(ax, x, k, n, **kw):
    """Proportions k/n at x with their 95% Wilson intervals as asymmetric error bars."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    p = np.divide(k, n, out=np.full_like(k, np.nan), where=n > 0)
    lo_hi = np.array([wilson_interval(a, b) for a, b in zip(k, n)]).reshape(-1, 2)
    err = np.vstack([p - lo_hi[:, 0], lo_hi[:, 1] - p])
    kw.setdefault("fmt", "o-")
    kw.setdefault("capsize", 3)
    return ax.errorbar(np.asarray(x, float), p, yerr=err, **kw)


def criterion_text(cfg) -> str:
    """The convergence criterion a config's summary uses (`config.Convergence`; `train.converged_at`)."""
    from deepcollapse.train import DEFAULT_CONVERGENCE

    c = cfg.converge or DEFAULT_CONVERGENCE
    w = c.window if c.window is not None else cfg.steps // 10
    stop = f", stops when every seed has converged (cap {cfg.steps} steps)" if c.stop else \
        f", no early stop ({cfg.steps} steps)"
    return f"|loss(t) - loss(t - {w})| <= {c.rtol:g} loss(t){stop}"


def converged_mask(points):
    """Boolean Series: the lanes whose summary says converged (False where the column is missing)."""
    if "converged" not in points:
        return points["loss"].isna() & False
    return points["converged"].fillna(False).astype(bool)


def convergence_lines(data, points=None) -> list[str]:
    """Summary lines saying, per run, whether and when it converged (issue 12, item 1)."""
    points = data.points if points is None else points
    crits = sorted({criterion_text(c) for c in data.configs if c.kind == "dufm"})
    out = [f"- convergence criterion: {'; '.join(crits)}"]
    ok = alive(points)
    conv = converged_mask(ok)
    out.append(f"- converged: {int(conv.sum())}/{len(ok)} non-diverged runs")
    rows = []
    keys = [k for k in ("K", "L", "width", "lam_H", "init_scale", "lr") if k in ok and ok[k].nunique() > 1]
    for _, p in ok.sort_values([*keys, "seed"]).iterrows():
        at = p.get("converged_at")
        rows.append({**{k: str(p[k]) for k in keys}, "seed": str(int(p["seed"])), "final loss": p["loss"],
                     "converged": "yes" if bool(p.get("converged") or False) else "no",
                     "at step": "-" if at is None or (isinstance(at, float) and np.isnan(at)) else str(int(at))})
    out.append("\nPer run:\n\n" + md_table(rows))
    return out


def below_line(points, ref: float, name: str) -> str:
    """'runs below `name`: k/n, of the converged k'/n'' -- a comparison with a reference loss that
    says how many of the runs it counts had converged."""
    ok = alive(points)
    conv = converged_mask(ok)
    below = ok["loss"] < ref
    line = f"- runs below {name} = {fmt(ref)}: {int(below.sum())}/{len(ok)}; of the converged runs " \
           f"{int((below & conv).sum())}/{int(conv.sum())}"
    if int(conv.sum()) < len(ok):
        line += f" ({len(ok) - int(conv.sum())} run(s) not converged: their final loss is an upper bound of where they end)"
    return line


def loss_gap_panel(ax, steps, loss, ref: float, ref_name: str, others: dict | None = None,
                   label: str = "training loss (mean, 1 std)"):
    """Loss minus the reference `ref` over training (runs x steps), on a symmetric-log axis whose
    linear part (|gap| < 1e-3 ref) shows the sign: below 0 means below the reference. Other reference
    losses are drawn at their gap to `ref` (issue 12, item 7: a reader can see by eye on which side
    of L_DNC a run ends)."""
    loss = np.asarray(loss, float)
    band(ax, steps, loss - ref, label=label)
    ax.axhline(0.0, color="k", ls="--", lw=1.2, label=f"{ref_name} = {ref:.4f}")
    for (name, v), (color, ls) in zip((others or {}).items(), [("r", ":"), ("g", "-."), ("m", ":")]):
        if v is not None:
            ax.axhline(v - ref, color=color, ls=ls, lw=1.2, label=f"{name} = {v:.4f}")
    ax.set_yscale("symlog", linthresh=max(1e-3 * abs(ref), 1e-8))
    ax.set_xlabel("step")
    ax.set_ylabel(f"loss - {ref_name}")
    ax.legend(fontsize=7)
