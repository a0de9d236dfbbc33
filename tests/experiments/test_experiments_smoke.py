"""Every registered experiment end to end at smoke size: figures, table, summary, experiment.json."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from deepcollapse.experiments import all_experiments, get, reproduce, write_report

MODULES = ("sukenik", "garrod", "zangrando")  # the DUFM/theory/MLP figures (nets: test_nets_figures.py)
IMPLEMENTED = [e.name for e in all_experiments()
               if not e.not_implemented and e.plot.__module__.rsplit(".", 1)[-1] in MODULES]
_done: dict[str, object] = {}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("experiments")


def run_smoke(root, name):
    if name not in _done:
        _done[name] = reproduce(name, root, smoke=True)
    return _done[name]


@pytest.mark.parametrize("name", IMPLEMENTED)
def test_smoke_writes_every_file(root, name):
    d = run_smoke(root, name)
    meta = json.loads((d / "experiment.json").read_text())
    assert meta["name"] == name and meta["size"] == "smoke"
    assert meta["paper"] == get(name).paper and meta["figure"] == get(name).figure
    assert (d / f"{name}.png").stat().st_size > 1000
    assert (d / f"{name}.pdf").read_bytes()[:4] == b"%PDF"
    assert (d / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_parquet(d / "results.parquet")
    assert len(table) > 0
    assert len(pd.read_csv(d / "results.csv")) == len(table)
    summary = (d / "summary.md").read_text()
    assert summary.startswith(f"# {name}") and "smoke" in summary
    cfgs = get(name).configs(False, True)
    assert meta["run_ids"] == [c.run_id() for c in cfgs]
    if cfgs:  # one table row per (point, lane) of the smoke configs, nothing from other sizes
        ids = {c.run_id() for c in cfgs}
        lanes = sum(len(c.seed_list) for c in cfgs)
        points = table.drop_duplicates(["run_id", "lane"])
        assert set(points["run_id"]) == ids and len(points) == lanes


def test_rerun_resumes_finished_points(root):
    name = "sukenik-fig2-dufm"
    run_smoke(root, name)
    d = reproduce(name, root, smoke=True)
    sweep = json.loads((d / "experiment.json").read_text())["sweep"]
    assert sweep["ran"] == 0 and sweep["skipped"] == len(get(name).configs(False, True))


def test_fig5_reuses_fig2_points(root):
    run_smoke(root, "garrod-fig2")
    d = run_smoke(root, "garrod-fig5")
    meta = json.loads((d / "experiment.json").read_text())
    assert meta["sweep"]["ran"] == 0 and meta["points_dir"].endswith("garrod-fig2")
    assert not (d / "points").exists()


def test_sukenik_fig1_ranks_match_the_paper(root):
    """Fig. 1 caption: rank(M4) = r = 5 before ReLU, rank K = 10 after; DNC rank K."""
    d = run_smoke(root, "sukenik-fig1")
    t = pd.read_parquet(d / "results.parquet")

    def mat(name):
        m = t[t["matrix"] == name]
        return m.pivot(index="row", columns="col", values="value").sort_index().to_numpy()

    assert mat("SRG M3").shape == (5, 10)
    assert np.linalg.matrix_rank(mat("SRG M4 (before ReLU)"), tol=1e-8) == 5
    assert np.linalg.matrix_rank(mat("SRG ReLU(M4)"), tol=1e-8) == 10
    assert np.linalg.matrix_rank(mat("DNC M4^T M4"), tol=1e-8) == 10
    m3 = mat("SRG M3")  # each row: r - 1 = 4 equal non-zero entries (degree of K_r)
    for row in m3:
        nz = row[np.abs(row) > 1e-12]
        assert len(nz) == 4 and np.allclose(nz, nz[0])


def test_ratio_table_is_the_closed_form(root):
    from deepcollapse.theory.mse import dnc_loss
    from deepcollapse.theory.srg import srg_loss

    d = run_smoke(root, "sukenik-fig3-ratio")
    t = pd.read_parquet(d / "results.parquet")
    row = t[(t["r"] == 5) & (t["L"] == 4)].iloc[0]
    assert row["K"] == 10
    assert row["loss_dnc"] == pytest.approx(dnc_loss(10, 4, 5, 0.004, 0.004)[0], rel=1e-12)
    assert row["ratio"] == pytest.approx(srg_loss(5, 4, 5, 0.004, 0.004)[0] / row["loss_dnc"], rel=1e-12)


def test_not_implemented_experiment_raises_and_the_cli_exits_2(root, monkeypatch):
    from typer.testing import CliRunner

    from deepcollapse.cli import app
    from deepcollapse.experiments import registry

    monkeypatch.setitem(registry._REGISTRY, "test-missing", registry.Experiment(
        name="test-missing", paper="-", figure="-", description="-", plot=lambda *a: [],
        summarize=lambda d: "", not_implemented="the formula is not in the paper"))
    with pytest.raises(NotImplementedError, match="formula is not in the paper"):
        reproduce("test-missing", root, smoke=True)
    res = CliRunner().invoke(app, ["reproduce", "test-missing", "--out", str(root)])
    assert res.exit_code == 2 and "formula is not in the paper" in res.output


def test_report_gathers_every_experiment(root):
    for name in ("sukenik-fig1", "sukenik-fig3-ratio"):
        run_smoke(root, name)
    h, m = write_report(root)
    page = h.read_text()
    for name in _done:
        assert f'id="{name}"' in page and f"## {name}" in m.read_text()
    assert page.count("data:image/png;base64,") >= len(_done)
    assert "http://" not in page and "https://" not in page
    assert "<table>" in page  # the summaries' pipe tables became HTML tables


def test_unknown_experiment_and_backend():
    with pytest.raises(ValueError, match="unknown experiment"):
        get("no-such-figure")
    with pytest.raises(ValueError, match="backend"):
        reproduce("sukenik-fig1", "/nonexistent", backend="slurm")
