"""plots: the run figure's title says what the image cannot show (diverged, unfinished, unconverged)."""

from types import SimpleNamespace

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
