"""plots: the run figure's title says what the image cannot show (diverged, unfinished, unconverged)."""

from types import SimpleNamespace

import numpy as np

from deepcollapse.config import DUFMConfig
from deepcollapse.plots import run_title


def _res(rows, complete=True):
    return SimpleNamespace(configs=[DUFMConfig(K=3, n=2, L=2, width=4, seeds=len(rows))], summary=rows,
                           complete=complete)


def test_title_names_unconverged_seeds_but_not_converged_or_diverged_ones():
    rows = [{"config": 0, "diverged": False, "converged": True},
            {"config": 0, "diverged": False, "converged": False},
            {"config": 0, "diverged": True, "converged": False}]
    title = run_title(_res(rows), shown=2, n_div=1)
    assert "1/2 seeds NOT CONVERGED" in title and "(1 diverged, not shown)" in title
    assert "NOT CONVERGED" not in run_title(_res(rows[:1]), shown=1, n_div=0)


def test_unfinished_run_says_so_instead():
    rows = [{"config": 0, "diverged": False, "converged": False}]
    title = run_title(_res(rows, complete=False), shown=1, n_div=0)
    assert title.endswith("NOT FINISHED") and "CONVERGED" not in title


def test_log_axes_of_the_run_figure_label_ticks_with_their_values_in_plain_text():
    import matplotlib.pyplot as plt

    from deepcollapse.plots import plain_log_axis

    for lo, hi in ((0.15, 7.0), (1e-5, 3.0)):  # a short span labels minor ticks too; a long one decades only
        fig, ax = plt.subplots()
        ax.plot([0, 1], [lo, hi])
        plain_log_axis(ax)
        fig.canvas.draw()
        ticks = [(t.get_loc(), t.label1.get_text()) for t in ax.yaxis.get_major_ticks() + ax.yaxis.get_minor_ticks()
                 if t.label1.get_visible() and t.label1.get_text()]
        ymin, ymax = ax.get_ylim()
        shown = [(loc, text) for loc, text in ticks if ymin <= loc <= ymax]
        assert shown and not any("$" in text for _, text in shown)  # no mathtext
        for loc, text in shown:
            assert float(text) == float(f"{loc:g}")
        assert any(float(text) == 1.0 for _, text in shown)
        if hi / lo < 100:
            assert any(float(text) == 0.2 for _, text in shown)  # a minor tick, labelled
        else:
            assert all(abs(np.log10(float(text)) - round(np.log10(float(text)))) < 1e-12 for _, text in shown)
        plt.close(fig)
