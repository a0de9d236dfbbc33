"""The real-network experiments (ResNet-20 + MLP head) at smoke size, and their reference losses."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepcollapse.experiments import nets_figures as NF
from deepcollapse.experiments.registry import get
from deepcollapse.experiments.runner import reproduce
from deepcollapse.reference import reference_losses

DATA = Path(os.environ.get("DEEPCOLLAPSE_TEST_DATA", Path(__file__).resolve().parents[3] / "shared" / "datasets"))
NAMES = ["sukenik-fig2-resnet", "garrod-fig3", "garrod-fig4", "garrod-fig7", "garrod-fig8"]


def _have(name: str) -> bool:
    need = {"mnist": DATA / "mnist" / "t10k-images-idx3-ubyte.gz", "cifar10": DATA / "cifar10-jpeg" / "train"}
    return need[name].exists()


# ---- configurations: the papers' stated settings ------------------------------------------------

def test_full_configs_carry_the_papers_settings():
    s, = NF.net_configs("sukenik-fig2-resnet", "full")
    assert (s.dataset, s.L, s.width, s.activation, s.loss, s.reg) == ("cifar10", 4, 64, "relu", "mse", "dufm")
    assert s.lams_W == (0.005,) * 4 and s.lam_H_value == pytest.approx(5e-6) and s.lr == 0.05
    assert len(s.seed_list) == 5 and s.n_per_class == 5000 and s.batch_size == 10_000
    fig3 = {NF.run_label(c): c for c in NF.net_configs("garrod-fig3", "full")}
    assert {(c.dataset, c.L, c.activation) for c in fig3.values()} == {
        ("mnist", 3, "linear"), ("cifar10", 3, "linear"), ("cifar10", 4, "relu")}
    for c in fig3.values():
        assert c.loss == "ce" and c.lam_H_value == pytest.approx(1e-6) and c.lams_W == (5e-3,) * c.L
    for name, ds in (("garrod-fig4", "cifar10"), ("garrod-fig8", "mnist")):
        c, = NF.net_configs(name, "full")
        assert (c.dataset, c.reg, c.weight_decay_value, c.lr) == (ds, "standard", 1e-2, 1e-3)
    c7, = NF.net_configs("garrod-fig7", "full")
    assert (c7.dataset, c7.activation, c7.reg) == ("mnist", "relu", "dufm")


def test_small_sizes_keep_lam_H_times_n():
    for size in ("medium", "quick", "smoke"):
        s, = NF.net_configs("sukenik-fig2-resnet", size)
        assert s.lam_H_value * s.n_per_class == pytest.approx(5e-6 * 5000)
        g, = NF.net_configs("garrod-fig7", size)
        assert g.lam_H_value * g.n_per_class == pytest.approx(1e-6 * 5000)


def test_medium_size_is_the_converging_cpu_setting():
    """--size medium: every run of the five figures on a pixel MLP, full batch, the backbone at its own
    learning rate, with the stated convergence criterion (train accuracy included); listed by `list`."""
    for name in NAMES:
        exp = get(name)
        assert "medium" in exp.sizes and exp.est_seconds["medium"] <= 30 * 60
        for c in NF.net_configs(name, "medium"):
            assert (c.backbone, c.mlp_widths, c.batch_size, c.n_per_class) == ("mlp", (256,), None, 10)
            assert c.backbone_lr < c.lr and c.momentum == 0.9
            assert (c.converge.rtol, c.converge.min_accuracy, c.converge.stop) == (1e-4, 0.99, True)
            assert c.backbone_name == "MLP(256) on pixels"
    # the ResNet sizes keep one learning rate and no criterion, so their run ids are unchanged
    q, = NF.net_configs("garrod-fig7", "quick")
    assert q.backbone_lr is None and q.converge is None and q.backbone == "resnet20"


def test_bad_names_are_rejected():
    with pytest.raises(ValueError, match="name"):
        NF.net_configs("garrod-fig99", "full")
    with pytest.raises(ValueError, match="size"):
        NF.net_configs("garrod-fig3", "huge")


# ---- reference losses ---------------------------------------------------------------------------

def test_mse_references_at_papers_settings():
    """L_SRG < L_DNC at the Fig. 2 (bottom) settings, and L_DNC is the balanced closed form."""
    s, = NF.net_configs("sukenik-fig2-resnet", "full")
    ref = reference_losses(s, 5000)
    assert ref["L_SRG"] < ref["L_DNC"] < 0.5
    # closed form (theory.mse docstring): min_c (c-1)^2/2 + K (L+1)/2 (lam_H n prod lam)^(1/(L+1)) c^(2/(L+1))
    b = 10 * 5 / 2 * (5e-6 * 5000 * 0.005**4) ** (1 / 5)
    c = np.linspace(0, 1, 200001)
    assert ref["L_DNC"] == pytest.approx(np.min((c - 1) ** 2 / 2 + b * c ** 0.4), rel=1e-6)


def test_ce_reference_uses_the_geometric_mean_lam():
    """Unequal lams enter the reduced CE loss through (lam_H prod lam_l)^(1/(L+1)) only: a config with
    every lam equal to that geometric mean gives the same bound."""
    from deepcollapse.config import NetConfig

    g, = NF.net_configs("garrod-fig7", "full")
    ref = reference_losses(g, 5000)
    geo = (1e-6 * 5e-3**4) ** (1 / 5)
    same = NetConfig(dataset="mnist", n_per_class=5000, L=4, loss="ce", lam_H=geo, lam_W=geo)
    assert ref["L_DNC"] == pytest.approx(reference_losses(same, 5000)["L_DNC"], rel=1e-9)
    assert ref["L_lowrank"] < ref["L_DNC"] < math.log(10)  # Theorem 1 regime (K = 10, L = 4)
    st, = NF.net_configs("garrod-fig4", "full")
    assert reference_losses(st, 5000) == {}


# ---- end to end at smoke size ---------------------------------------------------------------------

@pytest.mark.slow  # ~10-20 s of XLA compilation per run on 2 CPU cores
@pytest.mark.parametrize("name", NAMES)
def test_smoke_end_to_end(name, tmp_path, monkeypatch):
    needed = {c.dataset for c in NF.net_configs(name, "smoke")}
    if not all(_have(d) for d in needed):
        pytest.skip(f"shared datasets not found under {DATA}")
    monkeypatch.setenv("DEEPCOLLAPSE_DATA", str(DATA))
    assert get(name).kind == "training"
    out = reproduce(name, tmp_path, smoke=True)
    for f in (f"{name}.png", f"{name}.pdf", "results.parquet", "results.csv", "summary.md", "experiment.json"):
        assert (out / f).exists(), f
    runs = NF.net_configs(name, "smoke")
    for c in runs:  # every network run is a sweep point with the record of a DUFM run
        d = out / "points" / c.run_id()
        assert sorted(f.name for f in d.iterdir() if f.name[0] != ".") == [
            "config.yaml", "history.csv", "history.parquet", "params.npz", "summary.json"]
    table = pd.read_parquet(out / "results.parquet")
    assert list(table["run"]) == [NF.run_label(c) for c in runs for _ in c.seed_list]
    assert (table["n_per_class"] == 2).all() and (table["epochs"] == 1).all()
    assert np.isfinite(table["loss"]).all()
    assert ((table["logit_rank"] >= 0) & (table["logit_rank"] <= 10)).all()
    info = json.loads((out / "experiment.json").read_text())
    assert info["size"] == "smoke" and info["run_ids"] == [c.run_id() for c in runs]
    assert info["settings"]["kind"] == "net"
    summary = (out / "summary.md").read_text()
    assert "final loss" in summary and "logit rank" in summary
    if name == "sukenik-fig2-resnet":
        assert "L_SRG" in summary and table["L_SRG"].notna().all()
    hist = pd.read_parquet(out / "points" / runs[0].run_id() / "history.parquet")
    assert set(hist["epoch"]) == {0, 1}


def test_title_counts_the_runs_that_have_not_converged():
    """The figure says in the image how many runs have not converged (issue 11, item 4)."""
    import pandas as pd

    from deepcollapse.experiments.nets_figures import convergence_title
    from deepcollapse.experiments.registry import Data

    def title(conv):
        table = pd.DataFrame({"converged": conv, "backbone": ["ResNet-20"] * len(conv)})
        return convergence_title(Data(name="garrod-fig7", size="quick", dir=None, configs=[], table=table))

    assert title([True, False, None]).endswith("2/3 runs NOT CONVERGED")
    table = pd.DataFrame({"converged": [True, False], "diverged": [False, True], "backbone": ["ResNet-20"] * 2})
    assert convergence_title(Data(name="garrod-fig3", size="medium", dir=None, configs=[], table=table)).endswith(
        "1/2 runs NOT CONVERGED (1 diverged)")
    setting = pd.DataFrame({"converged": [True], "backbone": ["MLP(256) on pixels"], "n_per_class": [10],
                            "lr": [0.2], "backbone_lr": [0.02], "momentum": [0.9], "batch_size": [100]})
    t = convergence_title(Data(name="garrod-fig7", size="medium", dir=None, configs=[], table=setting))
    assert t == ("garrod-fig7, medium size, MLP(256) on pixels, n = 10/class, batch 100, lr 0.2 (backbone 0.02), "
                 "momentum 0.9: all 1 runs converged")
    assert title([True, True]).endswith("all 2 runs converged") and "ResNet-20" in title([True])


@pytest.mark.slow  # two pixel-MLP runs of a few steps: ~10 s of compilation
def test_a_diverged_run_is_a_row_of_the_figure_not_a_crash(tmp_path, monkeypatch):
    """A run whose loss overflows has no final metrics: its row says diverged (NaN loss, no logits),
    the other runs are reported as usual, and the title and summary name it."""
    if not _have("mnist"):
        pytest.skip(f"shared datasets not found under {DATA}")
    monkeypatch.setenv("DEEPCOLLAPSE_DATA", str(DATA))
    label, kw = NF._garrod_ufm("mnist", 2, "relu", "smoke")
    small = dict(kw, backbone="mlp", mlp_widths=(16,), width=8, epochs=3)
    runs = [(label, small), (label, dict(small, lr=1e30, L=3))]  # the second overflows within 3 steps
    monkeypatch.setitem(NF.RUNS, "garrod-fig7", lambda size: runs)
    out = reproduce("garrod-fig7", tmp_path, smoke=True)
    table = pd.read_parquet(out / "results.parquet").set_index("L")
    assert not table.loc[2, "diverged"] and np.isfinite(table.loc[2, "loss"])
    assert table.loc[3, "diverged"] and 1 <= table.loc[3, "diverged_at"] <= 3
    assert np.isnan(table.loc[3, ["loss", "accuracy", "logit_rank"]].astype(float)).all()
    summary = (out / "summary.md").read_text()
    assert "DIVERGED: 1/1 seed(s)" in summary and summary.count("- final loss:") == 1
    assert (out / "garrod-fig7.png").exists()
