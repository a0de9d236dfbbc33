"""Every bad-config case gets a ValidationError naming the field; good configs derive the right shapes."""

import pytest
from pydantic import ValidationError

from deepcollapse.config import DUFMConfig, apply_overrides

BAD = [
    ({"width": 5}, "width", "K=10"),
    ({"width": [30, 30, 5, 30]}, "width", ">= K"),
    ({"width": [30, 30]}, "width", "L=4"),
    ({"lam_H": -0.1}, "lam_H", ">= 0"),
    ({"lam_W": [0.1, -0.1, 0.1, 0.1]}, "lam_W", ">= 0"),
    ({"lam_W": [0.1, 0.1]}, "lam_W", "L=4"),
    ({"activation": "tanh"}, "activation", "relu"),
    ({"loss": "hinge"}, "loss", "mse"),
    ({"class_sizes": [5, 0, 5, 5, 5, 5, 5, 5, 5, 5]}, "class_sizes", ">= 1"),
    ({"class_sizes": [5, 5]}, "class_sizes", "K=10"),
    ({"n": 5, "class_sizes": [5] * 10}, "", "not both"),
    ({"L": 0}, "L", ">= 1"),
    ({"K": 1}, "K", ">= 2"),
    ({"n": 0}, "n", ">= 1"),
    ({"lr": 0}, "lr", "> 0"),
    ({"steps": 0}, "steps", ">= 1"),
    ({"steps": 100, "log_every": 30}, "log_every", "divide"),
    ({"seeds": 0}, "seeds", ">= 1"),
    ({"seeds": [1, 1]}, "seeds", "distinct"),
    ({"rank_rtol": 2.0}, "rank_rtol", "(0, 1)"),
    ({"dtype": "float16"}, "dtype", "float32"),
    ({"optimizer": {"name": "nosuchopt"}}, "optimizer.name", "unknown optax optimizer"),
    ({"widthh": 30}, "widthh", "Extra inputs"),
]


@pytest.mark.parametrize("kwargs, field, text", BAD, ids=[next(iter(b[0])) + str(i) for i, b in enumerate(BAD)])
def test_bad_config_names_field(kwargs, field, text):
    with pytest.raises(ValidationError) as ei:
        DUFMConfig(**kwargs)
    err = ei.value.errors()[0]
    assert ".".join(str(x) for x in err["loc"]) == field or field in err["msg"] or field == ""
    assert text in err["msg"]


def test_derived_views():
    c = DUFMConfig(K=3, class_sizes=[1, 2, 3], L=2, width=[4, 5], lam_W=[0.1, 0.2], seeds=2)
    assert c.sizes == (1, 2, 3) and c.N == 6
    assert c.widths == (4, 5) and c.lams_W == (0.1, 0.2) and c.seed_list == (0, 1)
    assert DUFMConfig(n=7).sizes == (7,) * 10


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
