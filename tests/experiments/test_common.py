"""The experiments' shared helpers: Wilson intervals, convergence and below-reference counts, the
loss-minus-reference panel; the Fig. 2 table's counts on a constructed points table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepcollapse.config import Convergence, DUFMConfig
from deepcollapse.experiments import common as C
from deepcollapse.experiments.registry import Data

Z95 = 1.959964


def test_wilson_interval_closed_forms_and_symmetry():
    # k = 0: [0, z^2 / (n + z^2)]; k = n: [n / (n + z^2), 1]
    for n in (1, 5, 10, 40):
        assert C.wilson_interval(0, n) == (0.0, pytest.approx(Z95**2 / (n + Z95**2), rel=1e-6))
        assert C.wilson_interval(n, n) == (pytest.approx(n / (n + Z95**2), rel=1e-6), 1.0)
        for k in range(n + 1):  # symmetric under k -> n - k, p -> 1 - p; contains p
            lo, hi = C.wilson_interval(k, n)
            lo2, hi2 = C.wilson_interval(n - k, n)
            assert lo == pytest.approx(1 - hi2, abs=1e-12) and hi == pytest.approx(1 - lo2, abs=1e-12)
            assert lo <= k / n <= hi
    # large n: the normal interval p +- z sqrt(p (1-p) / n)
    lo, hi = C.wilson_interval(3000, 10000)
    half = Z95 * np.sqrt(0.3 * 0.7 / 10000)
    assert lo == pytest.approx(0.3 - half, abs=2e-4) and hi == pytest.approx(0.3 + half, abs=2e-4)
    assert np.isnan(C.wilson_interval(0, 0)[0])
    with pytest.raises(ValueError):
        C.wilson_interval(3, 2)


def _points():
    return pd.DataFrame({"seed": [0, 1, 2, 3, 4], "loss": [0.10, 0.12, 0.20, np.nan, 0.09],
                         "converged": [True, False, True, None, None], "converged_at": [500, None, 900, None, None],
                         "diverged": [False, False, False, True, False]})


def test_below_line_counts_converged_runs():
    line = C.below_line(_points(), 0.15, "L_DNC")
    # alive: seeds 0, 1, 2, 4; below 0.15: 0, 1, 4; converged: 0, 2 -> below and converged: seed 0
    assert "3/4" in line and "of the converged runs 1/2" in line and "2 run(s) not converged" in line


def test_convergence_lines_per_run():
    cfg = DUFMConfig(K=3, n=2, L=2, width=4, steps=1000, log_every=100, seeds=5,
                     converge=Convergence(rtol=1e-3, window=200))
    data = Data(name="x", size="smoke", dir=".", configs=[cfg], points=_points())
    text = "\n".join(C.convergence_lines(data))
    assert "|loss(t) - loss(t - 200)| <= 0.001 loss(t)" in text and "cap 1000 steps" in text
    assert "converged: 2/4 non-diverged runs" in text
    assert "| 0 | 0.1 | yes | 500 |" in text and "| 1 | 0.12 | no | - |" in text
    default = DUFMConfig(K=3, n=2, L=2, width=4, steps=1000, log_every=100)
    assert "loss(t - 100)| <= 0.0001" in C.criterion_text(default) and "no early stop" in C.criterion_text(default)


def test_loss_gap_panel_plots_loss_minus_reference():
    plt = C.plt()
    fig, ax = plt.subplots()
    loss = np.array([[0.3, 0.2, 0.1], [0.5, 0.2, 0.05]])
    C.loss_gap_panel(ax, [0, 1, 2], loss, 0.15, "L_DNC", {"L_SRG": 0.12})
    np.testing.assert_allclose(ax.lines[0].get_ydata(), loss.mean(0) - 0.15)
    assert ax.get_yscale() == "symlog" and ax.get_ylabel() == "loss - L_DNC"
    np.testing.assert_allclose(ax.lines[2].get_ydata(), [0.12 - 0.15] * 2)  # the other reference at its gap
    plt.close(fig)


def test_garrod_fig2_rows_count_dnc_rank_and_convergence():
    """A constructed table: at lam 2^-14 two rank-9 runs, one of them DNC, one converged run."""
    from deepcollapse.experiments.garrod import _fig2_rows

    t = pd.DataFrame({"series": "lam", "log2_lam": [-14.0] * 3 + [-8.0] * 2, "width": 70, "steps": 100,
                      "found_dnc": [True, False, False, False, False], "rank_Z": [9, 9, 6, 5, 5],
                      "nc2_H2": [0.1, 0.7, 0.9, 0.8, 0.8], "nc2_Z": [0.05, 0.6, 0.9, 0.8, 0.8],
                      "converged": [True, False, False, True, True], "converged_at": [60, None, None, 40, 50],
                      "loss": [0.1, 0.1, 0.1, 0.3, 0.3], "diverged": False})
    data = Data(name="x", size="smoke", dir=".", configs=[DUFMConfig(K=10, n=5, L=2, width=70)], table=t)
    rows = {r["log2_lam"]: r for r in _fig2_rows(data)}
    r = rows[-14.0]
    assert (r["runs"], r["converged"], r["DNC"], r["rank K-1"]) == (3, 1, 1, 2)
    assert r["P(DNC), converged"].startswith("1/1") and r["P(rank = K-1)"].startswith("2/3")
    assert r["NC2 max, rank K-1 runs"] == pytest.approx((0.1 + 0.7) / 2)
    assert rows[-8.0]["mean steps"] == pytest.approx(45.0)


def test_init_map_blocks_hold_every_quick_config():
    """dufm-init-map: each quick config falls in the block(s) it was made for, with the grid's counts."""
    from deepcollapse.experiments.maps import _blocks, _configs, _grid
    from deepcollapse.experiments.sukenik import width_init

    g = _grid("quick")
    cfgs = _configs("quick")
    p = pd.DataFrame([{"run_id": c.run_id(), "loss_fn": c.loss, "K": c.K, "width": c.width, "steps": c.steps,
                       "init_scale": c.init_scale, "lr": c.lr} for c in cfgs])
    b = _blocks(p, g)
    assert set(b["run_id"]) == set(p["run_id"])  # no config left out
    count = b.groupby("block")["run_id"].nunique()
    assert count["few"] == len(g["Ks"]) * len(g["few_init"]) * len(g["few_lam"])
    assert count["k10"] == len(g["k10_init"]) * len(g["k10_lr"])
    assert count["ce"] == len(g["ce_init"])
    want = sum(len({*g["width_inits"], width_init(w)}) for w in g["widths"])
    assert count["width"] == want
