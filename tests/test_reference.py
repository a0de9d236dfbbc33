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


def _fresh_config(lam):
    """A config no other test asked `best_construction` about (the cache is per process)."""
    from deepcollapse.config import DUFMConfig

    return DUFMConfig(K=10, n=2, L=3, width=12, lam_H=lam, lam_W=lam)


def test_best_construction_takes_a_prefetched_result_instead_of_building():
    from concurrent.futures import Future

    from deepcollapse.reference import best_construction, prefetch_best_construction

    cfg = _fresh_config(0.00123)
    future = Future()
    future.set_result(("sent-by-the-helper", 0.5))
    prefetch_best_construction(cfg.model_copy(update={"seeds": 7, "lr": 0.1}), future)  # the same key
    assert best_construction(cfg) == ("sent-by-the-helper", 0.5)
    assert best_construction(cfg) == ("sent-by-the-helper", 0.5)  # cached, the future is not asked again


def test_a_failed_or_cancelled_prefetch_is_built_here():
    from concurrent.futures import Future

    from deepcollapse.reference import _best_construction, _best_key, best_construction, prefetch_best_construction
    from deepcollapse.theory.constructions import known_constructions

    failed, cancelled = _fresh_config(0.00234), _fresh_config(0.00345)
    f = Future()
    f.set_exception(RuntimeError("the helper died"))
    prefetch_best_construction(failed, f)
    c = Future()
    c.cancel()
    prefetch_best_construction(cancelled, c)
    for cfg in (failed, cancelled):
        name, loss = best_construction(cfg)
        assert (name, loss) == _best_construction(_best_key(cfg, None))
        assert name in known_constructions(_best_key(cfg, None)) and loss > 0


def test_run_references_are_the_reference_losses_of_the_first_config():
    from types import SimpleNamespace

    from deepcollapse.config import DUFMConfig
    from deepcollapse.reference import reference_losses, run_references

    cfg = DUFMConfig(K=10, n=5, L=4, width=30, lam_H=0.004, lam_W=0.004)
    res = SimpleNamespace(configs=[cfg, cfg.model_copy(update={"lam_H": 0.001})], summary=[{}])
    assert run_references(res) == reference_losses(cfg) and set(run_references(res)) == {"L_DNC", "L_SRG"}
