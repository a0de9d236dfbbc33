"""Training loop of ResNet-20 + MLP head with streamed collapse metrics and resumable checkpoints.

SPEC.md, "Real networks"; Súkeník et al. (2024), Sec. 5 and Fig. 2 (DNC1 and ranks of every head
layer during training); Garrod & Keating, Sec. 5 (singular values of the class-mean logits at the end).

Reading order: `load_data` -> `loss_fn` (fit + regulariser, modes in `nets.config`) -> `make_epoch`
(one jitted `lax.scan` over the epoch's batches: gather, augment, gradient, SGD update) ->
`evaluate` (metric pass) -> `train_network` (the loop, checkpoints, history).

Choices:
- The whole training subset lives on the device as one array; an epoch is a seeded permutation cut
  into floor(N/B) batches of B (the N mod B left-over samples change from epoch to epoch).
- Randomness is stateless: epoch e uses fold_in(PRNGKey(seed), e) for the permutation and the
  augmentation, so a resumed run draws exactly what an uninterrupted run draws.
- BatchNorm: batch statistics in the training step (updating the running averages); the metric pass
  uses eval mode (running averages), so a sample's features do not depend on the other samples of
  its batch and the streamed statistics are those of one fixed function of the input -- the network
  that would be deployed. Early in training the running averages lag behind the weights, so eval
  features then differ from the batch-mode ones.
- Metric pass: features H_1..H_L and pre-activations Z_1..Z_L of the whole training subset (no
  augmentation), accumulated batch by batch in `StreamStats` (memory independent of N).
- The reported loss at an evaluation (and the final loss) is the full-data objective in eval mode:
  fit over all N samples + lam_H/2 ||H_1||_F^2 (all N columns, the DUFM term) + sum_l lam_l/2 ||W_l||^2
  + backbone_wd/2 ||theta||^2 ("dufm"), or fit + weight_decay/2 ||all parameters||^2 ("standard").
- Checkpoint (at every evaluation): `checkpoint.npz` with every array of (parameters, BatchNorm
  statistics, optimizer state), the epoch, the base RNG key and the history; written to a temporary
  file and moved into place with os.replace (atomic). A run with a checkpoint of the same config
  resumes after its last epoch and produces the same numbers as an uninterrupted run.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from deepcollapse import dufm

from .augment import random_crop_flip
from .config import NetConfig
from .model import Net, build_net
from .stream import StreamStats, stream_summary
from .synthetic import synthetic_images

CHECKPOINT = "checkpoint.npz"
F32 = jnp.float32


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------

def load_data(cfg: NetConfig):
    """The training subset of `cfg` as a `deepcollapse.data.Dataset` (standardised if asked)."""
    if cfg.dataset == "synthetic":
        ds = synthetic_images(cfg.synthetic_K, cfg.n_per_class, cfg.synthetic_shape, cfg.synthetic_noise,
                              seed=cfg.data_seed)
    else:
        from deepcollapse.data import load

        ds = load(cfg.dataset, cfg.split, cfg.data_root, cfg.n_per_class, seed=cfg.data_seed)
    if cfg.standardize:
        from dataclasses import replace

        from deepcollapse.data import standardize

        ds = replace(ds, x=standardize(ds.x)[0])
    if len(ds.classes) != cfg.K:
        raise ValueError(f"dataset: expected K={cfg.K} classes, the data has {len(ds.classes)}")
    return ds


# ----------------------------------------------------------------------------------------------
# Loss
# ----------------------------------------------------------------------------------------------

def _sq(tree) -> jax.Array:
    return sum(jnp.sum(jnp.square(p)) for p in jax.tree.leaves(tree))


def _targets(y: jax.Array, K: int) -> jax.Array:
    """Y (K x B), one-hot columns; labels outside 0..K-1 give zero columns."""
    return jax.nn.one_hot(y, K, dtype=F32).T


def weight_penalty(model: Net, cfg: NetConfig) -> jax.Array:
    """The parameter part of the regulariser (everything but the feature term).

    "dufm": sum_l lam_l/2 ||W_l||_F^2 + backbone_wd/2 ||theta_backbone||^2 (SPEC.md, the DUFM's
    per-factor weight decay); "standard": weight_decay/2 ||all parameters||^2.
    """
    if cfg.reg == "standard":
        return 0.5 * cfg.weight_decay_value * _sq(nnx.state(model, nnx.Param))
    reg = sum(0.5 * lam * jnp.sum(jnp.square(W)) for lam, W in zip(cfg.lams_W, model.head.weights()))
    if cfg.backbone_wd_value:
        reg = reg + 0.5 * cfg.backbone_wd_value * _sq(nnx.state(model.backbone, nnx.Param))
    return reg


def loss_fn(model: Net, x: jax.Array, y: jax.Array, cfg: NetConfig, N: int, train: bool = True):
    """Batch objective (fit + reg, (fit, reg)); SPEC.md "Real networks", scaling in `nets.config`.

    fit = MSE 1/(2B)||Z - Y||_F^2 (Súkeník et al., Eq. 1) or CE (Garrod & Keating, Eq. 1) over the
    batch; reg = (N/B) lam_H/2 ||H_1,batch||_F^2 + `weight_penalty` ("dufm"), or `weight_penalty`.
    """
    Hs, Zs = model.features(x, train)
    fit = dufm.FITS[cfg.loss](Zs[-1], _targets(y, Zs[-1].shape[0]))
    reg = weight_penalty(model, cfg)
    if cfg.lam_H_value:
        B = x.shape[0]
        reg = reg + (N / B) * 0.5 * cfg.lam_H_value * jnp.sum(jnp.square(Hs[0]))
    return fit + reg, (fit, reg)


# ----------------------------------------------------------------------------------------------
# One epoch: a jitted scan over the batches
# ----------------------------------------------------------------------------------------------

def make_optimizer(cfg: NetConfig) -> optax.GradientTransformation:
    """SGD with momentum (plain gradient descent when momentum = 0)."""
    return optax.sgd(cfg.lr, momentum=cfg.momentum or None)


def steps_per_epoch(N: int, B: int) -> int:
    return N // B


def make_step(graphdef, cfg: NetConfig, tx, N: int):
    """The pure SGD step (params, bstats, opt_state, idx, key, x, y) -> (params, bstats, opt_state,
    loss, fit) on the batch x[idx] (augmented if cfg.augment), N the training-set size (`loss_fn`)."""

    def step(params, bstats, opt_state, idx, key, x, y):
        def objective(p):
            # rebuild the BatchStat variables at this trace level so BatchNorm may update them
            model = nnx.merge(graphdef, p, jax.tree.map(lambda a: a, bstats))
            xb = x[idx]
            if cfg.augment:
                xb = random_crop_flip(key, xb, cfg.crop_pad)
            loss, (fit, _) = loss_fn(model, xb, y[idx], cfg, N, train=True)
            return loss, (fit, nnx.state(model, nnx.BatchStat))

        (loss, (fit, new_bstats)), grads = jax.value_and_grad(objective, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return params, new_bstats, opt_state, loss, fit

    return step


def make_epoch(graphdef, cfg: NetConfig, tx, N: int, B: int):
    """(params, bstats, opt_state, key, x, y) -> (params, bstats, opt_state, losses, fits) of one epoch.

    The epoch's permutation is cut into N // B batches; each step (`make_step`) is one jitted program
    (the batch is gathered inside it) called from a Python loop. Not a `lax.scan`: XLA:CPU (jaxlib
    0.10.2) runs the convolutions inside a loop body about 25x slower than in the entry computation
    (ResNet-20, B = 200, 28x28: 18.3 s per step in a scan, also with unroll=True, vs 0.72 s jitted
    alone), and a ResNet step costs far more than its Python dispatch on every device.
    """
    n_steps = steps_per_epoch(N, B)

    def batches(key):
        k_perm, k_aug = jax.random.split(key)
        perm = jax.random.permutation(k_perm, N)[: n_steps * B].reshape(n_steps, B)
        return perm, jax.random.split(k_aug, n_steps)

    donate = (0, 1, 2) if jax.default_backend() != "cpu" else ()  # CPU cannot reuse donated buffers
    step_jit = jax.jit(make_step(graphdef, cfg, tx, N), donate_argnums=donate)
    batches_jit = jax.jit(batches)

    def epoch(params, bstats, opt_state, key, x, y):
        perm, keys = batches_jit(key)
        losses, fits = [], []
        for i in range(n_steps):
            params, bstats, opt_state, loss, fit = step_jit(params, bstats, opt_state, perm[i], keys[i], x, y)
            losses.append(loss)
            fits.append(fit)
        return params, bstats, opt_state, jnp.stack(losses), jnp.stack(fits)

    return epoch


def planned_memory(cfg: NetConfig, image: tuple[int, int, int], N: int, B: int | None = None) -> dict:
    """Bytes XLA plans for one training step of `cfg` on the current device, compiled, not run.

    image: (H, W, C); N: training-set size (the data array is an argument of the step); B: batch
    (default cfg.batch_size, None = N). Returns {"arguments", "outputs", "temporaries", "total"}
    from `Compiled.memory_analysis()` (total = arguments + outputs + temporaries - aliased), to check
    before a long run that the full size fits the accelerator's memory.
    """
    B = (cfg.batch_size or N) if B is None else B
    model = build_net(cfg, image[-1], cfg.K, seed=0)
    graphdef, params, bstats = nnx.split(model, nnx.Param, nnx.BatchStat)
    tx = make_optimizer(cfg)
    spec = lambda shape, dtype: jax.ShapeDtypeStruct(shape, dtype)
    lowered = jax.jit(make_step(graphdef, cfg, tx, N)).lower(
        params, bstats, tx.init(params), spec((B,), jnp.int32), jax.random.PRNGKey(0),
        spec((N, *image), F32), spec((N,), jnp.int32))
    m = lowered.compile().memory_analysis()
    if m is None:
        raise RuntimeError("this backend reports no memory analysis")
    out = {"arguments": int(m.argument_size_in_bytes), "outputs": int(m.output_size_in_bytes),
           "temporaries": int(m.temp_size_in_bytes)}
    out["total"] = out["arguments"] + out["outputs"] + out["temporaries"] - int(m.alias_size_in_bytes)
    return out


# ----------------------------------------------------------------------------------------------
# Metric pass
# ----------------------------------------------------------------------------------------------

def layer_names(L: int) -> list[str]:
    """["H1", ..., "HL", "Z1", ..., "ZL"]: the head's inputs and pre-activations (Z_L = logits)."""
    return [f"H{l + 1}" for l in range(L)] + [f"Z{l + 1}" for l in range(L)]


def make_eval_batch(graphdef, cfg: NetConfig):
    """Jitted accumulation of one batch (eval-mode BatchNorm) into the per-layer StreamStats, the fit
    sum and the number of correct predictions; labels -1 mark padding and count nowhere."""

    def eval_batch(params, bstats, stats, fit_sum, correct, x, y):
        model = nnx.merge(graphdef, params, bstats)
        Hs, Zs = model.features(x, train=False)
        feats = list(Hs) + list(Zs)
        stats = tuple(s.accumulate(F, y) for s, F in zip(stats, feats))
        Z = Zs[-1]
        K = Z.shape[0]
        valid = (y >= 0).astype(F32)
        Y = _targets(y, K)
        if cfg.loss == "mse":
            per = 0.5 * jnp.sum((Z - Y) ** 2, axis=0)
        else:
            per = -jnp.sum(Y * jax.nn.log_softmax(Z, axis=0), axis=0)
        fit_sum = fit_sum + jnp.sum(per * valid, dtype=jnp.float64)
        correct = correct + jnp.sum((jnp.argmax(Z, axis=0) == y) & (y >= 0))
        return stats, fit_sum, correct

    return jax.jit(eval_batch)


def evaluate(model: Net, graphdef, params, bstats, x: jax.Array, y: jax.Array, cfg: NetConfig, eval_batch) -> dict:
    """Metrics of every head layer on the whole set (x, y), streamed in batches of cfg.eval_batch_size.

    Returns {"layers": {name: stream_summary dict}, "loss", "fit", "reg", "accuracy"} (numpy values);
    loss = full-data objective (module docstring).
    """
    N = int(x.shape[0])
    K = cfg.K
    dims = [W.shape[1] for W in model.head.weights()] + [W.shape[0] for W in model.head.weights()]
    stats = tuple(StreamStats.zeros(d, K) for d in dims)
    fit_sum = jnp.zeros((), jnp.float64)
    correct = jnp.zeros((), jnp.int64)
    Be = min(cfg.eval_batch_size, N)
    for start in range(0, N, Be):
        xb, yb = x[start:start + Be], y[start:start + Be]
        pad = Be - xb.shape[0]
        if pad:
            xb = jnp.concatenate([xb, jnp.zeros((pad, *xb.shape[1:]), xb.dtype)])
            yb = jnp.concatenate([yb, -jnp.ones((pad,), yb.dtype)])
        stats, fit_sum, correct = eval_batch(params, bstats, stats, fit_sum, correct, xb, yb)
    names = layer_names(model.head.L)
    layers = {}
    for name, s in zip(names, stats):
        summ = stream_summary(s.finalize(), cfg.rank_rtol, feature_dtype=F32)
        layers[name] = {k: np.asarray(v) for k, v in summ.items()}
    fit = float(fit_sum) / N
    reg = float(weight_penalty(model, cfg))
    if cfg.lam_H_value:
        reg += 0.5 * cfg.lam_H_value * float(stats[0].sq_norm)  # lam_H/2 ||H_1||_F^2 over all N
    return {"layers": layers, "loss": fit + reg, "fit": fit, "reg": reg, "accuracy": float(correct) / N}


def history_rows(step: int, epoch: int, ev: dict, train_loss: float | None) -> list[dict]:
    """Tidy rows (step, epoch, layer, metric, value); singular values as metrics "sv_0", "sv_1", ...

    Network-wide quantities use layer "net": loss, fit, reg, accuracy, train_loss (mean batch
    objective of the epochs since the previous evaluation).
    """
    rows = []
    net = {"loss": ev["loss"], "fit": ev["fit"], "reg": ev["reg"], "accuracy": ev["accuracy"]}
    if train_loss is not None:
        net["train_loss"] = train_loss
    for k, v in net.items():
        rows.append({"step": step, "epoch": epoch, "layer": "net", "metric": k, "value": float(v)})
    for layer, summ in ev["layers"].items():
        for k, v in summ.items():
            if k == "singular_values":
                rows += [{"step": step, "epoch": epoch, "layer": layer, "metric": f"sv_{j}", "value": float(s)}
                         for j, s in enumerate(v)]
            else:
                rows.append({"step": step, "epoch": epoch, "layer": layer, "metric": k, "value": float(v)})
    return rows


# ----------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------

def _atomic_write(path: Path, write: Callable) -> None:
    """write(file object) into a temporary file next to `path`, then os.replace (atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_checkpoint(path: Path, state, epoch: int, key: jax.Array, history: list, cfg: NetConfig, seed: int) -> None:
    """Every array of `state` (a pytree), plus epoch, RNG key, history and config, in one .npz."""
    leaves = jax.tree.leaves(state)
    arrays = {f"leaf_{i:05d}": np.asarray(v) for i, v in enumerate(leaves)}
    arrays.update(
        n_leaves=np.asarray(len(leaves)), epoch=np.asarray(epoch), seed=np.asarray(seed),
        rng=np.asarray(jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key),
        history=np.asarray(json.dumps(history)), config=np.asarray(cfg.model_dump_json()),
    )
    _atomic_write(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path: Path, template, cfg: NetConfig, seed: int):
    """(state, epoch, key, history) from `path`; `template` gives the pytree structure and dtypes.

    Raises ValueError if the checkpoint belongs to another config or seed, or its arrays do not fit.
    """
    with np.load(path, allow_pickle=False) as z:
        saved = NetConfig.model_validate_json(str(z["config"]))
        if saved != cfg or int(z["seed"]) != seed:
            raise ValueError(f"{path}: checkpoint of another run (config {saved.run_id()} seed {int(z['seed'])}, "
                             f"this run {cfg.run_id()} seed {seed}); use another out_dir or delete it")
        leaves, treedef = jax.tree.flatten(template)
        if int(z["n_leaves"]) != len(leaves):
            raise ValueError(f"{path}: {int(z['n_leaves'])} arrays, the model needs {len(leaves)}")
        new = []
        for i, t in enumerate(leaves):
            a = z[f"leaf_{i:05d}"]
            if a.shape != t.shape or a.dtype != t.dtype:
                raise ValueError(f"{path}: array {i} is {a.shape} {a.dtype}, expected {t.shape} {t.dtype}")
            new.append(jnp.asarray(a))
        state = jax.tree.unflatten(treedef, new)
        return state, int(z["epoch"]), jnp.asarray(z["rng"]), json.loads(str(z["history"]))


# ----------------------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def _compiled(graphdef, cfg: NetConfig, N: int, B: int):
    """(epoch, eval_batch) jitted functions, cached so that runs of one config (seeds, a resumed run)
    compile once per process."""
    return make_epoch(graphdef, cfg, make_optimizer(cfg), N, B), make_eval_batch(graphdef, cfg)


@dataclass
class NetResult:
    """A finished run: its config and seed, the tidy history, the final numbers and the trained model.

    final: "loss", "fit", "reg", "accuracy" (full-data, eval mode), "logit_rank" (class-mean logit
    singular values above cfg.logit_sv_atol), "singular_values" {layer: list}, "epochs", "steps",
    "N", "K", "seconds" (wall time of this call, loading and compilation included).
    """

    config: NetConfig
    seed: int
    history: list[dict]
    final: dict
    model: Net | None = field(default=None, repr=False)


def train_network(cfg: NetConfig, out_dir: str | os.PathLike | None = None,
                  progress: Callable[[int, dict], None] | None = None, seed: int | None = None,
                  data=None) -> NetResult:
    """Train ResNet-20 + MLP head as `cfg` says (one seed: `seed`, default the first of cfg.seeds).

    out_dir: where `checkpoint.npz` (every eval_every epochs), `config.json` and `result.json` go;
    an existing checkpoint of the same config and seed is resumed. progress(epoch, info) is called
    after each evaluation with info = {"loss", "fit", "accuracy", "train_loss", "seconds"}.
    data: a preloaded Dataset (x NHWC, y) to use instead of loading cfg's dataset (must have K classes).
    """
    seed = cfg.seed_list[0] if seed is None else int(seed)
    t0 = time.perf_counter()
    ds = load_data(cfg) if data is None else data
    x = jnp.asarray(np.asarray(ds.x), F32)
    y = jnp.asarray(np.asarray(ds.y), jnp.int32)
    N = int(x.shape[0])
    if x.ndim != 4:
        raise ValueError(f"data: images must be NHWC, got shape {x.shape}")
    if int(jnp.max(y)) >= cfg.K or int(jnp.min(y)) < 0:
        raise ValueError(f"data: labels must lie in 0..{cfg.K - 1}")
    B = N if cfg.batch_size is None else cfg.batch_size
    if B > N:
        raise ValueError(f"batch_size: at most N={N} samples, got {B}")

    model = build_net(cfg, int(x.shape[-1]), cfg.K, seed)
    graphdef, params, bstats = nnx.split(model, nnx.Param, nnx.BatchStat)
    tx = make_optimizer(cfg)
    opt_state = tx.init(params)
    key = jax.random.PRNGKey(seed)
    epoch, history = 0, []

    out = Path(out_dir) if out_dir is not None else None
    ckpt = out / CHECKPOINT if out is not None else None
    if ckpt is not None and ckpt.exists():
        (params, bstats, opt_state), epoch, key, history = load_checkpoint(ckpt, (params, bstats, opt_state), cfg, seed)
    if out is not None:
        _atomic_write(out / "config.json", lambda f: f.write(cfg.model_dump_json(indent=2).encode()))

    run_epoch, eval_batch = _compiled(graphdef, cfg, N, B)
    n_steps = steps_per_epoch(N, B)

    def do_eval(ep: int, train_loss):
        nnx.update(model, params, bstats)
        ev = evaluate(model, graphdef, params, bstats, x, y, cfg, eval_batch)
        return ev, history_rows(ep * n_steps, ep, ev, train_loss)

    if epoch == 0 and not history:
        _, rows = do_eval(0, None)
        history.extend(rows)
    pending = []
    ev = None
    while epoch < cfg.epochs:
        params, bstats, opt_state, losses, _ = run_epoch(params, bstats, opt_state, jax.random.fold_in(key, epoch), x, y)
        epoch += 1
        pending.append(losses)
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            train_loss = float(jnp.mean(jnp.concatenate(pending)))
            pending = []
            ev, rows = do_eval(epoch, train_loss)
            history.extend(rows)
            if ckpt is not None:
                save_checkpoint(ckpt, (params, bstats, opt_state), epoch, key, history, cfg, seed)
            if progress is not None:
                progress(epoch, {"loss": ev["loss"], "fit": ev["fit"], "accuracy": ev["accuracy"],
                                 "train_loss": train_loss, "seconds": time.perf_counter() - t0})

    if ev is None:  # resumed a finished run, or epochs produced no evaluation in this call
        ev, _ = do_eval(epoch, None)
    nnx.update(model, params, bstats)
    logit_sv = ev["layers"][f"Z{cfg.L}"]["singular_values"]
    final = {
        "loss": ev["loss"], "fit": ev["fit"], "reg": ev["reg"], "accuracy": ev["accuracy"],
        "logit_rank": int(np.sum(logit_sv > cfg.logit_sv_atol)),
        "singular_values": {k: [float(s) for s in v["singular_values"]] for k, v in ev["layers"].items()},
        "epochs": epoch, "steps": epoch * n_steps, "N": N, "K": cfg.K,
        "seconds": time.perf_counter() - t0,
    }
    if out is not None:
        payload = {"config": cfg.model_dump(mode="json"), "run_id": cfg.run_id(), "seed": seed,
                   "final": final, "history": history}
        _atomic_write(out / "result.json", lambda f: f.write(json.dumps(payload).encode()))
    return NetResult(cfg, seed, history, final, model)
