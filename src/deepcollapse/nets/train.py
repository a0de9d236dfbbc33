"""The real-network engine: ResNet-20 + MLP head trained by (mini-batch) SGD, with streamed collapse
metrics of every head layer (SPEC.md, "Real networks"; Súkeník et al. (2024), Sec. 5 and Fig. 2;
Garrod & Keating, Sec. 5 and App. D).

`NetEngine` is what `deepcollapse.train.train` drives for a `NetConfig`, the same run path as the DUFM:
its lanes are the config's seeds, a chunk is `eval_every` epochs of every lane, and after each chunk
every lane is evaluated on the whole training subset; checkpoints, resumption and the run record are
`train`'s. Reading order: `load_data` -> `loss_fn` (fit + regulariser, modes in `config.NetConfig`)
-> `make_step` / `make_epoch` (one jitted program per SGD step) -> `evaluate` (metric pass) ->
`NetEngine`.

Choices:
- The whole training subset lives on the device as one array; an epoch is a seeded permutation cut
  into floor(N/B) batches of B (the N mod B left-over samples change from epoch to epoch).
- Randomness is stateless: epoch e of seed s uses fold_in(PRNGKey(s), e) for the permutation and the
  augmentation, so a resumed run draws exactly what an uninterrupted run draws.
- BatchNorm: batch statistics in the training step (updating the running averages); the metric pass
  uses eval mode (running averages), so a sample's features do not depend on the other samples of
  its batch and the streamed statistics are those of one fixed function of the input -- the network
  that would be deployed. Early in training the running averages lag behind the weights.
- Metric pass: features H_1..H_L and pre-activations Z_1..Z_L of the whole training subset (no
  augmentation), accumulated batch by batch in `deepcollapse.stats.StreamStats` (memory independent
  of N). The logged loss is the full-data objective in eval mode: fit over all N samples + lam_H/2
  ||H_1||_F^2 (all N columns, the DUFM term) + sum_l lam_l/2 ||W_l||^2 + backbone_wd/2 ||theta||^2
  ("dufm"), or fit + weight_decay/2 ||all parameters||^2 ("standard"); "train_loss" is the mean batch
  objective of the chunk's steps.
- A lane whose training loss turns NaN or inf stops at that chunk and is reported as diverged.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from deepcollapse import dufm, metrics
from deepcollapse.config import NetConfig
from deepcollapse.results import Lane
from deepcollapse.stats import StreamStats, stream_summary

from .augment import random_crop_flip
from .model import Net, build_net
from .synthetic import synthetic_images

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
    """Batch objective (fit + reg, (fit, reg)); SPEC.md "Real networks", scaling in `config.NetConfig`.

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

def _scale_backbone(factor: float) -> optax.GradientTransformation:
    """Multiply the updates of the parameters under "backbone" by `factor` (the head's stay)."""

    def update(updates, state, params=None):
        del params
        scaled = jax.tree_util.tree_map_with_path(
            lambda path, u: u * factor if getattr(path[0], "key", None) == "backbone" else u, updates)
        return scaled, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def make_optimizer(cfg: NetConfig) -> optax.GradientTransformation:
    """SGD with momentum (plain gradient descent when momentum = 0), at learning rate `lr` for the head
    and `backbone_lr` (default lr) for the backbone. SGD is linear in the gradients, so scaling the
    backbone's updates by backbone_lr / lr is SGD at backbone_lr there, momentum included."""
    tx = optax.sgd(cfg.lr, momentum=cfg.momentum or None)
    if cfg.backbone_lr is None or cfg.backbone_lr == cfg.lr:
        return tx
    return optax.chain(tx, _scale_backbone(cfg.backbone_lr / cfg.lr))


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
    model = build_net(cfg, tuple(image), cfg.K, seed=0)
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

    Returns {"layers": {name: stream_summary dict}, "means": {name: class means (d x K)}, "loss",
    "fit", "reg", "accuracy"} (numpy values); loss = full-data objective (module docstring).
    """
    N = int(x.shape[0])
    K = cfg.K
    dims = [W.shape[1] for W in model.head.weights()] + [W.shape[0] for W in model.head.weights()]
    stats = tuple(StreamStats.zeros(d, K, covariance=True) for d in dims)
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
    layers, means = {}, {}
    for name, s in zip(names, stats):
        st = s.finalize()
        summ = stream_summary(st, cfg.rank_rtol, feature_dtype=F32)
        layers[name] = {k: np.asarray(v) for k, v in summ.items()}
        means[name] = np.asarray(st.means)
    fit = float(fit_sum) / N
    reg = float(weight_penalty(model, cfg))
    if cfg.lam_H_value:
        reg += 0.5 * cfg.lam_H_value * float(stats[0].sq_norm)  # lam_H/2 ||H_1||_F^2 over all N
    return {"layers": layers, "means": means, "loss": fit + reg, "fit": fit, "reg": reg,
            "accuracy": float(correct) / N}


# ----------------------------------------------------------------------------------------------
# The engine
# ----------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def _compiled(graphdef, cfg: NetConfig, N: int, B: int):
    """(epoch, eval_batch) jitted functions, cached so that runs of one config (a resumed run, a rerun
    in the same process) compile once per process."""
    return make_epoch(graphdef, cfg, make_optimizer(cfg), N, B), make_eval_batch(graphdef, cfg)


def state_names(tree) -> list[str]:
    """Names of the leaves of a network state pytree, in flattening order ("params/backbone/...")."""
    return ["/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
            for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def model_from_params(cfg: NetConfig, flat: dict[str, np.ndarray], in_shape) -> Net:
    """The network of one lane rebuilt from its final parameters (`TrainResult.lane_params`); in_shape
    as for `build_net` (the image shape, or for a ResNet just its channels)."""
    model = build_net(cfg, in_shape, cfg.K, seed=0)
    graphdef, params, bstats = nnx.split(model, nnx.Param, nnx.BatchStat)
    tree = {"params": params, "batch_stats": bstats}
    leaves, treedef = jax.tree.flatten(tree)
    names = state_names(tree)
    missing = [n for n in names if n not in flat]
    if missing:
        raise ValueError(f"parameters: {len(missing)} arrays missing, e.g. {missing[0]!r}")
    new = jax.tree.unflatten(treedef, [jnp.asarray(flat[n], leaf.dtype) for n, leaf in zip(names, leaves)])
    return nnx.merge(graphdef, new["params"], new["batch_stats"])


class NetEngine:
    """The lanes (seeds) of one `NetConfig`, advanced `eval_every` epochs per chunk (`train.Engine`).

    data: a preloaded `deepcollapse.data.Dataset` to use instead of loading cfg's dataset (K classes).
    State: {"lanes": [(params, batch_stats, opt_state) per seed], "diverged_at": (P,) int32,
    "train_loss": (P,) mean batch objective of the last chunk}.
    """

    kind = "net"

    def __init__(self, cfg: NetConfig, data=None):
        self.cfg = cfg
        self.configs = [cfg]
        self.lanes = [Lane(i, 0, s) for i, s in enumerate(cfg.seed_list)]
        ds = load_data(cfg) if data is None else data
        self.x = jnp.asarray(np.asarray(ds.x), F32)
        self.y = jnp.asarray(np.asarray(ds.y), jnp.int32)
        if self.x.ndim != 4:
            raise ValueError(f"data: images must be NHWC, got shape {self.x.shape}")
        if int(jnp.max(self.y)) >= cfg.K or int(jnp.min(self.y)) < 0:
            raise ValueError(f"data: labels must lie in 0..{cfg.K - 1}")
        self.N = int(self.x.shape[0])
        self.n_per_class = int(np.bincount(np.asarray(ds.y), minlength=cfg.K).min())
        self.B = self.N if cfg.batch_size is None else cfg.batch_size
        if self.B > self.N:
            raise ValueError(f"batch_size: at most N={self.N} samples, got {self.B}")
        self.in_channels = int(self.x.shape[-1])
        self.steps_per_epoch = steps_per_epoch(self.N, self.B)
        self.n_chunks = -(-cfg.epochs // cfg.eval_every)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.tx = make_optimizer(cfg)
        self._final: dict[int, dict] = {}

    def _chunk_epochs(self, k: int) -> range:
        E = self.cfg.eval_every
        return range(k * E, min((k + 1) * E, self.cfg.epochs))

    def init(self):
        lanes = []
        for lane in self.lanes:
            model = build_net(self.cfg, tuple(self.x.shape[1:]), self.cfg.K, lane.seed)
            self.graphdef, params, bstats = nnx.split(model, nnx.Param, nnx.BatchStat)
            lanes.append((params, bstats, self.tx.init(params)))
        P = len(self.lanes)
        return {"lanes": lanes, "diverged_at": jnp.full((P,), -1, jnp.int32),
                "train_loss": jnp.full((P,), jnp.nan, F32)}

    def chunk(self, state, k: int):
        run_epoch, _ = _compiled(self.graphdef, self.cfg, self.N, self.B)
        lanes, div = list(state["lanes"]), np.asarray(state["diverged_at"]).copy()
        tl = np.asarray(state["train_loss"]).copy()
        for lane in self.lanes:
            p = lane.index
            if div[p] >= 0:
                continue
            params, bstats, opt_state = lanes[p]
            key = jax.random.PRNGKey(lane.seed)
            losses = []
            for e in self._chunk_epochs(k):
                params, bstats, opt_state, batch_losses, _ = run_epoch(
                    params, bstats, opt_state, jax.random.fold_in(key, e), self.x, self.y)
                losses.append(batch_losses)
            tl[p] = float(jnp.mean(jnp.concatenate(losses)))
            if not np.isfinite(tl[p]):
                div[p] = self._chunk_epochs(k).stop * self.steps_per_epoch
            lanes[p] = (params, bstats, opt_state)
        return {"lanes": lanes, "diverged_at": jnp.asarray(div, jnp.int32), "train_loss": jnp.asarray(tl, F32)}

    def _evaluate_lane(self, lane_state) -> dict:
        _, eval_batch = _compiled(self.graphdef, self.cfg, self.N, self.B)
        params, bstats, _ = lane_state
        model = nnx.merge(self.graphdef, params, bstats)
        return evaluate(model, self.graphdef, params, bstats, self.x, self.y, self.cfg, eval_batch)

    def evaluate(self, state) -> dict[str, np.ndarray]:
        """Per lane: loss, fit, reg, accuracy, train_loss and every head layer's `stream_summary`
        (singular values of the class means as sv_0, sv_1, ...); NaN for a diverged lane."""
        P = len(self.lanes)
        div = np.asarray(state["diverged_at"])
        out: dict[str, np.ndarray] = {}
        for lane in self.lanes:
            p = lane.index
            ev = self._evaluate_lane(state["lanes"][p])
            self._final[p] = ev
            row = {"loss": ev["loss"], "fit": ev["fit"], "reg": ev["reg"], "accuracy": ev["accuracy"],
                   "train_loss": float(np.asarray(state["train_loss"])[p])}
            for layer, summ in ev["layers"].items():
                for k, v in summ.items():
                    if k == "singular_values":
                        row.update({f"{layer}/sv_{j}": float(s) for j, s in enumerate(np.asarray(v))})
                    else:
                        row[f"{layer}/{k}"] = float(v)
            for k, v in row.items():
                out.setdefault(k, np.full(P, np.nan))[p] = v if div[p] < 0 else np.nan
        return out

    def diverged_at(self, state) -> np.ndarray:
        return np.asarray(state["diverged_at"])

    def steps_of(self, n_logged: int) -> np.ndarray:
        epochs = [0] + [self._chunk_epochs(k).stop for k in range(n_logged - 1)]
        return np.asarray(epochs) * self.steps_per_epoch

    def time_columns(self, steps: np.ndarray) -> dict:
        return {"epoch": np.asarray(steps) // self.steps_per_epoch}

    def final_params(self, state) -> dict[str, np.ndarray]:
        per_lane = []
        for params, bstats, _ in state["lanes"]:
            tree = {"params": params, "batch_stats": bstats}
            per_lane.append(dict(zip(state_names(tree), (np.asarray(a) for a in jax.tree.leaves(tree)))))
        return {k: np.stack([d[k] for d in per_lane]) for k in per_lane[0]}

    def model(self, state, p: int) -> Net:
        params, bstats, _ = state["lanes"][p]
        return nnx.merge(self.graphdef, params, bstats)

    def summarize(self, res, state) -> list[dict]:
        """Per lane (Garrod & Keating's and Súkeník et al.'s quantities, `lane_summary`)."""
        return [self.lane_summary(res, lane, state) for lane in self.lanes]

    def lane_summary(self, res, lane: Lane, state) -> dict:
        """loss, fit, reg, train_accuracy; loss_dnc and loss_lowrank (`reference.summary_references` at
        the run's n per class); logit_rank_1e6 (singular values of the class-mean logit matrix above
        1e-6, Garrod & Keating's count) and logit_rank (above cfg.logit_sv_atol); the ranks (rtol
        cfg.rank_rtol) and NC2 distances of every head layer's class means and found_dnc
        (`metrics.dnc_verdict`); their singular values; the class-mean logit matrix (K x K); the theory
        oracle of the head (`theory.classify.oracle`: structure, loss relative to L_DNC and to the best
        known construction of the DUFM with the head's K, L, width and weight decays)."""
        from deepcollapse.reference import summary_references

        cfg, p = self.cfg, lane.index
        diverged = bool(res.diverged_at[p] >= 0)
        ev = self._final.get(p) or self._evaluate_lane(state["lanes"][p])
        row = {"lane": p, "seed": lane.seed, "config": 0, **cfg.lane_columns(), "diverged": diverged,
               "diverged_at": int(res.diverged_at[p]) if diverged else None,
               "loss": None, "fit": None, "reg": None, "train_accuracy": None,
               **summary_references(cfg, self.n_per_class), "ranks": {}, "nc2": {}, "found_dnc": None,
               "epochs": int(res.time_columns["epoch"][-1]), "steps": int(res.steps[-1]), "N": self.N,
               "n_per_class": self.n_per_class, "K": cfg.K}
        if diverged:
            return row
        L = cfg.L
        means = ev["means"]
        judged = {f"H{l}": means[f"H{l}"] for l in range(1, L + 1)} | {"Z": means[f"Z{L}"]}
        sv = {k: np.asarray(v["singular_values"]) for k, v in ev["layers"].items()}
        logit_sv = sv[f"Z{L}"]
        row.update(loss=ev["loss"], fit=ev["fit"], reg=ev["reg"], train_accuracy=ev["accuracy"],
                   logit_rank_1e6=int(np.sum(logit_sv > 1e-6)),
                   logit_rank=int(np.sum(logit_sv > cfg.logit_sv_atol)),
                   singular_values={k: v.tolist() for k, v in sv.items()},
                   class_mean_logits=np.asarray(means[f"Z{L}"]).tolist())
        row.update(metrics.dnc_verdict(judged, metrics.dnc_kind(cfg.activation, cfg.loss), rtol=cfg.rank_rtol))
        from deepcollapse.theory.classify import oracle

        row.update(oracle({k: np.asarray(v) for k, v in judged.items()}, cfg, row["loss"], verdict=row,
                          n=self.n_per_class))
        return row
