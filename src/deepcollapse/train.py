"""Full-batch training of many L-DUFM lanes in one compiled program.

A *lane* is one (config, seed) pair. Configs whose array shapes agree (`DUFMConfig.shape_key`) and
that differ only in lam_H, lam_W, lr or init_scale run as lanes of one program: a `lax.scan` over
`log_every` gradient steps (one "chunk") batched over lanes (`vmap`; on a CPU `lax.map` over vmapped
pairs, see `Program._chunk_lanes`), then the layer metrics of every lane.
Python only loops over chunks, checkpointing after each, so a stopped run resumes from its last
chunk and reproduces the uninterrupted numbers exactly.

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
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import dufm, metrics, results
from .config import DUFMConfig

LANE_BATCH_CPU = 2  # lanes per vmapped batch on a CPU (see Program._chunk_lanes)


@dataclass(frozen=True)
class Lane:
    index: int
    config_index: int
    seed: int


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


def group_configs(configs: Sequence[DUFMConfig]) -> list[list[int]]:
    """Indices of configs grouped by shape key, in first-seen order: each group is one program."""
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault(c.shape_key(), []).append(i)
    return list(groups.values())


@dataclass
class Program:
    """The compiled training program of a group of configs with equal shapes."""

    configs: list[DUFMConfig]
    lanes: list[Lane] = field(init=False)

    def __post_init__(self):
        keys = {c.shape_key() for c in self.configs}
        if len(keys) != 1:
            raise ValueError("configs of one program must share their shapes (DUFMConfig.shape_key)")
        self.base = base = self.configs[0]
        pairs = [(ci, s) for ci, c in enumerate(self.configs) for s in c.seed_list]
        self.lanes = [Lane(i, ci, s) for i, (ci, s) in enumerate(pairs)]
        self.dtype = jnp.dtype(base.dtype)
        self.y = dufm.labels(base.sizes)
        self.Y = jnp.asarray(dufm.one_hot(base.sizes), self.dtype)
        X = input_data(base)  # equal for every config of the program (data is in the shape key)
        self.X = None if X is None else jnp.asarray(X, self.dtype)
        cfg_of = [self.configs[l.config_index] for l in self.lanes]
        self.lam_H = jnp.asarray([c.lam_H for c in cfg_of], self.dtype)
        self.lam_W = jnp.asarray([c.lams_W for c in cfg_of], self.dtype)
        self.lr = jnp.asarray([c.lr for c in cfg_of], self.dtype)
        self.init_scale = jnp.asarray([c.init_scale for c in cfg_of], self.dtype)
        self.keys = jnp.stack([jax.random.PRNGKey(l.seed) for l in self.lanes])
        self.layers = layer_names(base.L)
        self._init = jax.jit(jax.vmap(self._init_lane))
        self._chunk = jax.jit(self._chunk_lanes)
        self._terms = jax.jit(jax.vmap(self._terms_lane))
        self._layer = jax.jit(jax.vmap(self._layer_lane))
        self._weight = jax.jit(jax.vmap(self._weight_lane))

    # ---- per-lane pure functions ------------------------------------------------------------------
    def _init_lane(self, key, scale, lr) -> LaneState:
        b = self.base
        params = dufm.init_params(key, b.widths, b.K, b.N, scale, self.dtype, free_features=self.X is None)
        opt_state = make_optimizer(b, lr).init(params)
        return LaneState(params, opt_state, jnp.bool_(True), jnp.int32(-1), jnp.int32(0))

    def _loss(self, params, hyper):
        total, fit, reg = dufm.loss_terms(params, self.Y, hyper, self.base.activation, self.base.loss, H1=self.X)
        return total, (fit, reg)

    def _chunk_lanes(self, state: LaneState, lam_H, lam_W, lr) -> LaneState:
        """All lanes' chunks in one program.

        On an accelerator every lane is one vmapped batch. On a CPU, XLA's batched matmuls of these
        small shapes are slow beyond a batch of 2 (K=10, n=50, width 30: 7.0k run-steps/s for a
        vmapped batch of 10, 11.3k for `lax.map` over batches of 2, 10.9k for one unbatched lane), so
        lanes run as `lax.map` over vmapped pairs, and a single lane unbatched. Each lane's arithmetic
        is the same either way (benchmarks/train_throughput.py measures it).
        """
        args = (state, lam_H, lam_W, lr)
        one = lambda a: self._chunk_lane(*a)  # noqa: E731
        P = len(self.lanes)
        if P == 1:
            return jax.tree.map(lambda x: x[None], one(jax.tree.map(lambda x: x[0], args)))
        batch = LANE_BATCH_CPU if jax.default_backend() == "cpu" else P
        return jax.vmap(one)(args) if batch >= P else jax.lax.map(one, args, batch_size=batch)

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
        total, fit, reg = dufm.loss_terms(params, self.Y, hyper, self.base.activation, self.base.loss, H1=self.X)
        Hs, Zs = dufm.forward(params, self.base.activation, H1=self.X)
        return {"loss": total, "fit": fit, "reg": jnp.sum(reg)}, [*Hs, *Zs]

    def _weight_lane(self, W) -> dict:
        return metrics.weight_summary(W, self.base.K, self.base.rank_rtol)

    def _layer_lane(self, F) -> dict:
        return metrics.layer_summary(F, self.y, self.base.K, self.base.rank_rtol)

    # ---- whole-program entry points ---------------------------------------------------------------
    def init(self) -> LaneState:
        return self._init(self.keys, self.init_scale, self.lr)

    def chunk(self, state: LaneState) -> tuple[LaneState, dict]:
        """`log_every` steps of every lane, then the logged metrics of the new state.

        The metrics are a second compiled program: fused into the scan's program, XLA:CPU (jaxlib
        0.10.2) deadlocked on vmapped SVDs after a while loop, and the split costs one dispatch.
        """
        state = jax.block_until_ready(self._chunk(state, self.lam_H, self.lam_W, self.lr))
        return state, self.evaluate(state)

    def evaluate(self, state: LaneState) -> dict:
        """Loss terms, the metrics of every layer's features (H_l, Z_l: `metrics.layer_summary`) and
        of every weight matrix (W_l: `metrics.weight_summary`), NaN for a diverged lane.

        One compiled program per layer and per weight: with all layers' SVDs in one program, XLA:CPU
        (jaxlib 0.10.2) deadlocked now and then (independent LAPACK calls run concurrently); a program
        per layer never did, and costs 3L dispatches per logged step.
        """
        out, feats = self._terms(state.params, self.lam_H, self.lam_W)
        for name, F in zip(self.layers, feats):
            for m, v in self._layer(F).items():
                out[f"{name}/{m}"] = v
        for l, W in enumerate(state.params["W"], start=1):
            for m, v in self._weight(W).items():
                out[f"W{l}/{m}"] = v
        alive = np.asarray(state.alive)
        return {k: np.where(alive, np.asarray(v, self.dtype), np.nan) for k, v in out.items()}


@dataclass
class TrainResult:
    """What a training run produced: lanes, tidy history, final parameters and per-lane summary."""

    configs: list[DUFMConfig]
    lanes: list[Lane]
    steps: np.ndarray  # logged steps, (T,)
    logs: dict[str, np.ndarray]  # key -> (T, P)
    params: dict  # stacked over lanes (leading axis P)
    diverged_at: np.ndarray  # (P,), -1 if never
    summary: list[dict]
    run_dir: Path | None = None
    complete: bool = True

    def lane_params(self, p: int) -> dict:
        return jax.tree.map(lambda a: np.asarray(a[p]), self.params)

    def history(self):
        """Tidy table: one row per logged step x lane x layer x metric (layer "" for the loss terms)."""
        import pandas as pd

        T, P = len(self.steps), len(self.lanes)
        frames = []
        for key, arr in self.logs.items():
            layer, metric = key.split("/") if "/" in key else ("", key)
            frames.append(pd.DataFrame({
                "step": np.repeat(self.steps, P),
                "lane": np.tile(np.arange(P), T),
                "layer": layer,
                "metric": metric,
                "value": np.asarray(arr, np.float64).reshape(-1),
            }))
        df = pd.concat(frames, ignore_index=True)
        lane_info = pd.DataFrame([
            {"lane": l.index, "seed": l.seed, "config": l.config_index,
             "lam_H": self.configs[l.config_index].lam_H, "lr": self.configs[l.config_index].lr,
             "init_scale": self.configs[l.config_index].init_scale,
             "run_id": self.configs[l.config_index].run_id()}
            for l in self.lanes
        ])
        return df.merge(lane_info, on="lane").sort_values(["lane", "step", "layer", "metric"], ignore_index=True)


ProgressFn = Callable[[int, int, float, int], None]


def train(config: DUFMConfig | Sequence[DUFMConfig], out: str | Path | None = None,
          progress: ProgressFn | None = None, max_chunks: int | None = None) -> TrainResult:
    """Train every lane of one config (or of several configs with equal shapes) in one program.

    out: results root; the run is written to `out/<run_id>/` (several configs: the hash of all of
    them) and resumes from `checkpoint.npz` there. progress(step, total, mean_loss, n_diverged) is
    called after every chunk. max_chunks stops after that many chunks in this call (the checkpoint
    stays, a later call resumes): used to test resumption.
    """
    configs = [config] if isinstance(config, DUFMConfig) else list(config)
    prog = Program(configs)
    base = prog.base
    n_chunks = base.steps // base.log_every
    run_dir = Path(out) / run_id_of(configs) if out is not None else None
    ckpt = run_dir / "checkpoint.npz" if run_dir else None

    if run_dir is not None and (run_dir / "summary.json").exists() and not ckpt.exists():
        return load_run(run_dir, configs, prog.lanes)
    state = prog.init()
    treedef = jax.tree.structure(state)
    if ckpt is not None and ckpt.exists():
        saved = results.load_npz(ckpt)
        done = int(saved["chunk"])
        state = jax.tree.unflatten(treedef, [jnp.asarray(saved[f"s/{i}"]) for i in range(treedef.num_leaves)])
        logs = {k[2:]: list(saved[k]) for k in saved if k.startswith("h/")}
    else:
        done = 0
        first = jax.device_get(prog.evaluate(state))
        logs = {k: [np.asarray(v)] for k, v in first.items()}
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        for i, c in enumerate(configs):
            results.save_config(run_dir / ("config.yaml" if len(configs) == 1 else f"config_{i}.yaml"), c)

    stop_at = n_chunks if max_chunks is None else min(n_chunks, done + max_chunks)
    for chunk in range(done, stop_at):
        state, out_logs = prog.chunk(state)
        out_logs = jax.device_get(out_logs)
        for k, v in out_logs.items():
            logs[k].append(np.asarray(v))
        if ckpt is not None:
            _save_checkpoint(ckpt, chunk + 1, state, logs)
        if progress is not None:
            loss = np.asarray(out_logs["loss"])
            finite = loss[np.isfinite(loss)]
            progress((chunk + 1) * base.log_every, base.steps,
                     float(finite.mean()) if finite.size else float("nan"), int((~np.asarray(state.alive)).sum()))

    complete = stop_at == n_chunks
    n_logged = len(next(iter(logs.values())))
    res = TrainResult(
        configs=configs,
        lanes=prog.lanes,
        steps=np.arange(n_logged) * base.log_every,
        logs={k: np.stack(v) for k, v in logs.items()},
        params=jax.device_get(state.params),
        diverged_at=np.asarray(state.diverged_at),
        summary=[],
        run_dir=run_dir,
        complete=complete,
    )
    res.summary = summarize(res)
    if run_dir is not None and complete:
        write_run(res)
        ckpt.unlink(missing_ok=True)
    return res


def load_run(run_dir: Path, configs: Sequence[DUFMConfig], lanes: Sequence[Lane]) -> TrainResult:
    """A finished run read back from its folder (nothing is recomputed)."""
    df = results.load_table(run_dir / "history.parquet")
    df = df.assign(key=np.where(df["layer"] == "", df["metric"], df["layer"] + "/" + df["metric"]))
    steps = np.sort(df["step"].unique())
    P = len(lanes)
    logs = {}
    for key, g in df.groupby("key", sort=False):
        arr = np.full((len(steps), P), np.nan)
        arr[np.searchsorted(steps, g["step"].to_numpy()), g["lane"].to_numpy()] = g["value"].to_numpy()
        logs[key] = arr
    flat = results.load_npz(run_dir / "params.npz")
    per_lane = [results.unflatten_params(flat, prefix=f"lane{l.index}/") for l in lanes]
    params = jax.tree.map(lambda *a: np.stack(a), *per_lane)
    summary = json.loads((run_dir / "summary.json").read_text())["lanes"]
    diverged_at = np.array([-1 if r["diverged_at"] is None else r["diverged_at"] for r in summary])
    return TrainResult(list(configs), list(lanes), steps, logs, params, diverged_at, summary, run_dir, True)


def run_id_of(configs: Sequence[DUFMConfig]) -> str:
    if len(configs) == 1:
        return configs[0].run_id()
    from .config import _hash

    return _hash({"configs": [c.run_id() for c in configs]})


def _save_checkpoint(path: Path, chunk: int, state: LaneState, logs: dict) -> None:
    arrays = {"chunk": np.asarray(chunk)}
    for i, leaf in enumerate(jax.tree.leaves(jax.device_get(state))):
        arrays[f"s/{i}"] = np.asarray(leaf)
    for k, v in logs.items():
        arrays[f"h/{k}"] = np.stack(v)
    results.save_npz(path, arrays)


def final_features(params: dict, cfg: DUFMConfig):
    """(Hs, Zs) of one lane's parameters (with fixed data, H_1 = `input_data(cfg)`)."""
    X = input_data(cfg)
    return dufm.forward(jax.tree.map(jnp.asarray, params), cfg.activation, None if X is None else jnp.asarray(X))


DNC_NC2_TOL = 0.25  # NC2 distance (in [0, 2]) below which a layer's class means count as the DNC frame


def dnc_verdict(params: dict, cfg: DUFMConfig, nc2_tol: float = DNC_NC2_TOL) -> dict:
    """The project's one rule for "found DNC" on a trained DUFM (SPEC.md, Collapse metrics).

    Every layer's class means (H_1..H_L and the output Z) must have full numerical rank (rtol =
    cfg.rank_rtol): K for the MSE ReLU DUFM, whose DNC has orthogonal-frame class means (Súkeník et
    al.), and K-1 after centring for the linear or cross-entropy models, whose DNC has a simplex ETF
    (Garrod & Keating). The post-activation layers H_2..H_L and the output must moreover be that frame
    up to NC2 distance `nc2_tol` (H_1 is not passed through a ReLU and is checked for rank only).
    With fixed data (`cfg.data`) H_1 is the data, not learned: its rank and NC2 are reported but do
    not enter `found_dnc`. A lower-rank solution (e.g. the SRG solution, rank r < K before the last
    ReLU) fails the rank test.
    Returns {"ranks": {layer: rank of the uncentred class means}, "found_dnc": bool, "report": ...}.
    """
    Hs, Zs = final_features(params, cfg)
    y = dufm.labels(cfg.sizes)
    names = [f"H{l}" for l in range(1, cfg.L + 1)] + ["Z"]
    means = [metrics.class_means(F, y, cfg.K) for F in [*Hs, Zs[-1]]]
    kind = "orthogonal" if (cfg.activation == "relu" and cfg.loss == "mse") else "etf"
    head = metrics.dnc_report(means[:1], kind, rtol=cfg.rank_rtol, nc2_tol=float("inf"))
    rest = metrics.dnc_report(means[1:], kind, rtol=cfg.rank_rtol, nc2_tol=nc2_tol)
    return {
        "ranks": {n: int(metrics.numerical_rank(M, cfg.rank_rtol)) for n, M in zip(names, means)},
        "found_dnc": bool((cfg.data is not None or head["found_dnc"]) and rest["found_dnc"]),
        "nc2": dict(zip(names, [*head["nc2"], *rest["nc2"]])),
    }


def summarize(res: TrainResult) -> list[dict]:
    """Per lane: final loss terms, numerical rank of every layer's class means, found_dnc, divergence."""
    rows = []
    last = {k: v[-1] for k, v in res.logs.items()}
    for lane in res.lanes:
        cfg = res.configs[lane.config_index]
        p = lane.index
        diverged = bool(res.diverged_at[p] >= 0)
        row = {
            "lane": p, "seed": lane.seed, "config": lane.config_index,
            "lam_H": cfg.lam_H, "lr": cfg.lr, "init_scale": cfg.init_scale,
            "diverged": diverged, "diverged_at": int(res.diverged_at[p]) if diverged else None,
            "loss": _num(last["loss"][p]), "fit": _num(last["fit"][p]), "reg": _num(last["reg"][p]),
            "ranks": {}, "found_dnc": None,
        }
        if not diverged:
            row.update(dnc_verdict(res.lane_params(p), cfg))
        rows.append(row)
    return rows


def _num(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def write_run(res: TrainResult) -> None:
    """Write history, final parameters and summary into the run folder (atomically)."""
    d = res.run_dir
    results.save_table(d / "history.parquet", res.history())
    flat = {}
    for lane in res.lanes:
        flat.update(results.flatten_params(res.lane_params(lane.index), prefix=f"lane{lane.index}/"))
    results.save_npz(d / "params.npz", flat)
    results.save_json(d / "summary.json", {"lanes": res.summary, "run_id": d.name,
                                            "written": time.strftime("%Y-%m-%dT%H:%M:%S")})
