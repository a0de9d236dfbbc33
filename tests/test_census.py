"""The census: Wilson intervals against known values, grouping of constructed solutions (classes up
to a class permutation), and one tiny census end to end through `deepcollapse census --json`, whose
construction starts (no noise) stay at their constructions and are named by them."""

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from deepcollapse.census import (
    Solution,
    census_configs,
    group_solutions,
    wilson_interval,
)
from deepcollapse.cli import app
from deepcollapse.config import DUFMConfig
from deepcollapse.theory import classify as C
from deepcollapse.theory.constructions import build

runner = CliRunner()


def test_wilson_interval_known_values_and_symmetry():
    # Wilson (1927) score interval at z = 1.96: 5 of 10 -> (0.2366, 0.7634); 0 of 10 -> (0, 0.2775)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    lo, hi = wilson_interval(3, 17)
    lo2, hi2 = wilson_interval(14, 17)
    assert (lo, hi) == pytest.approx((1 - hi2, 1 - lo2))
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(4, 3)


def _solution(means, structure, loss, origin="random"):
    return Solution(origin=origin, seed=0, loss=loss, fit=0.0, reg=loss, diverged=False, converged=True,
                    structure=structure, closest=structure, distance=0.0,
                    ranks={k: C.rank_of(M) for k, M in means.items()}, means=means)


def _means(cfg, name):
    con = build(cfg, name)
    H, K, n = np.asarray(con.params["H1"]), cfg.K, cfg.n
    out = {}
    for l, W in enumerate(con.params["W"], start=1):
        out[f"H{l}"] = H.reshape(H.shape[0], K, n).mean(-1)
        Z = np.asarray(W) @ H
        H = np.maximum(Z, 0)
    out["Z"] = Z.reshape(K, K, n).mean(-1)
    return out


def test_group_solutions_counts_classes_up_to_a_permutation():
    cfg = DUFMConfig(K=6, n=2, L=3, width=6)
    srg, dnc = _means(cfg, "srg"), _means(cfg, "dnc")
    rng = np.random.default_rng(0)
    p = rng.permutation(6)
    srg_p = {k: M[np.ix_(p, p)] if k == "Z" else M[:, p] for k, M in srg.items()}
    a = rng.standard_normal((6, 6))  # two unrelated "new" solutions of full rank
    b = rng.standard_normal((6, 6))
    new_a, new_b = {k: a for k in dnc}, {k: b for k in dnc}
    new_a_p = {k: a[:, p] for k in dnc}
    sols = [_solution(srg, "srg(4)", 0.3), _solution(srg_p, "srg(4)", 0.31), _solution(dnc, "dnc", 0.2),
            _solution(new_a, "new", 0.5), _solution(new_a_p, "new", 0.52), _solution(new_b, "new", 0.4),
            _solution(dnc, "dnc", 0.2, origin="dnc")]
    classes = group_solutions(sols, by_gram=True)
    got = sorted((c.structure, sorted(c.members)) for c in classes)
    assert got == [("dnc", [2, 6]), ("new", [3, 4]), ("new", [5]), ("srg(4)", [0, 1])]
    # most random-init members first (srg(4) and new_a: 2 each, srg's loss lower), construction starts not counted
    assert [(c.structure, len(c.members)) for c in classes[:2]] == [("srg(4)", 2), ("new", 2)]
    # by ranks alone (the default) the three full-rank "new" solutions are one class
    coarse = sorted((c.structure, sorted(c.members)) for c in group_solutions(sols))
    assert coarse == [("dnc", [2, 6]), ("new", [3, 4, 5]), ("srg(4)", [0, 1])]


def test_census_configs_split_seeds_and_add_construction_starts():
    cfg = DUFMConfig(K=6, n=2, L=3, width=6, steps=100, log_every=50)
    pairs = census_configs(cfg, seeds=5, from_constructions=True, noise=0.01, starts=2, chunk=2)
    rnd = [c for o, c in pairs if o == "random"]
    assert [c.seed_list for c in rnd] == [(0, 1), (2, 3), (4,)]
    assert all(c.converge is not None and c.converge.stop for _, c in pairs)
    starts = {o: c for o, c in pairs if o != "random"}
    assert set(starts) == {"dnc", "srg", "srg-balanced", "srg-relaxed"}
    assert all(c.start.noise == 0.01 and c.seed_list == (0, 1) for c in starts.values())


def test_census_cli_end_to_end(tmp_path):
    d = dict(K=6, n=2, L=2, width=6, lam_H=0.01, lam_W=0.01, lr=0.05, init_scale=0.3, steps=20, log_every=10)
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(d))
    r = runner.invoke(app, ["census", str(p), "--seeds", "3", "--from-constructions", "--starts", "1",
                            "--noise", "0", "--out", str(tmp_path / "runs"), "--json"])
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout.strip().splitlines()[-1])
    cfg = DUFMConfig(**d)
    dnc, srg = build(cfg, "dnc"), build(cfg, "srg")
    assert obj["references"]["L_DNC"] == pytest.approx(dnc.loss)
    assert obj["references"]["loss_best"] == pytest.approx(min(dnc.loss, srg.loss))
    assert obj["n_random"] == 3 and obj["n_from_constructions"] == 2
    assert sum(c["count"] for c in obj["classes"]) + obj["diverged"] == 3
    by_start = {k: c for c in obj["classes"] for k in c["from_constructions"]}
    assert by_start["dnc"]["structure"] == "dnc"
    assert by_start["srg"]["structure"] == "srg(4)"
    assert by_start["srg"]["ranks"]["H1"] == 4
    # DNC is a critical point: its start stays; the SRG point (a = 1, the end of its range) is not one
    # at L = 2: gradient descent at a small step only lowers its loss
    assert by_start["dnc"]["loss_min"] == pytest.approx(dnc.loss, rel=1e-5)
    assert by_start["srg"]["loss_min"] <= srg.loss * (1 + 1e-6)
    for c in obj["classes"]:
        assert set(c) >= {"count", "probability", "loss_min", "loss_mean", "ranks", "structure"}
        assert c["loss_min"] <= c["loss_mean"]
    folder = tmp_path / "runs" / obj["results"].split("/")[-1]
    for name in ("census.json", "representatives.npz", "solutions.csv", "census.png"):
        assert (folder / name).exists(), name
    with np.load(folder / "representatives.npz") as z:
        assert {f"class{i}/H1" for i in range(len(obj["classes"]))} <= set(z.files)
    # read back and regrouped by the same rule: the same classes
    from deepcollapse.census import census_summary, load_census

    back = census_summary(load_census(folder))
    keep = ("structure", "ranks", "count", "loss_min", "from_constructions")
    assert [{k: c[k] for k in keep} for c in back["classes"]] == [{k: c[k] for k in keep} for c in obj["classes"]]


def test_census_cli_bad_input(tmp_path):
    r = runner.invoke(app, ["census", str(tmp_path / "missing.yaml")])
    assert r.exit_code == 2 and "config file not found" in r.output
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump({"K": 3, "width": 4}))
    r = runner.invoke(app, ["census", str(p), "--backend", "slurm"])
    assert r.exit_code == 2 and "--backend" in r.output
    p.write_text(yaml.safe_dump({"kind": "net", "dataset": "synthetic", "n_per_class": 2, "batch_size": None}))
    r = runner.invoke(app, ["census", str(p)])
    assert r.exit_code == 2 and "DUFM config" in r.output


def test_the_distributed_path_reads_its_sweep_points_back(tmp_path, monkeypatch):
    """backend="ray" runs chunks of seeds as sweep points and reads them back; here the sweep runs on
    its local backend (the Ray backend itself is tested in tests/sweep), chunks of 2 seeds."""
    from deepcollapse import census, sweep

    real = sweep.run_sweep
    monkeypatch.setattr(sweep, "run_sweep", lambda configs, out, backend, **kw: real(configs, out, "local", **kw))
    monkeypatch.setattr(census, "RAY_CHUNK", 2)
    cfg = DUFMConfig(K=3, n=2, L=2, width=4, lam_H=0.01, lam_W=0.01, lr=0.1, steps=20, log_every=10)
    far = census.run_census(cfg, seeds=3, backend="ray", out=tmp_path)
    assert len(list((tmp_path / "points").iterdir())) == 2
    near = census.run_census(cfg, seeds=3)
    assert [s.seed for s in far.solutions] == [0, 1, 2]
    np.testing.assert_allclose([s.loss for s in far.solutions], [s.loss for s in near.solutions], rtol=1e-5)
    with pytest.raises(ValueError, match="out"):
        census.run_census(cfg, seeds=3, backend="ray")
