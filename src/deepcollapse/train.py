"""`train`: the one run path for every model: lanes, chunks, checkpoints, the run record.

A run is a list of lanes (config x seed) advanced chunk by chunk by an *engine*:
  - DUFM configs: `deepcollapse.engine.Program`, every lane of configs with equal shapes in one
    compiled program (a chunk is `log_every` full-batch steps);
  - a network config: `deepcollapse.nets.train.NetEngine`, its seeds trained one after another
    (a chunk is `eval_every` epochs of every seed).
After each chunk the engine evaluates every lane (a dict of per-lane numbers); with `out` the state
and the logs so far are checkpointed, so a stopped run (Ctrl-C, kill -9, a dead Ray worker) resumes
from its last chunk and reproduces the uninterrupted numbers bit for bit. A finished run is written
as a record (`deepcollapse.results`) and read back, not recomputed, when it is asked for again.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable, Protocol, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from . import results
from .config import Convergence, DUFMConfig, RunConfig, _hash, is_run_config
from .engine import dnc_verdict, final_class_means, final_features, input_data  # noqa: F401  (API)
from .results import Lane, TrainResult

ProgressFn = Callable[[int, int, float, int], None]


class Engine(Protocol):
    """What `train` needs of a model: lanes, chunks, evaluation, the final parameters, a summary."""

    kind: str
    configs: list
    lanes: list[Lane]
    n_chunks: int
    total_steps: int

    def init(self): ...
    def chunk(self, state, k: int): ...
    def evaluate(self, state) -> dict[str, np.ndarray]: ...
    def diverged_at(self, state) -> np.ndarray: ...
    def final_params(self, state) -> dict[str, np.ndarray]: ...
    def steps_of(self, n_logged: int) -> np.ndarray: ...
    def time_columns(self, steps: np.ndarray) -> dict: ...
    def summarize(self, res: TrainResult, state) -> list[dict]: ...


def make_engine(configs: Sequence[RunConfig]) -> Engine:
    """The engine of a list of configs: DUFM configs of one shape, or a single network config."""
    if not configs:
        raise ValueError("configs: need at least one config")
    if not all(is_run_config(c) for c in configs):
        raise ValueError("configs: expected DUFMConfig or NetConfig items")
    kinds = {c.kind for c in configs}
    if kinds == {"dufm"}:
        from .engine import Program

        return Program(list(configs))
    if kinds == {"net"} and len(configs) == 1:
        from .nets.train import NetEngine

        return NetEngine(configs[0])
    raise ValueError("configs: one run holds DUFM configs of equal shapes, or one network config")


DEFAULT_CONVERGENCE = Convergence(stop=False)


def converged_at(steps: np.ndarray, loss: np.ndarray, criterion: Convergence, total_steps: int,
                 accuracy: np.ndarray | None = None) -> np.ndarray:
    """Per lane, the first logged step at which `criterion` holds (`config.Convergence`), -1 if none.

    steps: (T,) logged steps; loss: (T, P) logged loss; accuracy: (T, P) train accuracy (networks).
    The window w is criterion.window (default: a tenth of total_steps), at least one logged interval;
    the loss w steps back is the last one logged at or before t - w. NaN losses never converge.
    """
    steps = np.asarray(steps)
    loss = np.asarray(loss, np.float64)
    T, P = loss.shape
    out = np.full(P, -1)
    if T < 2:
        return out
    w = criterion.window if criterion.window is not None else total_steps // 10
    w = max(int(w), int(np.min(np.diff(steps))))
    for t in range(1, T):
        if steps[t] < w:
            continue
        back = int(np.searchsorted(steps, steps[t] - w, side="right")) - 1
        with np.errstate(invalid="ignore"):
            ok = np.abs(loss[t] - loss[back]) <= criterion.rtol * np.abs(loss[t])
        if accuracy is not None and criterion.min_accuracy is not None:
            ok &= np.asarray(accuracy[t]) >= criterion.min_accuracy
        new = (out < 0) & ok
        out[new] = steps[t]
    return out


def run_id_of(configs: Sequence[RunConfig]) -> str:
    """A run's folder name: the config's run id (several configs: the hash of theirs)."""
    if len(configs) == 1:
        return configs[0].run_id()
    return _hash({"configs": [c.run_id() for c in configs]})


def train(config: RunConfig | Sequence[RunConfig], out: str | Path | None = None,
          progress: ProgressFn | None = None, max_chunks: int | None = None, engine: Engine | None = None,
          write: Callable[[TrainResult, Path], object] = results.write_run) -> TrainResult:
    """Train every lane of one config (or of several DUFM configs with equal shapes).

    out: results root; the run is written to `out/<run_id>/` and resumes from its checkpoint there;
    a complete record there is read back instead of training (a damaged one is recomputed, with a
    warning naming the file). progress(step, total, mean_loss, n_diverged) is called after every
    chunk. max_chunks stops after that many chunks in this call (the checkpoint stays, a later call
    resumes). engine: a prepared engine for these configs (e.g. a network engine with preloaded data).
    write: what writes the complete record (`results.write_run`; the command line hands it to its
    helper process, `cli.helper`).
    """
    configs = [config] if is_run_config(config) else list(config)
    eng = make_engine(configs) if engine is None else engine
    run_id = run_id_of(configs)
    run_dir = Path(out) / run_id if out is not None else None
    if run_dir is not None:
        if results.is_complete(run_dir):
            return results.load_run(run_dir)
        why = results.damage(run_dir)
        if why is not None:
            warnings.warn(f"recomputing a damaged run: {why}", RuntimeWarning, stacklevel=2)

    state = eng.init()
    leaves, treedef = jax.tree.flatten(state)
    saved = results.load_checkpoint(run_dir, run_id, leaves) if run_dir is not None else None
    if saved is not None:
        done, leaves, logs = saved
        state = jax.tree.unflatten(treedef, [jnp.asarray(a) for a in leaves])
    else:
        done = 0
        logs = {k: [np.asarray(v)] for k, v in eng.evaluate(state).items()}
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        results.atomic_write_text(run_dir / results.CONFIG, results.config_yaml(configs))

    criterion = configs[0].converge
    stop_at = eng.n_chunks if max_chunks is None else min(eng.n_chunks, done + max_chunks)
    finished = _all_converged(eng, state, logs, criterion)
    for chunk in range(done, stop_at):
        if finished:
            break
        state = eng.chunk(state, chunk)
        new = eng.evaluate(state)
        for k, v in new.items():
            logs[k].append(np.asarray(v))
        if run_dir is not None:
            results.save_checkpoint(run_dir, run_id, chunk + 1, jax.tree.leaves(jax.device_get(state)), logs)
        if progress is not None:
            loss = np.asarray(new["loss"])
            finite = loss[np.isfinite(loss)]
            step = int(eng.steps_of(chunk + 2)[-1])
            progress(step, eng.total_steps, float(finite.mean()) if finite.size else float("nan"),
                     int((eng.diverged_at(state) >= 0).sum()))
        finished = _all_converged(eng, state, logs, criterion)

    n_logged = len(next(iter(logs.values())))
    steps = eng.steps_of(n_logged)
    res = TrainResult(configs=configs, lanes=eng.lanes, steps=steps, logs={k: np.stack(v) for k, v in logs.items()},
                      params=eng.final_params(state), diverged_at=eng.diverged_at(state), summary=[],
                      run_dir=run_dir, complete=finished or stop_at == eng.n_chunks,
                      time_columns=eng.time_columns(steps))
    res.summary = eng.summarize(res, state)
    conv = converged_at(steps, res.logs["loss"], criterion or DEFAULT_CONVERGENCE, eng.total_steps,
                        res.logs.get("accuracy"))
    for row, c in zip(res.summary, conv):
        row["converged"], row["converged_at"] = bool(c >= 0), int(c) if c >= 0 else None
    if run_dir is not None and res.complete:
        write(res, run_dir)
    return res


def _all_converged(eng, state, logs: dict, criterion: Convergence | None) -> bool:
    """True when the criterion stops the run: every lane converged or diverged."""
    if criterion is None or not criterion.stop:
        return False
    n = len(logs["loss"])
    conv = converged_at(eng.steps_of(n), np.stack(logs["loss"]), criterion, eng.total_steps,
                        np.stack(logs["accuracy"]) if "accuracy" in logs else None)
    return bool(np.all((conv >= 0) | (eng.diverged_at(state) >= 0)))


def load_run(run_dir: str | Path) -> TrainResult:
    """A complete run record read back (`results.load_run`)."""
    return results.load_run(run_dir)


__all__ = ["DUFMConfig", "Engine", "ProgressFn", "TrainResult", "dnc_verdict", "final_class_means", "final_features",
           "input_data", "load_run", "make_engine", "run_id_of", "train"]
