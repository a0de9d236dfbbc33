"""The registry: every figure registered, sizes parsed in one place and shrinking the work, settings
derived from the configs; the CLI's list/reproduce/report; Markdown conversion; plotting bands."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from deepcollapse.cli import app
from deepcollapse.config import DUFMConfig
from deepcollapse.experiments import all_experiments, common, get, registry
from deepcollapse.experiments.report import markdown_to_html

NAMES = {"sukenik-fig1", "sukenik-fig2-dufm", "sukenik-fig3-ratio", "sukenik-fig3-rank-vs-wd",
         "sukenik-fig3-pdnc-vs-width", "sukenik-fig5", "sukenik-fig6", "garrod-fig1", "garrod-fig2",
         "garrod-fig5", "garrod-fig6", "zangrando-fig1", "zangrando-fig2", "zangrando-fig3", "zangrando-fig5",
         "sukenik-fig2-resnet", "garrod-fig3", "garrod-fig4", "garrod-fig7", "garrod-fig8"}


def test_every_brief_figure_is_registered():
    assert NAMES <= {e.name for e in all_experiments()}
    for e in all_experiments():
        assert e.paper and e.figure and e.description and e.choices
        assert set(e.est_seconds) == set(e.sizes)
        assert 0 <= e.est_seconds["quick"] <= e.est_seconds["full"]


def test_sizes_shrink_the_sweeps():
    """smoke <= quick <= full in lanes x steps, for every training experiment."""
    for e in all_experiments():
        if e.kind != "training":
            continue
        def work(c):
            return len(c.seed_list) * (c.steps if c.kind == "dufm" else c.epochs * (c.n_per_class or 5000))

        work = [sum(work(c) for c in e.configs(size)) for size in ("smoke", "quick", "full")]
        assert work[0] < work[1] <= work[2], e.name


def test_register_validates_and_replaces():
    with pytest.raises(ValueError, match="name"):
        registry.add(registry.Experiment(name="Bad Name", paper="p", figure="f", description="d",
                                         plot=lambda o, d: [], summarize=lambda d: ""))
    exp = registry.Experiment(name="tmp-test-exp", paper="p", figure="f", description="d",
                              plot=lambda o, d: [], summarize=lambda d: "")
    registry.add(exp)
    try:
        assert get("tmp-test-exp") is exp and exp.kind == "theory"
    finally:
        registry._REGISTRY.pop("tmp-test-exp")
    assert registry.parse_size() == "full" and registry.parse_size(quick=True) == "quick"
    assert registry.parse_size("medium") == registry.parse_size("medium", quick=False) == "medium"
    with pytest.raises(ValueError, match="one size"):
        registry.parse_size(quick=True, smoke=True)
    with pytest.raises(ValueError, match="size must be one of"):
        registry.parse_size("huge")
    with pytest.raises(ValueError, match="sizes"):
        registry.add(registry.Experiment(name="x", paper="p", figure="f", description="d", plot=lambda o, d: [],
                                         summarize=lambda d: "", sizes=("tiny",)))


def test_settings_are_derived_from_the_configs():
    cs = [DUFMConfig(K=3, n=2, L=2, width=4, lam_H=lam, seeds=2) for lam in (0.1, 0.01)]
    d = registry.describe_configs(cs)
    assert d["varied"] == {"lam_H": [0.01, 0.1]} and d["fixed"]["K"] == 3 and d["fixed"]["width"] == 4
    assert d["kind"] == "dufm" and d["n_configs"] == 2 and registry.describe_configs([]) == {}


def test_cli_list_json_and_table():
    runner = CliRunner()
    res = runner.invoke(app, ["list", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert NAMES <= {r["name"] for r in rows}
    assert {r["kind"] for r in rows if r["name"] == "zangrando-fig2"} == {"training"}
    res = runner.invoke(app, ["list"])
    assert res.exit_code == 0 and "sukenik-fig2-dufm" in res.output


def test_cli_reproduce_and_report(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["reproduce", "sukenik-fig3-ratio", "--size", "smoke", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "sukenik-fig3-ratio" / "sukenik-fig3-ratio.png").exists()
    res = runner.invoke(app, ["report", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "sukenik-fig3-ratio" in (tmp_path / "report.md").read_text()
    assert runner.invoke(app, ["reproduce", "no-such-figure", "--out", str(tmp_path)]).exit_code != 0
    bad_backend = ["reproduce", "sukenik-fig1", "--backend", "slurm", "--out", str(tmp_path)]
    assert runner.invoke(app, bad_backend).exit_code != 0
    assert runner.invoke(app, ["report", "--out", str(tmp_path / "empty")]).exit_code != 0
    assert runner.invoke(app, ["reproduce", "sukenik-fig1", "--size", "medium"]).exit_code == 2  # not a size it has
    meta = json.loads((tmp_path / "sukenik-fig3-ratio" / "experiment.json").read_text())
    assert meta["params"]["L"] == [3, 4] and meta["choices"] == get("sukenik-fig3-ratio").choices


def test_markdown_to_html_tables_lists_headings():
    h = markdown_to_html("## Head\n\ntext **bold** `code`\n\n- a\n- b\n\n| x | y |\n| --- | --- |\n| 1 | <2> |\n")
    assert "<h4>Head</h4>" in h and "<b>bold</b>" in h and "<code>code</code>" in h
    assert h.count("<li>") == 2 and "<th>x</th>" in h and "<td>&lt;2&gt;</td>" in h


def test_log_band_is_the_geometric_mean():
    plt = common.plt()
    fig, ax = plt.subplots()
    v = np.array([[1.0, 10.0], [100.0, 1000.0]])
    line = common.band(ax, [0, 1], v, log=True)
    np.testing.assert_allclose(line.get_ydata(), [10.0, 100.0])
    line = common.band(ax, [0, 1], np.array([[1.0, np.nan], [3.0, 5.0]]))
    np.testing.assert_allclose(line.get_ydata(), [2.0, 5.0])
    plt.close(fig)


def test_block_ratio_of_collapsed_and_spread_features():
    from deepcollapse.experiments.zangrando import _block_ratio

    K, n = 3, 4
    Z = np.kron(np.eye(K), np.ones((1, n)))  # collapsed, orthogonal class means
    assert _block_ratio(Z.T @ Z, K, n) == pytest.approx(0.0, abs=1e-14)
    Zr = np.random.default_rng(0).standard_normal((5, K * n))
    assert 0.2 < _block_ratio(Zr.T @ Zr, K, n) < 1.0
    assert _block_ratio(np.ones((K * n, K * n)), K, n) == pytest.approx(1 - 1 / K)
