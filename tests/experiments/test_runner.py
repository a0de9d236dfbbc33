"""`reproduce`: every DUFM/theory/MLP experiment end to end at smoke size (figures, table, summary,
experiment.json), resumption, shared points, the report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from deepcollapse.experiments import all_experiments, get, reproduce, write_report

MODULES = ("sukenik", "garrod", "zangrando", "maps")  # the DUFM/theory/MLP figures (nets: test_nets_figures.py)
IMPLEMENTED = [e.name for e in all_experiments() if e.plot.__module__.rsplit(".", 1)[-1] in MODULES]
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
    cfgs = get(name).configs("smoke")
    assert meta["run_ids"] == [c.run_id() for c in cfgs]
    assert meta["choices"] == get(name).choices and meta["choices"]
    if cfgs:  # the settings are those of the configs
        for k, v in meta["settings"]["fixed"].items():
            assert all(c.to_dict()[k] == v for c in cfgs), k
    if cfgs and "run_id" in table:  # one table row per (point, lane) of the smoke configs, nothing from other sizes
        ids = {c.run_id() for c in cfgs}
        lanes = sum(len(c.seed_list) for c in cfgs)
        points = table.drop_duplicates(["run_id", "lane"])
        assert set(points["run_id"]) == ids and len(points) == lanes
    elif cfgs:  # a table of cells over the runs (sukenik-fig3-ratio, dufm-init-map): every lane counted once or more
        runs = table["gd_runs"].sum() if "gd_runs" in table else table["runs"].sum()
        assert runs >= sum(len(c.seed_list) for c in cfgs)


def test_rerun_resumes_finished_points(root):
    name = "sukenik-fig2-dufm"
    run_smoke(root, name)
    d = reproduce(name, root, smoke=True)
    sweep = json.loads((d / "experiment.json").read_text())["sweep"]
    assert sweep["ran"] == 0 and sweep["skipped"] == len(get(name).configs("smoke"))


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


def test_ratio_table_equals_the_model_loss_of_the_constructions(root):
    """The closed-form L_SRG and L_DNC of the table equal the L-DUFM loss (dufm.total_loss) of the
    explicit SRG and DNC parameters, an independent computation; L = 3 stays above 1, L = 4 below."""
    from deepcollapse import dufm
    from deepcollapse.theory.mse import dnc_solution
    from deepcollapse.theory.srg import srg_solution

    d = run_smoke(root, "sukenik-fig3-ratio")
    t = pd.read_parquet(d / "results.parquet")
    params = json.loads((d / "experiment.json").read_text())["params"]
    for (r, L), row in t.set_index(["r", "L"]).iterrows():
        K, lam, n = r * (r - 1) // 2, params["lam"], params["n"]
        Y, hyp = dufm.one_hot([n] * K), dufm.hyper(lam, lam, L)
        srg = srg_solution(r, L, [r] * (L - 1) + [K], n, lam, lam)
        dnc = dnc_solution(K, L, [K] * L, n, lam, lam)
        assert row["loss_srg"] == pytest.approx(float(dufm.total_loss(srg.params, Y, hyp, "relu", "mse")), rel=1e-9)
        assert row["loss_dnc"] == pytest.approx(float(dufm.total_loss(dnc.params, Y, hyp, "relu", "mse")), rel=1e-9)
    assert (t[t["L"] == 3]["ratio"] > 1).all() and (t[t["L"] == 4]["ratio"] < 1).all()


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
