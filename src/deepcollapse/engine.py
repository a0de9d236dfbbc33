"""The DUFM engine: many L-DUFM lanes in one compiled program.

A *lane* is one (config, seed) pair. Configs whose array shapes agree (`DUFMConfig.shape_key`) and
that differ only in lam_H, lam_W, lr or init_scale run as lanes of one program: a `lax.scan` over
`log_every` gradient steps (one "chunk") batched over lanes (`vmap`; on a CPU the lanes run as
small groups spread over the CPU devices, one per core, see `lane_groups`), then the layer metrics of
every lane. `deepcollapse.train` runs
the chunks, checkpoints and writes the record; this module holds the numerics.

With `cfg.data` set the same engine trains an MLP (no biases) on fixed data: H_1 = X is built once
(`input_data`), left out of the parameters and passed to the forward pass; "H1" is still logged
(its metrics are those of the data, e.g. TCV(X)).

Training is the papers' full-batch gradient descent (Súkeník et al. Sec. 5; Garrod & Keating Sec. 5):
`optax.sgd` without momentum by default, any Optax optimizer by name as an option. A lane whose loss
becomes NaN or inf is marked diverged at that step; its later metrics are NaN and it is reported as
diverged, never plotted as a number.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import dufm, metrics, results
from .config import DUFMConfig
from .results import Lane

#: Memory of one vmapped lane group on a CPU (`group_size`; chosen by measurement, docs/speed.md).
GROUP_BYTES_CPU = 4 * 2**20


def lane_devices() -> list:
    """The devices a program's lanes are split across: every CPU device (`jax_num_cpu_devices`, one
    per core by default, set in `deepcollapse/__init__`), else the default device alone."""
    devices = jax.devices()
    return list(devices) if devices[0].platform == "cpu" else devices[:1]


def group_size(cfg: DUFMConfig, budget: int | None = None) -> float:
    """Lanes of `cfg` that fit one vmapped group's memory budget on a CPU: `budget` bytes (default
    `GROUP_BYTES_CPU`, read at the call) over `lane_bytes`, a fraction (`lane_groups` rounds).

    Groups near the budget stay in a core's 2 MB L2 and still amortise a group's per-op overhead: on
    the project's 2-core CPU the quickstart shape (K = 10, n = 5, L = 4, width 30; 0.18 MB a lane)
    runs 1.7x faster in groups of about 22 than in one batch of 500 a core, and at n = 50 (1.45 MB a
    lane) 5 lanes a core run faster as groups of 3 + 2 than as 2 + 2 + 1 (docs/speed.md has the
    measurements); at width 256 (13.6 MB a lane) every lane is a group of its own.
    """
    return (GROUP_BYTES_CPU if budget is None else budget) / lane_bytes(cfg)


def lane_groups(P: int, n_devices: int, group: float) -> list[tuple[slice, int]]:
    """How a CPU program's P lanes are run: (lanes, device index) of each vmapped group.

    Every device gets an even share of consecutive lanes (shares differ by at most one lane; a device
    gets none only when P < n_devices), cut into as many groups as the largest share needs for a mean
    size of at most `group` lanes (`group_size`; m = ceil(ceil(P / n_devices) / group) groups, fewer
    for a share of fewer than m lanes; sizes within a share differ by at most one, and no group
    exceeds ceil(group) lanes). No lane is padded, every core has the same work, and a
    program compiles one chunk program per group size (at most two). Round-robin groups of one size
    left a core idle at the end of a chunk (5 groups of 2 over 2 cores: 3 + 2) and ran 10-15 % slower
    (docs/speed.md).
    """
    if P < 1 or n_devices < 1 or not group > 0:
        raise ValueError(f"need P, n_devices >= 1 and group > 0, got {P}, {n_devices}, {group}")
    groups, most = [], int(np.ceil(-(-P // n_devices) / group))  # groups of the largest share
    for d in range(n_devices):
        lo, hi = d * P // n_devices, (d + 1) * P // n_devices
        share = hi - lo
        m = min(share, most)  # 0 for an empty share
        groups += [(slice(lo + j * share // m, lo + (j + 1) * share // m), d) for j in range(m)]
    return groups


class LaneState(NamedTuple):
    params: dict
    opt_state: optax.OptState
    alive: jax.Array  # bool
    diverged_at: jax.Array  # int32, -1 while alive
    step: jax.Array  # int32


def layer_names(L: int) -> list[str]:
    """Logged features: H1..HL (inputs of W_1..W_L) and Z1..ZL (pre-activations; ZL is the output)."""
    return [f"H{l}" for l in range(1, L + 1)] + [f"Z{l}" for l in range(1, L + 1)]


def make_optimizer(cfg: DUFMConfig, lr) -> optax.GradientTransformation:
    """The configured Optax optimizer with its learning rate injected as state (so it can vary per lane)."""
    return optax.inject_hyperparams(getattr(optax, cfg.optimizer.name))(learning_rate=lr, **cfg.optimizer.kwargs)


def input_data(cfg: DUFMConfig) -> np.ndarray | None:
    """The fixed data X (d_1 x N, columns class by class, in cfg.dtype) of a config; None for free features.

    `gaussian_clusters(K, data.dim, n, data.sigma, seed=data.seed, mean_scale=data.mean_scale)`
    (Zangrando et al. (2025), Fig. 1's synthetic data; see `deepcollapse.data.gaussian`).
    """
    if cfg.data is None:
        return None
    return _gaussian_data(cfg.data, cfg.K, cfg.n, cfg.dtype)


@functools.lru_cache(maxsize=32)
def _gaussian_data(data, K: int, n: int, dtype: str) -> np.ndarray:
    from .data.gaussian import gaussian_clusters

    X, _ = gaussian_clusters(K, data.dim, n, data.sigma, seed=data.seed, mean_scale=data.mean_scale,
                             dtype=np.dtype(dtype))
    X.setflags(write=False)
    return X


class ResourceError(ValueError):
    """A run that cannot fit this machine, refused before anything is allocated (the message says why)."""


def planned_bytes(cfg: DUFMConfig, lanes: int) -> int:
    """An upper estimate of the memory one program of `lanes` lanes of `cfg` needs.

    Per lane: the parameters (H_1: d_1 x N unless fixed data, W_l: d_{l+1} x d_l) three times
    (parameters, gradient, update) plus the optimizer's state (two more copies for Adam-like
    optimizers, counted for every optimizer but plain SGD), and the features of the forward and
    backward pass (every Z_l, H_{l+1} and their cotangents: 4 N sum_l d_{l+1}); the metrics program
    needs the features of every layer once more. Times the dtype's size, plus the data matrix.
    """
    data = cfg.widths[0] * cfg.N if cfg.data is not None else 0
    return int(lanes * lane_bytes(cfg) + np.dtype(cfg.dtype).itemsize * data)


def lane_bytes(cfg: DUFMConfig) -> int:
    """The memory of one lane in `planned_bytes`: parameters, gradient, update and optimizer state,
    and the features of the forward and backward pass."""
    dims = [*cfg.widths, cfg.K]
    N = cfg.N
    params = sum(dims[l + 1] * dims[l] for l in range(cfg.L)) + (0 if cfg.data is not None else dims[0] * N)
    copies = 3 + (0 if (cfg.optimizer.name == "sgd" and not cfg.optimizer.kwargs) else 2)
    feats = 5 * N * sum(dims)
    return int(np.dtype(cfg.dtype).itemsize * (copies * params + feats))


def available_bytes() -> int | None:
    """Memory a new program can use: the free memory of the default device (accelerators) or the
    machine's available RAM (CPU); None if unknown."""
    try:
        dev = jax.devices()[0]
        if dev.platform != "cpu":
            stats = dev.memory_stats() or {}
            if "bytes_limit" in stats:
                return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    except Exception:  # noqa: BLE001 - a backend without memory statistics
        pass
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def check_memory(cfg: DUFMConfig, lanes: int) -> None:
    """Refuse (ResourceError) a program whose `planned_bytes` exceed the memory available now: XLA
    can wait forever on an allocation that cannot succeed, so a run that cannot fit never starts."""
    need, have = planned_bytes(cfg, lanes), available_bytes()
    if have is not None and need > have:
        gib = 2.0**30
        raise ResourceError(f"the run needs about {need / gib:.3g} GiB ({lanes} lane(s) of widths "
                            f"{list(cfg.widths)}, N = {cfg.N}, {cfg.dtype}), this machine has {have / gib:.3g} GiB "
                            "available; use fewer seeds per program, smaller widths or a larger machine")


def final_features(params: dict, cfg: DUFMConfig):
    """(Hs, Zs) of one lane's parameters (with fixed data, H_1 = `input_data(cfg)`)."""
    X = input_data(cfg)
    return dufm.forward(jax.tree.map(jnp.asarray, params), cfg.activation, None if X is None else jnp.asarray(X),
                        bool(cfg.residual))


def final_class_means(params: dict, cfg: DUFMConfig) -> dict:
    """Class-mean matrices (NumPy) of every layer of one trained lane (`metrics.layer_class_means`)."""
    Hs, Zs = final_features(params, cfg)
    means = metrics.layer_class_means(Hs, Zs, dufm.labels(cfg.sizes), cfg.K)
    return {k: np.asarray(v) for k, v in means.items()}


_MEANS_PROGRAMS: dict[str, object] = {}


def lanes_class_means(params: dict, cfg: DUFMConfig) -> dict[str, np.ndarray]:
    """`final_class_means` of many lanes of `cfg`'s shape in one compiled program: `params` is the
    DUFM pytree with a leading lane axis; returns layer -> lanes x d x K. The program is compiled once
    per shape (`DUFMConfig.shape_key`: the forward pass and the classes depend on nothing else)."""
    f = _MEANS_PROGRAMS.get(key := cfg.shape_key())
    if f is None:
        X, y = input_data(cfg), dufm.labels(cfg.sizes)
        X = None if X is None else jnp.asarray(X)

        def one(p):
            Hs, Zs = dufm.forward(p, cfg.activation, X, bool(cfg.residual))
            return metrics.layer_class_means(Hs, Zs, y, cfg.K)

        f = _MEANS_PROGRAMS[key] = jax.jit(jax.vmap(one))
    return {k: np.asarray(v) for k, v in f(jax.tree.map(jnp.asarray, params)).items()}


def dnc_verdict(params: dict, cfg: DUFMConfig) -> dict:
    """`metrics.dnc_verdict` of a trained DUFM lane: the class means of H_1..H_L and the output Z.

    The frame is the model's (`metrics.dnc_kind`); H_1 (free features, before any activation) is
    checked for rank only, and with fixed data (`cfg.data`) it is the data, reported but not judged.
    """
    return verdict_of_means(final_class_means(params, cfg), cfg)


def verdict_of_means(m: dict, cfg: DUFMConfig) -> dict:
    """`dnc_verdict` from a lane's class means of every layer (`final_class_means`' dict)."""
    means = {f"H{l}": m[f"H{l}"] for l in range(1, cfg.L + 1)} | {"Z": m[f"Z{cfg.L}"]}
    return metrics.dnc_verdict(means, metrics.dnc_kind(cfg.activation, cfg.loss), rtol=cfg.rank_rtol,
                               ignore=("H1",) if cfg.data is not None else ())


@functools.lru_cache(maxsize=64)
def metric_programs(sizes: tuple[int, ...], K: int, rtol: float):
    """The jitted, lane-vmapped metric programs of one class layout: (layer metrics of features
    lanes x d x N: `metrics.layer_summary`; weight metrics of lanes x d_out x d_in:
    `metrics.weight_summary`). Cached per layout, so every program of a sweep with the same classes
    shares them and jit compiles each once per array shape."""
    y = dufm.labels(sizes)
    layer = jax.jit(jax.vmap(lambda F: metrics.layer_summary(F, y, K, rtol)))
    weight = jax.jit(jax.vmap(lambda W: metrics.weight_summary(W, K, rtol)))
    return layer, weight


@dataclass
class Program:
    """The compiled training program of a group of configs with equal shapes."""

    configs: list[DUFMConfig]
    lanes: list[Lane] = field(init=False)
    kind = "dufm"

    def __post_init__(self):
        keys = {c.shape_key() for c in self.configs}
        if len(keys) != 1:
            raise ValueError("configs of one program must share their shapes (DUFMConfig.shape_key)")
        self.base = base = self.configs[0]
        pairs = [(ci, s) for ci, c in enumerate(self.configs) for s in c.seed_list]
        self.lanes = [Lane(i, ci, s) for i, (ci, s) in enumerate(pairs)]
        check_memory(base, len(self.lanes))
        self.dtype = jnp.dtype(base.dtype)
        # Arrays are made in NumPy in their dtype and placed on the device as they are: a conversion
        # or a jnp.asarray on the device is one more compiled program per array at the start of a
        # run (docs/speed.md).
        self.Y = jax.device_put(dufm.one_hot(base.sizes, self.dtype))
        X = input_data(base)  # equal for every config of the program (data is in the shape key)
        self.X = None if X is None else jax.device_put(np.asarray(X, self.dtype))
        cfg_of = [self.configs[l.config_index] for l in self.lanes]
        self.lam_H = jax.device_put(np.asarray([c.lam_H for c in cfg_of], self.dtype))
        self.lam_W = jax.device_put(np.asarray([c.lams_W for c in cfg_of], self.dtype))
        self.lr = jax.device_put(np.asarray([c.lr for c in cfg_of], self.dtype))
        self.init_scale = jax.device_put(np.asarray([c.init_scale for c in cfg_of], self.dtype))
        self.seeds = np.asarray([l.seed for l in self.lanes], np.int64)  # keys made in the init program
        self.layers = layer_names(base.L)
        self.start = None
        if base.start is not None:
            from .theory.constructions import build

            con = build(base, base.start.structure)
            self.start = jax.tree.map(lambda a: jax.device_put(np.asarray(a, self.dtype)),
                                      {"H1": con.params["H1"], "W": tuple(con.params["W"])})
        self._init = jax.jit(jax.vmap(self._init_lane))
        devices = lane_devices()
        P = len(self.lanes)
        self._home = devices[0]
        if P == 1:  # a single lane runs unbatched
            self._chunk = jax.jit(lambda state, *h: jax.tree.map(
                lambda x: x[None], self._chunk_lane(*jax.tree.map(lambda x: x[0], (state, *h)))))
        else:
            self._chunk = jax.jit(jax.vmap(self._chunk_lane))
        self._hyper = (self.lam_H, self.lam_W, self.lr)
        self._groups = None  # one program of every lane (an accelerator, or a single lane)
        if devices[0].platform == "cpu" and P > 1:  # lane groups of one compiled program (`lane_groups`)
            self._groups = [(sl, devices[d]) for sl, d in lane_groups(P, len(devices), group_size(base))]
            hyper = jax.device_get(self._hyper)
            self._hyper = [jax.device_put(_lanes(hyper, sl), dev) for sl, dev in self._groups]
        self._terms = jax.jit(jax.vmap(self._terms_lane))
        self._layer, self._weight = metric_programs(tuple(base.sizes), base.K, base.rank_rtol)

    # ---- per-lane pure functions ------------------------------------------------------------------
    def _init_lane(self, seed, scale, lr) -> LaneState:
        key = jax.random.PRNGKey(seed)
        b = self.base
        if self.start is None:
            params = dufm.init_params(key, b.widths, b.K, b.N, scale, self.dtype, free_features=self.X is None)
        else:  # an explicit solution plus N(0, noise^2) in every entry (`config.Start`)
            leaves, treedef = jax.tree.flatten(self.start)
            keys = jax.random.split(key, len(leaves))
            noise = b.start.noise
            params = jax.tree.unflatten(treedef, [x + noise * jax.random.normal(k, x.shape, self.dtype)
                                                  for x, k in zip(leaves, keys)])
        opt_state = make_optimizer(b, lr).init(params)
        return LaneState(params, opt_state, jnp.bool_(True), jnp.int32(-1), jnp.int32(0))

    def _loss(self, params, hyper):
        total, fit, reg = dufm.loss_terms(params, self.Y, hyper, self.base.activation, self.base.loss, H1=self.X,
                                           residual=bool(self.base.residual))
        return total, (fit, reg)

    def _chunk_lane(self, state: LaneState, lam_H, lam_W, lr) -> LaneState:
        hyper = dufm.Hyper(lam_H, lam_W)
        opt = make_optimizer(self.base, lr)
        plain_gd = self.base.optimizer.name == "sgd" and not self.base.optimizer.kwargs

        def step(s: LaneState, _):
            (loss, _aux), g = jax.value_and_grad(self._loss, has_aux=True)(s.params, hyper)
            if plain_gd:  # the papers' update, without optax's bookkeeping (same arithmetic)
                params, opt_state = jax.tree.map(lambda p, d: p - lr * d, s.params, g), s.opt_state
            else:
                updates, opt_state = opt.update(g, s.opt_state, s.params)
                params = optax.apply_updates(s.params, updates)
            # A diverged lane's parameters turn NaN and stay NaN; only the first non-finite step is
            # recorded (a per-step select over every parameter would cost more than the step itself).
            ok = s.alive & jnp.isfinite(loss)
            return LaneState(params, opt_state, ok, jnp.where(s.alive & ~ok, s.step, s.diverged_at),
                             s.step + 1), None

        state, _ = jax.lax.scan(step, state, None, length=self.base.log_every)
        return state

    def _terms_lane(self, params, lam_H, lam_W):
        """Loss terms and every layer's features [H_1..H_L, Z_1..Z_L] of one lane."""
        hyper = dufm.Hyper(lam_H, lam_W)
        total, fit, reg = dufm.loss_terms(params, self.Y, hyper, self.base.activation, self.base.loss, H1=self.X,
                                           residual=bool(self.base.residual))
        Hs, Zs = dufm.forward(params, self.base.activation, H1=self.X, residual=bool(self.base.residual))
        return {"loss": total, "fit": fit, "reg": jnp.sum(reg)}, [*Hs, *Zs]

    # ---- whole-program entry points ---------------------------------------------------------------
    def init(self) -> LaneState:
        return self._init(self.seeds, self.init_scale, self.lr)

    @property
    def n_chunks(self) -> int:
        return self.base.steps // self.base.log_every

    @property
    def total_steps(self) -> int:
        return self.base.steps

    def chunk(self, state: LaneState, k: int) -> LaneState:
        """`log_every` steps of every lane (chunk k; the DUFM's chunks do not depend on k).

        On a CPU each lane group (`lane_groups`) is one dispatch of the same compiled program; the
        dispatches are asynchronous, so the groups of different devices run at the same time. Each
        lane's arithmetic is the same however the lanes are grouped.
        The metrics (`evaluate`) are a second compiled program: fused into the scan's program, XLA:CPU
        (jaxlib 0.10.2) deadlocked on vmapped SVDs after a while loop, and the split costs one dispatch.
        """
        if self._groups is None:
            return jax.block_until_ready(self._chunk(state, *self._hyper))
        host = jax.device_get(state)
        outs = [self._chunk(jax.device_put(_lanes(host, sl), dev), *h)
                for (sl, dev), h in zip(self._groups, self._hyper)]
        merged = jax.tree.map(lambda *xs: np.concatenate(xs), *jax.device_get(outs))
        return jax.device_put(merged, self._home)

    def steps_of(self, n_logged: int) -> np.ndarray:
        """The step of each logged evaluation: 0, log_every, 2 log_every, ..."""
        return np.arange(n_logged) * self.base.log_every

    def time_columns(self, steps: np.ndarray) -> dict:
        return {}

    def diverged_at(self, state: LaneState) -> np.ndarray:
        return np.asarray(state.diverged_at)

    def final_params(self, state: LaneState) -> dict[str, np.ndarray]:
        """Flat final parameters with a leading lane axis (`results.flatten_params` names)."""
        return results.flatten_params(jax.device_get(state.params))

    def summarize(self, res: "results.TrainResult", state: LaneState) -> list[dict]:
        """Per lane: hyper-parameters, final loss terms, divergence, references, found-DNC verdict."""
        means = lanes_class_means(jax.device_put(state.params, self._home), self.base)  # one program
        return [lane_summary(res, lane, self.configs[lane.config_index], {k: v[lane.index] for k, v in means.items()})
                for lane in res.lanes]

    def evaluate(self, state: LaneState) -> dict:
        """Loss terms, the metrics of every layer's features (H_l, Z_l: `metrics.layer_summary`) and
        of every weight matrix (W_l: `metrics.weight_summary`), NaN for a diverged lane.

        One compiled program per layer and per weight: with all layers' SVDs in one program, XLA:CPU
        (jaxlib 0.10.2) deadlocked now and then (independent LAPACK calls run concurrently); a program
        per layer never did, and costs 3L dispatches per logged step.
        """
        params = jax.device_put(state.params, self._home)  # metrics on one device (see above)
        out, feats = self._terms(params, self.lam_H, self.lam_W)
        for name, F in zip(self.layers, feats):
            for m, v in self._layer(F).items():
                out[f"{name}/{m}"] = v
        for l, W in enumerate(params["W"], start=1):
            for m, v in self._weight(W).items():
                out[f"W{l}/{m}"] = v
        alive = np.asarray(state.alive)
        return {k: np.where(alive, np.asarray(v, self.dtype), np.nan) for k, v in out.items()}


def lane_summary(res: "results.TrainResult", lane: Lane, cfg: DUFMConfig, means: dict | None = None) -> dict:
    """One lane's summary row: config index, seed, the lane's hyper-parameters, divergence, the final
    loss terms, the reference losses L_DNC / L_SRG or L_lowrank (`reference.reference_losses`, keys
    loss_dnc / loss_lowrank), the class-mean ranks and NC2 distances of every layer, found_dnc, and
    the singular values of every layer's class means; the theory oracle (`theory.classify.oracle`):
    structure (the known structure matched, or "new"), structure_closest, structure_distance,
    loss_vs_dnc, best_construction, loss_best, loss_vs_best. `means`: the lane's
    `final_class_means` if computed already (`Program.summarize` computes every lane's in one program)."""
    from .reference import summary_references

    p = lane.index
    diverged = bool(res.diverged_at[p] >= 0)
    last = {k: v[-1] for k, v in res.logs.items()}
    row = {"lane": p, "seed": lane.seed, "config": lane.config_index, **cfg.lane_columns(),
           "diverged": diverged, "diverged_at": int(res.diverged_at[p]) if diverged else None,
           "loss": _num(last["loss"][p]), "fit": _num(last["fit"][p]), "reg": _num(last["reg"][p]),
           **summary_references(cfg), "ranks": {}, "nc2": {}, "found_dnc": None, "singular_values": {},
           "structure": None}
    if not diverged:
        if means is None:
            means = final_class_means(res.lane_params(p), cfg)
        row.update(verdict_of_means(means, cfg))
        row["singular_values"] = {k: np.linalg.svd(M, compute_uv=False).tolist() for k, M in means.items()}
        from .theory.classify import oracle, solution_means

        row.update(oracle(solution_means(means), cfg, row["loss"], verdict=row))
    return row


def _lanes(tree, sl: slice):
    """The lanes `sl` of every leaf of `tree` (leading lane axis)."""
    return jax.tree.map(lambda x: x[sl], tree)


def _num(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None
