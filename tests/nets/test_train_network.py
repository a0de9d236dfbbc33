"""Training loop: loss scaling, loss decrease, streamed metrics, checkpoint/resume."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from deepcollapse import dufm, metrics
from deepcollapse.nets import NetConfig, build_net, load_data, loss_fn, train_network
from deepcollapse.nets.train import CHECKPOINT, layer_names

TINY = dict(dataset="synthetic", synthetic_K=3, n_per_class=4, synthetic_shape=(8, 8, 1), channels=(4, 4, 8),
            L=2, width=6, lr=0.05, momentum=0.9)


def _tiny(**kw):
    return NetConfig(**{**TINY, **kw})


def test_loss_scaling_matches_the_dufm():
    """Eval-mode features are per-sample, so: full batch = DUFM loss with H_1 = features, and the
    (N/B)-scaled feature penalty averaged over a partition into batches = the full-data penalty."""
    cfg = _tiny(lam_H=0.01, lam_W=(0.02, 0.03), loss="mse", batch_size=None)
    ds = load_data(cfg)
    x, y = jnp.asarray(ds.x), jnp.asarray(ds.y)
    N = x.shape[0]
    model = build_net(cfg, 1, 3, seed=0)
    total, (fit, reg) = loss_fn(model, x, y, cfg, N, train=False)
    H1 = model.backbone(x, train=False).T
    Y = jax.nn.one_hot(y, 3, dtype=jnp.float32).T
    want, want_fit, _ = dufm.loss_terms({"H1": H1, "W": model.head.weights()}, Y,
                                        dufm.hyper(0.01, (0.02, 0.03), dtype=jnp.float32), "relu", "mse")
    np.testing.assert_allclose(total, want, rtol=1e-5)
    np.testing.assert_allclose(fit, want_fit, rtol=1e-5)
    # batches of 4: mean over the 3 batches of the batch regulariser = full regulariser
    regs = [loss_fn(model, x[i:i + 4], y[i:i + 4], cfg, N, train=False)[1][1] for i in range(0, N, 4)]
    np.testing.assert_allclose(np.mean(regs), reg, rtol=1e-5)


def test_tiny_training_lowers_the_loss_and_streams_correct_metrics():
    cfg = _tiny(batch_size=None, epochs=8, eval_every=4, bn_momentum=0.0, eval_batch_size=5, loss="ce")
    res = train_network(cfg)
    net = {(r["epoch"], r["metric"]): r["value"] for r in res.history if r["layer"] == "net"}
    assert net[(8, "loss")] < 0.5 * net[(0, "loss")]
    assert net[(8, "train_loss")] < net[(4, "train_loss")]
    assert sorted({r["layer"] for r in res.history}) == sorted(layer_names(2) + ["net"])
    # the streamed metrics (eval batches of 5 of N=12, the last one padded) equal all-at-once metrics
    ds = load_data(cfg)
    Hs, Zs = res.model.features(jnp.asarray(ds.x), train=False)
    y = jnp.asarray(ds.y)
    final = {(r["layer"], r["metric"]): r["value"] for r in res.history if r["epoch"] == 8}
    for name, F in zip(layer_names(2), list(Hs) + list(Zs)):
        want = metrics.layer_summary(F, y, 3)
        for k in ("nc1_trace", "tcv", "rank_means"):
            np.testing.assert_allclose(final[(name, k)], want[k], rtol=2e-4, atol=1e-6, err_msg=f"{name} {k}")
        sv = metrics.singular_values(metrics.class_means(F, y, 3))
        np.testing.assert_allclose([final[(name, f"sv_{j}")] for j in range(3)], sv, rtol=1e-4, atol=1e-6)
    logit_sv = np.asarray(res.final["singular_values"]["Z2"])
    assert res.final["logit_rank"] == int(np.sum(logit_sv > 1e-6))
    assert res.final["epochs"] == 8 and res.final["steps"] == 8


class Stop(Exception):
    pass


def test_resume_equals_uninterrupted(tmp_path: Path):
    cfg = _tiny(batch_size=6, epochs=2, eval_every=1, augment=True, crop_pad=1)
    full = train_network(cfg, out_dir=tmp_path / "full")

    def stop_after_first(epoch, info):
        if epoch == 1:
            raise Stop

    with pytest.raises(Stop):
        train_network(cfg, out_dir=tmp_path / "cut", progress=stop_after_first)
    assert (tmp_path / "cut" / CHECKPOINT).exists() and not (tmp_path / "cut" / "result.json").exists()
    seen = []
    resumed = train_network(cfg, out_dir=tmp_path / "cut", progress=lambda e, i: seen.append(e))
    assert seen == [2]  # only the second epoch ran
    assert resumed.history == full.history
    assert {k: v for k, v in resumed.final.items() if k != "seconds"} == \
        {k: v for k, v in full.final.items() if k != "seconds"}
    for a, b in zip(jax.tree.leaves(nnx.state(full.model)), jax.tree.leaves(nnx.state(resumed.model))):
        np.testing.assert_array_equal(a, b)
    assert (tmp_path / "cut" / "result.json").exists()
    # a different config must not pick up this checkpoint
    with pytest.raises(ValueError, match="checkpoint of another run"):
        train_network(_tiny(batch_size=6, epochs=3, eval_every=1, augment=True, crop_pad=1),
                      out_dir=tmp_path / "cut")


MNIST = Path(__file__).resolve().parents[3] / "shared" / "datasets"


@pytest.mark.skipif(not (MNIST / "mnist" / "t10k-images-idx3-ubyte.gz").exists(), reason="MNIST not available")
def test_mnist_t10k_one_epoch():
    cfg = NetConfig(dataset="mnist", data_root=str(MNIST), split="test", n_per_class=2, channels=(2, 2, 4),
                    L=1, width=4, batch_size=10, epochs=1)
    res = train_network(cfg)
    assert res.final["N"] == 20 and res.final["K"] == 10
    assert len(res.final["singular_values"]["Z1"]) == 10
    assert np.isfinite(res.final["loss"])


def test_planned_memory_grows_with_the_batch_and_holds_the_data():
    """XLA's plan for one step (compiled, not run): the data array is an argument, and the
    temporaries (activations kept for the backward) grow with the batch."""
    from deepcollapse.nets import NetConfig
    from deepcollapse.nets.train import planned_memory

    cfg = NetConfig(dataset="synthetic", synthetic_K=3, n_per_class=8, L=2, width=8, batch_size=None)
    image, N = (8, 8, 1), 24
    small = planned_memory(cfg, image, N, B=4)
    big = planned_memory(cfg, image, N, B=16)
    assert big["arguments"] - small["arguments"] == (16 - 4) * 4  # only the int32 batch indices differ
    assert small["arguments"] >= N * 8 * 8 * 4  # the float32 data
    assert big["temporaries"] > 2 * small["temporaries"] > 0
    assert big["total"] >= big["arguments"] + big["temporaries"] - big["outputs"]
