"""The network engine through the one run path: loss scaling, loss decrease, streamed metrics, the run
record, checkpoint/resume."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepcollapse import dufm, metrics, results
from deepcollapse.nets import NetConfig, NetEngine, build_net, load_data, loss_fn, model_from_params
from deepcollapse.nets.train import layer_names
from deepcollapse.train import train

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
    eng = NetEngine(cfg)
    res = train(cfg, engine=eng)
    assert list(res.steps) == [0, 4, 8] and list(res.time_columns["epoch"]) == [0, 4, 8]
    assert res.logs["loss"][-1, 0] < 0.5 * res.logs["loss"][0, 0]
    assert np.isnan(res.logs["train_loss"][0, 0]) and res.logs["train_loss"][2, 0] < res.logs["train_loss"][1, 0]
    h = res.history()
    assert sorted(set(h["layer"])) == sorted(layer_names(2) + [""])
    assert {"step", "epoch", "lane", "seed", "lam_H", "lam_W", "lr", "run_id"} <= set(h.columns)
    # the streamed metrics (eval batches of 5 of N=12, the last one padded) equal all-at-once metrics
    ds = load_data(cfg)
    model = model_from_params(cfg, res.lane_params(0), 1)
    Hs, Zs = model.features(jnp.asarray(ds.x), train=False)
    y = jnp.asarray(ds.y)
    for name, F in zip(layer_names(2), list(Hs) + list(Zs)):
        want = metrics.layer_summary(F, y, 3)
        for k in ("nc1_trace", "tcv", "rank_means"):
            np.testing.assert_allclose(res.logs[f"{name}/{k}"][-1, 0], want[k], rtol=2e-4, atol=1e-6, err_msg=f"{name} {k}")
        sv = metrics.singular_values(metrics.class_means(F, y, 3))
        np.testing.assert_allclose([res.logs[f"{name}/sv_{j}"][-1, 0] for j in range(3)], sv, rtol=1e-4, atol=1e-6)
    row = res.summary[0]
    logit_sv = np.asarray(row["singular_values"]["Z2"])
    assert row["logit_rank_1e6"] == int(np.sum(logit_sv > 1e-6))
    assert row["epochs"] == 8 and row["steps"] == 8 and row["train_accuracy"] == res.logs["accuracy"][-1, 0]
    M = np.asarray(row["class_mean_logits"])
    np.testing.assert_allclose(M, np.asarray(metrics.class_means(Zs[-1], y, 3)), rtol=1e-4, atol=1e-6)
    assert row["ranks"]["Z"] == int(metrics.numerical_rank(M, cfg.rank_rtol))
    assert row["loss"] == pytest.approx(row["fit"] + row["reg"], rel=1e-12)
    assert row["loss_dnc"] is not None and row["loss_lowrank"] is not None  # CE, dufm regularisation
    # the theory oracle of the head: its structure, and its loss against L_DNC and the best construction
    # of the DUFM with the head's K, L, width and weight decays at the run's n per class
    from deepcollapse.reference import best_construction

    name, best = best_construction(cfg, row["n_per_class"])
    assert row["best_construction"] == name and row["loss_best"] == best and best is not None
    assert row["loss_vs_best"] == pytest.approx(row["loss"] / best, rel=1e-12)
    assert row["loss_vs_dnc"] == pytest.approx(row["loss"] / row["loss_dnc"], rel=1e-12)
    assert row["structure"] in ("dnc", "pairs", "rank2", "new") or row["structure"].startswith("partial(")


def test_record_has_the_files_of_a_dufm_run(tmp_path: Path):
    cfg = _tiny(batch_size=6, epochs=2, eval_every=1, seeds=2)
    res = train(cfg, out=tmp_path)
    d = tmp_path / cfg.run_id()
    assert sorted(f.name for f in d.iterdir()) == ["config.yaml", "history.csv", "history.parquet", "params.npz",
                                                   "summary.json"]
    back = results.load_run(d)
    assert [r["seed"] for r in back.summary] == [0, 1] and back.kind == "net"
    np.testing.assert_array_equal(back.logs["loss"], res.logs["loss"])
    assert list(back.time_columns["epoch"]) == [0, 1, 2]
    # seeds are independent lanes: seed 1 alone gives lane 1's numbers
    alone = train(_tiny(batch_size=6, epochs=2, eval_every=1, seeds=[1]))
    np.testing.assert_array_equal(alone.logs["loss"][:, 0], res.logs["loss"][:, 1])


def test_resume_equals_uninterrupted(tmp_path: Path):
    cfg = _tiny(batch_size=6, epochs=3, eval_every=1, augment=True, crop_pad=1)
    full = train(cfg)
    part = train(cfg, out=tmp_path, max_chunks=1)
    d = tmp_path / cfg.run_id()
    assert not part.complete and (d / results.CHECKPOINT).exists() and not (d / results.SUMMARY).exists()
    seen = []
    resumed = train(cfg, out=tmp_path, progress=lambda step, total, loss, n: seen.append(step))
    assert seen == [4, 6]  # only epochs 2 and 3 ran (2 steps per epoch)
    for k in full.logs:
        np.testing.assert_array_equal(resumed.logs[k], full.logs[k], err_msg=k)
    for k in full.params:
        np.testing.assert_array_equal(resumed.params[k], full.params[k], err_msg=k)
    assert results.is_complete(d)


MNIST = Path(__file__).resolve().parents[3] / "shared" / "datasets"


@pytest.mark.skipif(not (MNIST / "mnist" / "t10k-images-idx3-ubyte.gz").exists(), reason="MNIST not available")
def test_mnist_t10k_one_epoch():
    cfg = NetConfig(dataset="mnist", data_root=str(MNIST), split="test", n_per_class=2, channels=(2, 2, 4),
                    L=1, width=4, batch_size=10, epochs=1)
    row = train(cfg).summary[0]
    assert row["N"] == 20 and row["K"] == 10
    assert len(row["singular_values"]["Z1"]) == 10
    assert np.isfinite(row["loss"])


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


def test_killed_run_resumes_with_the_uninterrupted_numbers(tmp_path: Path):
    """kill -9 of a network run after its first checkpoint; the rerun resumes there, same numbers."""
    import os
    import signal
    import subprocess
    import sys
    import time

    cfg = _tiny(batch_size=6, epochs=6, eval_every=1)
    d = tmp_path / cfg.run_id()
    code = ("import sys, time; from deepcollapse.config import parse_config; from deepcollapse.train import train; "
            f"cfg = parse_config({cfg.to_dict()!r}); "
            "train(cfg, out=sys.argv[1], progress=lambda *a: time.sleep(0.5))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)])
    try:
        deadline = time.time() + 240
        while not (d / results.CHECKPOINT).exists():
            assert proc.poll() is None and time.time() < deadline, "the run ended before its first checkpoint"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not results.is_complete(d)
    chunks = []
    resumed = train(cfg, out=tmp_path, progress=lambda step, *a: chunks.append(step))
    assert 0 < len(chunks) < 6  # it resumed, it did not start over
    full = train(cfg)
    for k in full.logs:
        np.testing.assert_array_equal(resumed.logs[k], full.logs[k], err_msg=k)
    for k in full.params:
        np.testing.assert_array_equal(resumed.params[k], full.params[k], err_msg=k)


def test_pixel_mlp_backbone_trains_and_rebuilds_from_its_record(tmp_path):
    """backbone="mlp": a ReLU MLP on the flattened pixels feeds the head; the record rebuilds the same
    network (its logits equal the ones the run logged), and a ResNet's run id ignores the MLP fields."""
    from deepcollapse.train import train

    cfg = NetConfig(dataset="synthetic", synthetic_K=3, n_per_class=4, synthetic_shape=(6, 6, 1), backbone="mlp",
                    mlp_widths=(12, 8), L=2, width=5, batch_size=None, epochs=3, eval_every=3, lr=0.1)
    res = train(cfg, out=tmp_path)
    model = model_from_params(cfg, res.lane_params(0), (6, 6, 1))
    assert model.backbone.feature_dim == 8 and model.head.W[0].shape == (5, 8)
    ds = load_data(cfg)
    logits = np.asarray(model(jnp.asarray(ds.x)))  # N x K, evaluation mode
    means = np.stack([logits[np.asarray(ds.y) == k].mean(0) for k in range(3)], axis=1)  # K x K, column = class
    np.testing.assert_allclose(means, np.asarray(res.summary[0]["class_mean_logits"]), rtol=1e-4, atol=1e-5)
    assert NetConfig(mlp_widths=(7,)).run_id() == NetConfig().run_id()
    assert NetConfig(backbone="mlp").run_id() != NetConfig(backbone="mlp", mlp_widths=(7,)).run_id()
    with pytest.raises(ValueError, match="image shape"):
        build_net(cfg, 1, 3, seed=0)


def test_backbone_lr_is_sgd_at_that_rate_on_the_backbone_only():
    """backbone_lr: two momentum-SGD steps equal the hand-written update, with the backbone's
    parameters moved at backbone_lr and the head's at lr; a stated backbone_lr is part of the run id."""
    import optax
    from flax import nnx

    from deepcollapse.nets.train import make_optimizer

    kw = dict(dataset="synthetic", synthetic_K=3, n_per_class=4, synthetic_shape=(6, 6, 1), backbone="mlp",
              mlp_widths=(7,), L=2, width=5, batch_size=None, lr=0.1, momentum=0.9)
    cfg = NetConfig(**kw, backbone_lr=0.01)
    ds = load_data(cfg)
    x, y = jnp.asarray(ds.x), jnp.asarray(ds.y)
    model = build_net(cfg, (6, 6, 1), 3, seed=0)
    graphdef, params = nnx.split(model, nnx.Param)

    def grad(p):
        return jax.grad(lambda q: loss_fn(nnx.merge(graphdef, q), x, y, cfg, 12)[0])(p)

    tx = make_optimizer(cfg)
    state, p = tx.init(params), params
    want, vel = params, jax.tree.map(jnp.zeros_like, params)
    for _ in range(2):
        updates, state = tx.update(grad(p), state, p)
        p = optax.apply_updates(p, updates)
        g = grad(want)
        vel = jax.tree.map(lambda v, a: 0.9 * v + a, vel, g)
        want = jax.tree_util.tree_map_with_path(
            lambda path, w, v: w - (0.01 if path[0].key == "backbone" else 0.1) * v, want, vel)
    for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    moved = lambda tree, part: float(sum(jnp.sum(jnp.abs(u - v)) for u, v in
                                         zip(jax.tree.leaves(tree[part]), jax.tree.leaves(params[part]))))
    assert moved(p, "backbone") > 0 and moved(p, "head") > 0
    assert NetConfig(**kw).run_id() != cfg.run_id()
    assert NetConfig(**kw, backbone_lr=0.1).run_id() != NetConfig(**kw).run_id()  # stated, so recorded


def test_mlp_init_scale_scales_the_backbone_weights():
    """mlp_init_scale s: the pixel MLP's weights are s times those of the default (LeCun) init from the
    same seed, biases and head unchanged; a ResNet config refuses the field."""
    kw = dict(dataset="synthetic", synthetic_K=3, n_per_class=4, synthetic_shape=(6, 6, 1), backbone="mlp",
              mlp_widths=(9, 7), L=2, width=5, batch_size=None)
    base = build_net(NetConfig(**kw), (6, 6, 1), 3, seed=3)
    small = build_net(NetConfig(**kw, mlp_init_scale=0.25), (6, 6, 1), 3, seed=3)
    one = build_net(NetConfig(**kw, mlp_init_scale=1.0), (6, 6, 1), 3, seed=3)
    for lb, ls, lo in zip(base.backbone.layers, small.backbone.layers, one.backbone.layers):
        np.testing.assert_allclose(ls.kernel[...], 0.25 * lb.kernel[...], rtol=1e-6)
        np.testing.assert_array_equal(lo.kernel[...], lb.kernel[...])
        np.testing.assert_array_equal(ls.bias[...], 0.0)
    for wb, ws in zip(base.head.weights(), small.head.weights()):
        np.testing.assert_array_equal(wb, ws)
    assert NetConfig(**kw).run_id() != NetConfig(**kw, mlp_init_scale=0.25).run_id()
    with pytest.raises(ValueError, match="mlp_init_scale"):
        NetConfig(mlp_init_scale=0.5)
