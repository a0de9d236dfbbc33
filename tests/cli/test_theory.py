"""`deepcollapse theory ...` through the main command line: values against independent computations."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from deepcollapse import dufm
from deepcollapse.cli import app
from deepcollapse.theory import landscape as ls
from deepcollapse.theory.ce import theorem1_predicts
from deepcollapse.theory.mse import dnc_solution
from deepcollapse.theory.srg import srg_solution

runner = CliRunner()


def _model_loss(con, K, n, lam):
    """The L-DUFM loss of a construction's explicit parameters (dufm.total_loss, not the closed form)."""
    Y = dufm.one_hot([n] * K)
    L = len(con.params["W"])
    return float(dufm.total_loss(con.params, Y, dufm.hyper(lam, lam, L), "relu", "mse"))


def test_srg_ratio_json_and_out(tmp_path):
    res = runner.invoke(app, ["theory", "srg-ratio", "--r", "4", "--r", "5", "--L", "4", "--lam", "0.004",
                              "--n", "1", "--json", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [(row["r"], row["K"], row["L"]) for row in rows] == [(4, 6, 4), (5, 10, 4)]
    for row in rows:  # the closed forms equal the model's loss at the explicit parameters
        r, K = row["r"], row["K"]
        srg = srg_solution(r, 4, [r, r, r, K], 1, 0.004, 0.004)
        dnc = dnc_solution(K, 4, [K] * 4, 1, 0.004, 0.004)
        assert row["loss_srg"] == pytest.approx(_model_loss(srg, K, 1, 0.004), rel=1e-9)
        assert row["loss_dnc"] == pytest.approx(_model_loss(dnc, K, 1, 0.004), rel=1e-9)
    assert rows[1]["ratio"] < 1  # K = 10, L = 4: the SRG solution beats DNC (Súkeník et al., Fig. 3)
    assert (tmp_path / "srg_ratio.png").stat().st_size > 0
    lines = (tmp_path / "srg_ratio.csv").read_text().strip().splitlines()
    assert lines[0] == "r,K,L,loss_dnc,loss_srg,ratio" and len(lines) == 3
    assert runner.invoke(app, ["theory", "srg-ratio", "--r", "2", "--json"]).exit_code == 2


def test_ce_compare_json():
    res = runner.invoke(app, ["theory", "ce-compare", "--K", "4", "--K", "6", "--L", "2", "--L", "3",
                              "--lam", "1e-3", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [(r["K"], r["L"]) for r in rows] == [(4, 2), (4, 3), (6, 2), (6, 3)]
    for r in rows:
        assert r["theorem1_predicts"] == theorem1_predicts(r["K"], r["L"])
    # Theorem 1: the pairs beat DNC for K >= 6, L >= 2 and for K >= 4, L >= 3, not at (4, 2)
    assert [r["lowrank_wins"] for r in rows] == [False, True, True, True]
    assert runner.invoke(app, ["theory", "ce-compare", "--K", "1", "--json"]).exit_code == 2


def test_hessian_json_and_table():
    args = ["theory", "hessian", "--K", "4", "--L", "3", "--lam", "0.001", "--n", "1", "--width", "4", "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["lam_max"] == pytest.approx(ls.lam_threshold("dnc", 4, 3, 1)[0])
    pts = out["critical_points"]
    assert [p["which"] for p in pts] == ["small", "large"]
    assert [p["n_negative"] for p in pts][1] == 0 and pts[0]["n_negative"] > 0
    assert pts[1]["scale"] == pytest.approx(ls.dnc_critical_scales(4, 3, 1e-3, 1)[1], rel=1e-14)
    assert np.all(np.asarray([p["max_abs_grad"] for p in pts]) < 1e-8)  # critical points
    res = runner.invoke(app, ["theory", "hessian", "--lam", "0.001"])
    assert res.exit_code == 0 and "large" in res.stdout
    res = runner.invoke(app, ["theory", "hessian", "--lam", "1", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["critical_points"] == []
    assert runner.invoke(app, ["theory", "hessian", "--structure", "pairs", "--K", "5"]).exit_code == 2


def test_dimension_json_and_table():
    args = ["theory", "dimension", "--K", "10", "--r", "5", "--L", "2", "--width", "10", "20", "40", "80", "160"]
    res = runner.invoke(app, args + ["--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert [row["width"] for row in out["rows"]] == [10, 20, 40, 80, 160]
    assert out["rows"][0]["dim_dnc"] == 2 * (9 * 10 - 45) and out["rows"][0]["dim_lowrank"] == 2 * (50 - 15)
    assert out["limit"] == pytest.approx(1.8)
    res = runner.invoke(app, args[:-4] + ["--width", "20", "--count", "paper", "--json"])
    assert [row["width"] for row in json.loads(res.stdout)["rows"]] == [10, 20]
    assert json.loads(res.stdout)["rows"][0]["ratio"] < 1
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "1.2857" in res.stdout  # 90 / 70 at d = 10
    assert runner.invoke(app, ["theory", "dimension", "--width", "4"]).exit_code != 0
    assert runner.invoke(app, ["theory", "dimension", "--width", "10", "x"]).exit_code != 0
