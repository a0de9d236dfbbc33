"""Configs: every bad field is refused in one line naming it; good configs derive the right shapes;
run ids are content hashes that ignore placement; `parse_config` reads both kinds."""

import math

import pytest
from pydantic import ValidationError

from deepcollapse.config import (DEFAULT_LAM, DUFMConfig, NetConfig, apply_overrides, config_error_line,
                                 parse_config)

BAD = [
    ({"width": 5}, "width", "K=10"),
    ({"width": [30, 30, 5, 30]}, "width", ">= K"),
    ({"width": [30, 30]}, "width", "L=4"),
    ({"lam_H": -0.1}, "lam_H", "greater than or equal to 0"),
    ({"lam_W": [0.1, -0.1, 0.1, 0.1]}, "lam_W", "greater than or equal to 0"),
    ({"lam_W": [0.1, 0.1]}, "lam_W", "L=4"),
    ({"activation": "tanh"}, "activation", "relu"),
    ({"loss": "hinge"}, "loss", "mse"),
    ({"class_sizes": [5, 0, 5, 5, 5, 5, 5, 5, 5, 5]}, "class_sizes", "greater than or equal to 1"),
    ({"class_sizes": [5, 5]}, "class_sizes", "K=10"),
    ({"n": 5, "class_sizes": [5] * 10}, "", "not both"),
    ({"L": 0}, "L", "greater than or equal to 1"),
    ({"K": 1}, "K", "greater than or equal to 2"),
    ({"n": 0}, "n", "greater than or equal to 1"),
    ({"lr": 0}, "lr", "greater than 0"),
    ({"steps": 0}, "steps", "greater than or equal to 1"),
    ({"steps": 100, "log_every": 30}, "log_every", "divide"),
    ({"seeds": 0}, "seeds", "greater than or equal to 1"),
    ({"seeds": [1, 1]}, "seeds", "distinct"),
    ({"rank_rtol": 2.0}, "rank_rtol", "less than 1"),
    ({"dtype": "float16"}, "dtype", "float32"),
    ({"optimizer": {"name": "nosuchopt"}}, "optimizer.name", "unknown optax optimizer"),
    ({"widthh": 30}, "widthh", "Extra inputs"),
    # every float finite, every int strict
    ({"lam_H": math.inf}, "lam_H", "finite"),
    ({"lam_W": math.inf}, "lam_W", "finite"),
    ({"lr": math.inf}, "lr", "finite"),
    ({"init_scale": math.inf}, "init_scale", "finite"),
    ({"lr": math.nan}, "lr", "finite"),
    ({"n": True}, "n", "valid integer"),
    ({"K": 10.0}, "K", "valid integer"),
    ({"seeds": [0, True]}, "seeds", "valid integer"),
    # the optimizer is checked against Optax before anything runs
    ({"optimizer": {"name": "apply_updates"}}, "optimizer.name", "unknown optax optimizer"),
    ({"optimizer": {"name": "__class__"}}, "optimizer.name", "unknown optax optimizer"),
    ({"optimizer": {"name": "sgd", "kwargs": {"foo": 1}}}, "optimizer", "takes no keyword 'foo'"),
    ({"optimizer": {"name": "adam", "kwargs": {"learning_rate": 1}}}, "optimizer", "learning rate is `lr`"),
    ({"converge": {"window": 250}}, "converge.window", "multiple of log_every=500"),
    ({"converge": {"min_accuracy": 0.99}}, "converge.min_accuracy", "only for network runs"),
    ({"converge": {"rtol": 0}}, "converge.rtol", "greater than 0"),
]


@pytest.mark.parametrize("kwargs, field, text", BAD, ids=[next(iter(b[0])) + str(i) for i, b in enumerate(BAD)])
def test_bad_config_names_field(kwargs, field, text):
    with pytest.raises(ValidationError) as ei:
        DUFMConfig(**kwargs)
    line = config_error_line(ei.value)
    assert "\n" not in line and "errors.pydantic.dev" not in line
    if field:
        assert line.startswith(field) or f"{field}:" in line, line
    assert text in line, line


def test_good_optimizer_kwargs_pass():
    assert DUFMConfig(optimizer={"name": "adam", "kwargs": {"b1": 0.8}}).optimizer.kwargs == {"b1": 0.8}
    assert DUFMConfig(optimizer={"name": "sgd", "kwargs": {"momentum": 0.9}}).optimizer.name == "sgd"


def test_derived_views():
    c = DUFMConfig(K=3, class_sizes=[1, 2, 3], L=2, width=[4, 5], lam_W=[0.1, 0.2], seeds=2)
    assert c.sizes == (1, 2, 3) and c.N == 6
    assert c.widths == (4, 5) and c.lams_W == (0.1, 0.2) and c.seed_list == (0, 1)
    assert DUFMConfig(n=7).sizes == (7,) * 10
    assert DUFMConfig(lam_W=0).lams_W == (0.0,) * 4
    cols = c.lane_columns()
    assert math.isnan(cols.pop("lam_W"))  # the layers differ: per-layer columns
    assert cols == {"lam_H": 0.004, "lam_W1": 0.1, "lam_W2": 0.2, "lr": 0.5, "init_scale": 0.3}
    assert DUFMConfig(lam_W=0.01).lane_columns()["lam_W"] == 0.01


def test_shape_key_ignores_lane_fields_and_run_id_does_not():
    a = DUFMConfig(lam_H=0.1, lr=0.5, seeds=3)
    b = DUFMConfig(lam_H=0.2, lr=0.1, seeds=5, init_scale=0.2)
    c = DUFMConfig(width=31)
    assert a.shape_key() == b.shape_key() != c.shape_key()
    assert a.run_id() != b.run_id()
    assert a.run_id() == DUFMConfig(lam_H=0.1, lr=0.5, seeds=3).run_id()


def test_overrides_parse_yaml_values():
    d = apply_overrides({"K": 10, "optimizer": {"name": "sgd"}},
                        ["K=4", "width=[4, 5]", "optimizer.name=adam", "lam_H=1e-3"])
    assert d == {"K": 4, "width": [4, 5], "optimizer": {"name": "adam"}, "lam_H": 1e-3}
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides({}, ["K"])


def test_parse_config_reads_both_kinds_and_round_trips():
    d = DUFMConfig(K=3, n=2, L=2, width=4)
    assert parse_config(d.to_dict()) == d and parse_config({**d.to_dict(), "kind": "dufm"}) == d
    n = NetConfig(dataset="synthetic", synthetic_K=3, n_per_class=4, batch_size=None)
    assert parse_config(n.to_dict()) == n and n.to_dict()["kind"] == "net"
    with pytest.raises(ValueError, match="kind"):
        parse_config({"kind": "transformer"})


# ---- NetConfig --------------------------------------------------------------------------------
def test_net_dufm_and_standard_defaults():
    c = NetConfig(L=3, lam_W=(1e-3, 2e-3, 3e-3), lam_H=1e-4)
    assert c.K == 10 and c.lams_W == (1e-3, 2e-3, 3e-3) and c.lam_H_value == 1e-4
    assert c.backbone_wd_value == 0.0 and c.weight_decay_value == 0.0
    s = NetConfig(reg="standard", weight_decay=1e-3)
    assert s.weight_decay_value == 1e-3 and s.lam_H_value == 0.0 and s.lams_W == (0.0,) * s.L
    assert NetConfig(reg="standard").weight_decay_value == DEFAULT_LAM
    assert NetConfig(L=2, lam_W=(0.1,)).lams_W == (0.1, 0.1)
    assert NetConfig(dataset="synthetic", synthetic_K=4, n_per_class=3, batch_size=None).N == 12


def test_net_placement_is_not_part_of_the_run_id():
    a = NetConfig(dataset="synthetic", n_per_class=20)
    b = NetConfig(dataset="synthetic", n_per_class=20, num_gpus=1, num_cpus=4, data_root="/elsewhere")
    assert a.run_id() == b.run_id() == a.shape_key()
    assert b.resources() == {"num_cpus": 4, "num_gpus": 1}
    assert a.run_id() != NetConfig(dataset="synthetic", n_per_class=20, lr=0.1).run_id()


@pytest.mark.parametrize("kwargs, match", [
    (dict(reg="standard", lam_H=1e-3), "lam_H: only used with reg='dufm'"),
    (dict(reg="dufm", weight_decay=1e-3), "weight_decay: only used with reg='standard'"),
    (dict(L=3, lam_W=(1e-3, 1e-3)), "lam_W: need one value or L=3"),
    (dict(lam_W=-1.0), "lam_W"),
    (dict(n_per_class=2, batch_size=21), "batch_size: at most the subset size N=20"),
    (dict(dataset="synthetic"), "n_per_class"),
    (dict(lr=0.0), "lr"),
    (dict(lr=math.inf), "finite"),
    (dict(momentum=1.0), "momentum"),
    (dict(dataset="imagenet"), "dataset"),
    (dict(channels=(16, 8, 64)), "non-decreasing"),
    (dict(epochs=True), "epochs"),
])
def test_net_validation_errors(kwargs, match):
    with pytest.raises(ValidationError) as ei:
        NetConfig(**kwargs)
    assert match in config_error_line(ei.value)
