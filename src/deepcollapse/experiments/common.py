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
