"""NetConfig: mode-dependent defaults and clear validation errors."""

import pytest
from pydantic import ValidationError

from deepcollapse.nets.config import DEFAULT_LAM, NetConfig


def test_dufm_and_standard_defaults():
    c = NetConfig(L=3, lam_W=(1e-3, 2e-3, 3e-3), lam_H=1e-4)
    assert c.K == 10 and c.lams_W == (1e-3, 2e-3, 3e-3) and c.lam_H_value == 1e-4
    assert c.backbone_wd_value == 0.0 and c.weight_decay_value == 0.0
    s = NetConfig(reg="standard", weight_decay=1e-3)
    assert s.weight_decay_value == 1e-3 and s.lam_H_value == 0.0 and s.lams_W == (0.0,) * s.L
    assert NetConfig(reg="standard").weight_decay_value == DEFAULT_LAM
    assert NetConfig(L=2, lam_W=(0.1,)).lams_W == (0.1, 0.1)
    assert NetConfig(dataset="synthetic", synthetic_K=4, n_per_class=3, batch_size=None).N == 12


@pytest.mark.parametrize("kwargs, match", [
    (dict(reg="standard", lam_H=1e-3), "lam_H: only used with reg='dufm'"),
    (dict(reg="dufm", weight_decay=1e-3), "weight_decay: only used with reg='standard'"),
    (dict(L=3, lam_W=(1e-3, 1e-3)), "lam_W: need one value or L=3"),
    (dict(lam_W=-1.0), "lam_W"),
    (dict(n_per_class=2, batch_size=21), "batch_size: at most the subset size N=20"),
    (dict(dataset="synthetic"), "n_per_class"),
    (dict(lr=0.0), "learning rate"),
    (dict(momentum=1.0), "momentum"),
    (dict(dataset="imagenet"), "dataset"),
    (dict(channels=(16, 8, 64)), "non-decreasing"),
])
def test_validation_errors(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        NetConfig(**kwargs)
