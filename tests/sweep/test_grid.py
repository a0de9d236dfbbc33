"""Sweep grids: expansion in order, one-line errors for bad points and files, grouping into programs."""

import pytest
import yaml

from deepcollapse import sweep
from deepcollapse.config import DUFMConfig, NetConfig

BASE = dict(K=3, n=2, L=2, width=3, steps=40, log_every=20, dtype="float64", seeds=2, lr=0.1)
GRID = {"activation": ["relu", "linear"], "lam_H": [0.01, 0.02, 0.05]}  # 6 points, 2 shapes


def six_points():
    return sweep.expand_grid(BASE, GRID)


def test_expand_grid_is_the_cartesian_product_in_order():
    cs = sweep.expand_grid(BASE, {"lam_H": [0.1, 0.2], "optimizer.name": ["sgd", "adam"], "L": [1, 2, 3]})
    assert len(cs) == 12
    combos = [(c.lam_H, c.optimizer.name, c.L) for c in cs]
    assert combos[:4] == [(0.1, "sgd", 1), (0.1, "sgd", 2), (0.1, "sgd", 3), (0.1, "adam", 1)]
    assert len(set(combos)) == 12
    assert all(c.K == 3 and c.dtype == "float64" for c in cs)
    assert sweep.expand_grid(BASE, {}) == [DUFMConfig(**BASE)]


@pytest.mark.parametrize("grid, match", [
    ({"lam_H": []}, "non-empty list"),
    ({"lam_H": 0.1}, "non-empty list"),
    ({"bogus": [1]}, r"grid point \(bogus=1\) is not a valid config: bogus: Extra inputs"),
    ({"width": [3, 2]}, r"width=2"),
    ({"lam_H": [0.1, float("inf")]}, r"lam_H: Input should be a finite number"),
    ({"n": [True]}, r"n: Input should be a valid integer"),
    ({"K.x": [1]}, "not a mapping"),
])
def test_expand_grid_rejects_bad_grids(grid, match):
    with pytest.raises(ValueError, match=match) as ei:
        sweep.expand_grid(BASE, grid)
    assert "\n" not in str(ei.value) and "errors.pydantic.dev" not in str(ei.value)


def test_plan_groups_by_shape_and_lane_cap():
    cs = six_points()
    groups = sweep.plan_groups(cs)
    assert sorted(map(sorted, groups)) == [[0, 1, 2], [3, 4, 5]]
    for g in groups:
        assert len({cs[i].shape_key() for i in g}) == 1
    # 2 seeds per config: a cap of 4 lanes splits each shape group of 3 configs into 2 + 1
    capped = sweep.plan_groups(cs, max_lanes=4)
    assert sorted(map(sorted, capped)) == [[0, 1], [2], [3, 4], [5]]
    # a config with more seeds than the cap runs alone
    big = DUFMConfig(**{**BASE, "seeds": 5})
    assert sweep.plan_groups([big, cs[0]], max_lanes=4) == [[0], [1]]
    with pytest.raises(ValueError, match="max_lanes"):
        sweep.plan_groups(cs, max_lanes=0)




def test_network_points_are_groups_of_their_own():
    nets = sweep.expand_grid({"kind": "net", "dataset": "synthetic", "n_per_class": 4, "batch_size": None},
                             {"lr": [0.1, 0.2]})
    assert all(isinstance(c, NetConfig) for c in nets)
    assert sweep.plan_groups([*nets, *six_points()[:2]]) == [[0], [1], [2, 3]]


@pytest.mark.parametrize("text, match", [
    ("base: {K: 3\n", "not valid YAML"),
    ("- 1\n- 2\n", "expected a mapping"),
    ("base: {}\ngrids: {lam_H: [0.1]}\n", "unknown keys"),
])
def test_read_sweep_file_errors_name_the_file(tmp_path, text, match):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(text)
    with pytest.raises(ValueError, match=match) as ei:
        sweep.read_sweep_file(spec)
    assert str(spec) in str(ei.value) and "\n" not in str(ei.value)


def test_read_sweep_file(tmp_path):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump({"base": BASE, "grid": GRID}))
    assert sweep.read_sweep_file(spec) == six_points()
