"""Reference losses of a config: the analytic solutions it is compared with."""

import pytest


def test_reference_losses_ce_depend_on_the_geometric_mean_of_the_lams_only():
    """Garrod & Keating Lemma 1: the reduced loss sees (lam_H prod lam_l)^(1/(L+1)) alone."""
    from deepcollapse.reference import reference_losses_for

    a = reference_losses_for(6, 2, [2] * 6, 1e-3, [1e-3, 1e-3], "ce", "linear")
    b = reference_losses_for(6, 2, [2] * 6, 4e-3, [0.5e-3, 0.5e-3], "ce", "linear")
    assert a["L_DNC"] == pytest.approx(b["L_DNC"], rel=1e-12)
    assert a["L_lowrank"] == pytest.approx(b["L_lowrank"], rel=1e-12)
    assert a["L_lowrank"] < a["L_DNC"]  # K=6, L=2: Theorem 1 predicts the pairs win
    m = reference_losses_for(10, 4, [5] * 10, 0.004, 0.004, "mse", "relu")
    assert set(m) == {"L_DNC", "L_SRG"} and m["L_SRG"] < m["L_DNC"]
    assert "L_SRG" not in reference_losses_for(10, 4, [5] * 10, 0.004, 0.004, "mse", "linear")
