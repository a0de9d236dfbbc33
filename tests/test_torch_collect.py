"""deepcollapse.torch.collect: streamed per-layer statistics of a PyTorch model equal the metrics of
its features computed all at once; hooks are safe with in-place activations; the model is left as it
was found."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from deepcollapse import metrics
from deepcollapse.torch import collect, find_modules, pool_features

K = 3


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(inplace=True), nn.Linear(8, 6), nn.ReLU(inplace=True),
                         nn.Linear(6, K)).double()


def _data(N=41, seed=0, shape=(5,)):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(N) % K
    x = torch.randn(N, *shape, generator=g, dtype=torch.float64) + y.view(-1, *[1] * len(shape)).double()
    return x, y


def _loader(x, y, batch_size=8):
    ds = torch.utils.data.TensorDataset(x, y)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False)


def _manual_features(model, x):
    """Every layer's output, computed by hand (no hooks)."""
    outs, h = [], x
    with torch.no_grad():
        for m in model:
            h = m(h.clone())
            outs.append(h.clone())
    return outs


def test_streamed_metrics_equal_all_at_once_and_inplace_relu_is_safe():
    model = _mlp()
    x, y = _data()
    stats = collect(model, _loader(x, y), ["0", "1", "2", "4"], K, progress=False)
    feats = _manual_features(model, x)
    got = stats.metrics()
    yj = y.numpy()
    for name, idx in (("0", 0), ("1", 1), ("2", 2), ("4", 4)):
        H = feats[idx].numpy().T  # d x N
        want = metrics.layer_summary(H, yj, K)
        m = got[name]
        np.testing.assert_allclose(m["nc1"], want["nc1"], rtol=1e-9, err_msg=name)
        np.testing.assert_allclose(m["dnc1"], want["nc1_trace"], rtol=1e-9, err_msg=name)
        np.testing.assert_allclose(m["tcv"], want["tcv"], rtol=1e-9, err_msg=name)
        np.testing.assert_allclose(m["tcv_norm"], want["tcv_norm"], rtol=1e-9, err_msg=name)
        np.testing.assert_allclose(m["nc2_etf"], want["nc2_etf"], rtol=1e-9, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(m["nc2_orth"], want["nc2_orth"], rtol=1e-9, err_msg=name)
        assert int(m["rank_means"]) == int(want["rank_means"])
        np.testing.assert_allclose(stats.layers[name].finalize().means, metrics.class_means(H, yj, K), rtol=1e-12)
    # layer "0" is followed by an in-place ReLU: its statistics must be of the pre-activations
    assert float(np.min(stats.layers["0"].finalize().means)) < 0
    assert stats.info["N"] == x.shape[0] and stats.info["batches"] == 6


def test_capture_input_reads_before_an_inplace_activation():
    model = _mlp(1)
    x, y = _data(seed=1)
    a = collect(model, _loader(x, y), ["0"], K, progress=False)
    b = collect(model, _loader(x, y), ["1"], K, capture="input", progress=False)
    np.testing.assert_allclose(b.layers["1"].class_sums, a.layers["0"].class_sums, rtol=1e-13)
    np.testing.assert_allclose(b.layers["1"].second_moment, a.layers["0"].second_moment, rtol=1e-13)


def test_training_flags_are_restored_also_after_an_error():
    model = _mlp()
    model.train()
    model[2].eval()
    before = [m.training for m in model.modules()]
    x, y = _data()
    collect(model, _loader(x, y), ["2"], K, progress=False)
    assert [m.training for m in model.modules()] == before
    assert all(not m._forward_hooks for m in model.modules())
    bad = _loader(x, torch.full_like(y, K))  # labels out of range
    with pytest.raises(ValueError, match="labels must lie in 0..2"):
        collect(model, bad, ["2"], K, progress=False)
    assert [m.training for m in model.modules()] == before
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_eval_mode_during_collection():
    """BatchNorm in eval mode: the statistics are those of the running averages, not of the batch."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4)).double()
    model[1].running_mean.fill_(3.0)
    model.train()
    x, y = _data()
    st = collect(model, _loader(x, y), ["1"], K, progress=False)
    with torch.no_grad():
        want = ((model[0](x) - 3.0) / torch.sqrt(torch.tensor(1.0 + 1e-5, dtype=torch.float64))).numpy().T
    np.testing.assert_allclose(st.layers["1"].finalize().means, metrics.class_means(want, y.numpy(), K), rtol=1e-10)
    assert model.training


def test_unknown_layer_lists_the_closest_names():
    model = nn.Sequential()
    model.add_module("block1", nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()))
    model.add_module("block2", nn.Sequential(nn.Conv2d(4, 4, 3), nn.ReLU()))
    with pytest.raises(ValueError, match=r"'block1\.00'.*closest: block1\.0"):
        find_modules(model, ["block1.00"])
    with pytest.raises(ValueError, match="more than once"):
        find_modules(model, ["block1", "block1"])
    assert find_modules(model, ["block2.1", "output"])["output"] is model


def test_pools_and_max_batches():
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1)).double()
    x, y = _data(N=20, shape=(2, 4, 4))
    with torch.no_grad():
        fmap = conv(x)
    for pool, feats in (("avg", fmap.mean(dim=(2, 3))), ("flatten", fmap.flatten(1)),
                        (lambda t: t[:, :, 0, 0], fmap[:, :, 0, 0])):
        st = collect(conv, _loader(x, y, 5), ["0"], K, pool=pool, progress=False)
        np.testing.assert_allclose(st.layers["0"].class_sums, feats.numpy().T @ np.eye(K)[y.numpy()],
                                   rtol=1e-12, atol=1e-12)
    st = collect(conv, _loader(x, y, 5), ["output"], K, max_batches=2, progress=False)
    assert int(np.sum(st.layers["output"].counts)) == 10
    assert pool_features(torch.zeros(4, 7)).shape == (4, 7)
    with pytest.raises(ValueError, match="pool must be one of"):
        pool_features(torch.zeros(4, 7, 2), "max")


def test_nc3_against_the_classifier_and_covariance_switch():
    model = _mlp(2)
    x, y = _data(seed=2)
    st = collect(model, _loader(x, y), ["3"], K, classifier="4", covariance=False, progress=False)
    assert list(st.layers) == ["3", "4:input"]
    m = st.metrics()
    M = st.layers["4:input"].finalize().means
    np.testing.assert_allclose(m["4:input"]["nc3"], metrics.nc3(model[4].weight.detach().numpy(), M), rtol=1e-10)
    assert np.isnan(m["3"]["nc3"])
    assert np.isnan(m["3"]["nc1"]) and np.isfinite(m["3"]["dnc1"])  # no second moment kept
    # the classifier's input is the output of the in-place ReLU "3"
    np.testing.assert_allclose(st.layers["3"].class_sums, st.layers["4:input"].class_sums, rtol=1e-13)
    table = st.table()
    assert set(table["layer"]) == {"3", "4:input"} and (table["N"] == x.shape[0]).all()
    st = collect(model, _loader(x, y), ["3", "output"], K, classifier="4", progress=False)
    assert list(st.layers) == ["3", "4:input", "output"]
    with pytest.raises(ValueError, match="K x d weight"):
        collect(model, _loader(x, y), ["3"], K, classifier="3", progress=False)


def test_a_module_that_runs_twice_per_forward_is_refused():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(5, 5).double()
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.lin(self.act(x)))

    model = Twice()
    x, y = _data()
    with pytest.raises(ValueError, match="'act' ran more than once"):
        collect(model, _loader(x, y), ["act"], K, progress=False)
    st = collect(model, _loader(x, y), ["lin"], K, progress=False)
    assert int(np.sum(st.layers["lin"].counts)) == x.shape[0]


def test_second_pass_gives_nc1_without_the_d_by_d_moment():
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU()).double()
    x, y = _data(N=30, shape=(2, 4, 4))
    full = collect(conv, _loader(x, y, 7), ["1"], K, pool="flatten", covariance=True, progress=False)
    lean = collect(conv, _loader(x, y, 7), ["1"], K, pool="flatten", covariance=False, second_pass=True,
                   progress=False)
    assert lean.layers["1"].second_moment.shape == (K, K) and lean.info["covariance"] == {"1": "projected"}
    a, b = full.metrics()["1"], lean.metrics()["1"]
    np.testing.assert_allclose(b["nc1"], a["nc1"], rtol=1e-9)
    np.testing.assert_allclose(b["nc1"], metrics.nc1(conv(x).detach().flatten(1).numpy().T, y.numpy(), K), rtol=1e-9)

    class Noisy:  # a loader whose second pass sees other inputs (random augmentation)
        def __init__(self):
            self.g = torch.Generator().manual_seed(1)

        def __iter__(self):
            for xb, yb in _loader(x, y, 7):
                yield xb + torch.randn(xb.shape, generator=self.g, dtype=xb.dtype), yb

    with pytest.raises(ValueError, match="second pass"):
        collect(conv, Noisy(), ["1"], K, pool="flatten", covariance=False, second_pass=True, progress=False)
