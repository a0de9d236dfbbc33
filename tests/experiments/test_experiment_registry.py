"""Registry, CLI commands, Markdown conversion, plotting bands and the fixed-data MLP loop."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from deepcollapse.experiments import all_experiments, get
from deepcollapse.experiments import commands, common, registry
from deepcollapse.experiments.report import markdown_to_html

NAMES = {"sukenik-fig1", "sukenik-fig2-dufm", "sukenik-fig3-ratio", "sukenik-fig3-rank-vs-wd",
         "sukenik-fig3-pdnc-vs-width", "sukenik-fig5", "sukenik-fig6", "garrod-fig1", "garrod-fig2",
         "garrod-fig5", "garrod-fig6", "zangrando-fig1", "zangrando-fig2", "zangrando-fig3", "zangrando-fig5"}


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """test app"""

    commands.register(app)
    return app


def test_every_brief_figure_is_registered():
    assert NAMES <= {e.name for e in all_experiments()}
    for e in all_experiments():
        assert e.paper and e.figure and e.description
        assert 0 <= e.est_seconds_quick <= e.est_seconds_full


def test_sizes_shrink_the_sweeps():
    """smoke <= quick <= full in lanes x steps, for every training experiment."""
    for e in all_experiments():
        if e.kind != "training":
            continue
        work = [sum(len(c.seed_list) * c.steps for c in e.configs(q, s)) for q, s in
                ((False, True), (True, False), (False, False))]
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
    assert registry.size_name(quick=True, smoke=True) == "smoke" and registry.size_name() == "full"


def test_cli_list_json_and_table():
    runner = CliRunner()
    app = make_app()
    res = runner.invoke(app, ["list", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert NAMES <= {r["name"] for r in rows}
    assert {r["kind"] for r in rows if r["name"] == "zangrando-fig2"} == {"training"}
    res = runner.invoke(app, ["list"])
    assert res.exit_code == 0 and "sukenik-fig2-dufm" in res.output


def test_cli_reproduce_and_report(tmp_path):
    runner = CliRunner()
    app = make_app()
    res = runner.invoke(app, ["reproduce", "sukenik-fig3-ratio", "--smoke", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "sukenik-fig3-ratio" / "sukenik-fig3-ratio.png").exists()
    res = runner.invoke(app, ["report", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "sukenik-fig3-ratio" in (tmp_path / "report.md").read_text()
    assert runner.invoke(app, ["reproduce", "no-such-figure", "--out", str(tmp_path)]).exit_code != 0
    bad_backend = ["reproduce", "sukenik-fig1", "--backend", "slurm", "--out", str(tmp_path)]
    assert runner.invoke(app, bad_backend).exit_code != 0
    assert runner.invoke(app, ["report", "--out", str(tmp_path / "empty")]).exit_code != 0


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
