"""The run record: one folder per run, for every model (DUFM and real networks), one writer, one reader.

A run folder `<root>/<run_id>/` holds
  config.yaml       the validated config (a list of configs for a multi-config run); run_id = its hash
  history.parquet   tidy table, one row per step x lane x layer x metric, with the lane's seed and every
                    hyper-parameter that can vary across lanes as columns (also history.csv)
  params.npz        final parameters of every lane, keys `lane<p>/<name>`
  summary.json      per-lane final numbers, and the SHA-256 of every other file of the record
  checkpoint.npz    while running: the state after the last finished chunk (checkpoint.prev.npz: the one
                    before); both removed when the record is complete
summary.json is written last: a folder is a complete record iff summary.json parses and every file it
lists has the checksum it lists (`is_complete`), so a truncated or deleted file makes the run count as
not done and it is recomputed, never read. Every file goes through `atomic_write` (a uniquely named
temporary file in the target folder, then os.replace), so a stopped run never leaves half a file and
two processes never share a temporary name. JSON is strict: a non-finite number is written as null.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

CONFIG = "config.yaml"
HISTORY = "history.parquet"
HISTORY_CSV = "history.csv"
PARAMS = "params.npz"
SUMMARY = "summary.json"
CHECKPOINT = "checkpoint.npz"
PREVIOUS_CHECKPOINT = "checkpoint.prev.npz"
FORMAT = 2  # of summary.json: 2 = with the checksums of the record's files

_UMASK = os.umask(0)
os.umask(_UMASK)


class RecordError(ValueError):
    """A run folder's file is missing, unreadable or does not match its checksum (the message names it)."""


# ---- atomic writes and file formats ---------------------------------------------------------------
def atomic_write(path: str | os.PathLike, data: bytes) -> str:
    """Write `data` to `path` through a uniquely named temporary file in the same folder and
    os.replace; returns the SHA-256 of `data`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return hashlib.sha256(data).hexdigest()


def atomic_write_text(path, text: str) -> str:
    return atomic_write(path, text.encode())


def json_safe(obj):
    """obj with NumPy scalars and arrays as Python values and every non-finite float as None."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dumps(obj, **kw) -> str:
    """Strict JSON of `obj` (`json_safe`, allow_nan=False)."""
    return json.dumps(json_safe(obj), allow_nan=False, **kw)


def save_json(path, obj) -> str:
    return atomic_write_text(path, dumps(obj, indent=2, sort_keys=True) + "\n")


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def save_npz(path, arrays: dict[str, np.ndarray]) -> str:
    return atomic_write(path, npz_bytes(arrays))


def load_npz(path) -> dict[str, np.ndarray]:
    """Every array of an .npz file (no pickles); RecordError naming the file if it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise RecordError(f"{path}: missing") from None
    except Exception as e:  # noqa: BLE001 - zip, header or CRC errors of a damaged file
        raise RecordError(f"{path}: unreadable ({type(e).__name__}: {e})") from None


def save_table(path_parquet, df) -> dict[str, str]:
    """Write a pandas DataFrame as Parquet and, next to it, CSV (both atomically); their checksums."""
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    csv = Path(path_parquet).with_suffix(".csv")
    return {Path(path_parquet).name: atomic_write(path_parquet, buf.getvalue()),
            csv.name: atomic_write_text(csv, df.to_csv(index=False))}


def load_table(path):
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise RecordError(f"{path}: missing") from None
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file
        raise RecordError(f"{path}: unreadable ({type(e).__name__}: {e})") from None


def config_yaml(configs: Sequence) -> str:
    """config.yaml of one config (a mapping) or several (a list of mappings)."""
    import yaml

    dicts = [c.to_dict() for c in configs]
    return yaml.safe_dump(dicts[0] if len(dicts) == 1 else dicts, sort_keys=True)


def read_config_dicts(run_dir) -> list[dict]:
    """The config mappings of a run folder's config.yaml (one or several)."""
    import yaml

    path = Path(run_dir) / CONFIG
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise RecordError(f"{path}: missing") from None
    except yaml.YAMLError as e:
        raise RecordError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
    dicts = data if isinstance(data, list) else [data]
    if not dicts or not all(isinstance(d, dict) for d in dicts):
        raise RecordError(f"{path}: expected a config mapping or a list of them")
    return dicts


def read_configs(run_dir) -> list:
    from .config import parse_config

    return [parse_config(d) for d in read_config_dicts(run_dir)]


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---- the record -------------------------------------------------------------------------------------
def read_summary(run_dir, verify: bool = True) -> dict:
    """summary.json of a complete record; with `verify`, every file it lists must match its checksum.

    RecordError (naming the file) for a missing or damaged file.
    """
    path = Path(run_dir) / SUMMARY
    try:
        summary = json.loads(path.read_text())
    except FileNotFoundError:
        raise RecordError(f"{path}: missing") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise RecordError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("lanes"), list) \
            or not isinstance(summary.get("files"), dict):
        raise RecordError(f"{path}: not a run summary (no lanes or no file checksums)")
    if verify:
        for name, digest in summary["files"].items():
            f = Path(run_dir) / name
            if not f.is_file():
                raise RecordError(f"{f}: missing")
            if sha256_file(f) != digest:
                raise RecordError(f"{f}: damaged (checksum differs from summary.json's)")
    return summary


def is_complete(run_dir) -> bool:
    """True iff `run_dir` holds an intact record (`read_summary` with verification succeeds)."""
    try:
        read_summary(run_dir)
    except RecordError:
        return False
    return True


def damage(run_dir) -> str | None:
    """Why a folder that has a summary.json is not a complete record (None if it is, or has none)."""
    if not (Path(run_dir) / SUMMARY).exists():
        return None
    try:
        read_summary(run_dir)
    except RecordError as e:
        return str(e)
    return None


@dataclass(frozen=True)
class Lane:
    """One (config, seed) pair of a run: its index among the run's lanes."""

    index: int
    config_index: int
    seed: int


@dataclass
class TrainResult:
    """What a run produced, for every model: lanes, tidy history, final parameters and per-lane summary.

    logs: "layer/metric" (or a bare name for the loss terms) -> (T, P) array over the logged steps;
    params: flat final parameters, name -> array with a leading lane axis P; time_columns: extra
    per-step columns of the history (a network's "epoch").
    """

    configs: list
    lanes: list[Lane]
    steps: np.ndarray  # logged steps, (T,)
    logs: dict[str, np.ndarray]
    params: dict[str, np.ndarray]
    diverged_at: np.ndarray  # (P,), -1 if never
    summary: list[dict]
    run_dir: Path | None = None
    complete: bool = True
    time_columns: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.configs[0].kind

    def lane_params(self, p: int) -> dict:
        """Final parameters of lane p: the DUFM pytree {"H1", "W": (W_1..W_L)}, or a network's flat
        state {name: array} (`deepcollapse.nets.model_from_params` rebuilds the model)."""
        lane = {k: np.asarray(v[p]) for k, v in self.params.items()}
        return unflatten_params(lane) if self.kind == "dufm" else lane

    def history(self):
        """Tidy table: one row per logged step x lane x layer x metric (layer "" for the loss terms),
        with the time columns, and per lane its seed, config index, varying hyper-parameters, run_id."""
        import pandas as pd

        T, P = len(self.steps), len(self.lanes)
        names = [tuple(k.split("/")) if "/" in k else ("", k) for k in self.logs]
        order = sorted(range(len(names)), key=lambda i: names[i])  # rows: lane, step, layer, metric
        values = np.stack([np.asarray(v, np.float64).reshape(T, P) for v in self.logs.values()])
        M = len(order)
        pick = np.tile(np.asarray(order), P * T)  # the key of every row
        lane = np.repeat(np.arange(P), T * M)
        t = np.tile(np.repeat(np.arange(T), M), P)
        frame = {"step": np.asarray(self.steps)[t]}
        for name, col in self.time_columns.items():
            frame[name] = np.asarray(col)[t]
        frame.update(lane=lane, layer=np.array([n[0] for n in names], object)[pick],
                     metric=np.array([n[1] for n in names], object)[pick], value=values[pick, t, lane])
        info = [{"seed": l.seed, "config": l.config_index, **self.configs[l.config_index].lane_columns(),
                 "run_id": self.configs[l.config_index].run_id()} for l in self.lanes]
        for col in info[0] if info else ():
            frame[col] = pd.Series([row[col] for row in info]).to_numpy()[lane]
        return pd.DataFrame(frame)

    def flat_params(self) -> dict[str, np.ndarray]:
        """params.npz's arrays: `lane<p>/<name>` per lane."""
        return {f"lane{l.index}/{k}": np.asarray(v[l.index]) for l in self.lanes for k, v in self.params.items()}

    def select(self, i: int) -> "TrainResult":
        """The lanes of config i of a multi-config result, renumbered 0.. as if the config ran alone."""
        idx = [lane.index for lane in self.lanes if lane.config_index == i]
        sel = np.asarray(idx)
        return TrainResult(
            configs=[self.configs[i]],
            lanes=[Lane(j, 0, self.lanes[p].seed) for j, p in enumerate(idx)],
            steps=np.array(self.steps),
            logs={k: np.asarray(v)[:, sel] for k, v in self.logs.items()},
            params={k: np.asarray(v)[sel] for k, v in self.params.items()},
            diverged_at=np.asarray(self.diverged_at)[sel],
            summary=[dict(self.summary[p], lane=j, config=0) for j, p in enumerate(idx)],
            run_dir=None, complete=self.complete, time_columns=dict(self.time_columns))


def flatten_params(params: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """DUFM parameters {"H1": a, "W": (w1, w2)} -> {"H1": a, "W/1": w1, "W/2": w2} (layers from 1)."""
    out = {}
    if "H1" in params:
        out[f"{prefix}H1"] = np.asarray(params["H1"])
    for l, W in enumerate(params["W"], start=1):
        out[f"{prefix}W/{l}"] = np.asarray(W)
    return out


def unflatten_params(flat: dict[str, np.ndarray], prefix: str = "") -> dict:
    Ws = sorted(
        ((int(k[len(prefix) + 2:]), v) for k, v in flat.items() if k.startswith(f"{prefix}W/")),
        key=lambda t: t[0],
    )
    params = {"W": tuple(v for _, v in Ws)}
    if f"{prefix}H1" in flat:
        params["H1"] = flat[f"{prefix}H1"]
    return params


def write_run(res: TrainResult, run_dir: str | Path | None = None) -> Path:
    """Write a finished result as a complete record into `run_dir` (default res.run_dir): config,
    history, parameters, and summary.json last with the checksums of the others. Returns the folder."""
    d = Path(run_dir if run_dir is not None else res.run_dir)
    res.run_dir = d
    files = {CONFIG: atomic_write_text(d / CONFIG, config_yaml(res.configs))}
    files.update(save_table(d / HISTORY, res.history()))
    files[PARAMS] = save_npz(d / PARAMS, res.flat_params())
    save_json(d / SUMMARY, {"format": FORMAT, "kind": res.kind, "run_id": d.name, "lanes": res.summary,
                            "files": files, "written": time.strftime("%Y-%m-%dT%H:%M:%S")})
    for name in (CHECKPOINT, PREVIOUS_CHECKPOINT, "error.json"):
        (d / name).unlink(missing_ok=True)
    return d


def load_run(run_dir: str | Path) -> TrainResult:
    """A complete record read back (nothing is recomputed); RecordError if it is not intact."""
    d = Path(run_dir)
    summary = read_summary(d)
    try:
        configs = read_configs(d)
    except ValueError as e:
        raise RecordError(f"{d / CONFIG}: not a valid config ({e})") from None
    rows = summary["lanes"]
    lanes = [Lane(int(r["lane"]), int(r.get("config", 0)), int(r["seed"])) for r in rows]
    df = load_table(d / HISTORY)
    df = df.assign(key=np.where(df["layer"] == "", df["metric"], df["layer"] + "/" + df["metric"]))
    steps = np.sort(df["step"].unique())
    P = len(lanes)
    logs = {}
    for key, g in df.groupby("key", sort=False):
        arr = np.full((len(steps), P), np.nan)
        arr[np.searchsorted(steps, g["step"].to_numpy()), g["lane"].to_numpy()] = g["value"].to_numpy()
        logs[key] = arr
    time_columns = {}
    if "epoch" in df.columns:
        first = df.drop_duplicates("step").set_index("step")["epoch"]
        time_columns["epoch"] = first.loc[steps].to_numpy()
    flat = load_npz(d / PARAMS)
    names = sorted({k.split("/", 1)[1] for k in flat}, key=lambda k: list(flat).index(f"lane0/{k}"))
    params = {k: np.stack([flat[f"lane{l.index}/{k}"] for l in lanes]) for k in names}
    diverged_at = np.array([-1 if r.get("diverged_at") is None else r["diverged_at"] for r in rows])
    return TrainResult(configs, lanes, steps, logs, params, diverged_at, rows, d, True, time_columns)


def load_params(run_dir, lane: int) -> dict:
    """The final parameters of one lane of a complete record (`TrainResult.lane_params`)."""
    read_summary(run_dir)
    kind = read_config_dicts(run_dir)[0].get("kind", "dufm")
    flat = load_npz(Path(run_dir) / PARAMS)
    prefix = f"lane{lane}/"
    mine = {k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)}
    if not mine:
        raise RecordError(f"{Path(run_dir) / PARAMS}: no parameters of lane {lane}")
    return unflatten_params(mine) if kind == "dufm" else mine


# ---- checkpoints ---------------------------------------------------------------------------------
def save_checkpoint(run_dir, run_id: str, chunk: int, leaves: Sequence, logs: dict[str, list]) -> None:
    """The state after `chunk` finished chunks (every leaf of the state pytree) and the logs so far.

    The previous checkpoint is kept as checkpoint.prev.npz, the fallback if this one is damaged. Two
    processes may train the same config into one folder: a checkpoint the other one has just moved or
    removed is not an error (both write the same numbers).
    """
    d = Path(run_dir)
    arrays: dict[str, Any] = {"run_id": np.asarray(run_id), "chunk": np.asarray(chunk)}
    for i, leaf in enumerate(leaves):
        arrays[f"s/{i}"] = np.asarray(leaf)
    for k, v in logs.items():
        arrays[f"h/{k}"] = np.stack(v)
    try:
        os.replace(d / CHECKPOINT, d / PREVIOUS_CHECKPOINT)
    except FileNotFoundError:
        pass
    save_npz(d / CHECKPOINT, arrays)


def load_checkpoint(run_dir, run_id: str, template: Sequence) -> tuple[int, list, dict[str, list]] | None:
    """(chunk, leaves, logs) of the newest intact checkpoint of `run_dir` that belongs to `run_id` and
    whose arrays fit `template` (the leaves of a freshly initialised state); None if there is none.

    A damaged or foreign checkpoint is skipped with a one-line warning naming the file.
    """
    for name in (CHECKPOINT, PREVIOUS_CHECKPOINT):
        path = Path(run_dir) / name
        if not path.exists():
            continue
        try:
            z = load_npz(path)
            if str(z.get("run_id")) != run_id:
                raise RecordError(f"{path}: checkpoint of another run ({z.get('run_id')}, this run {run_id})")
            leaves = []
            for i, t in enumerate(template):
                a = z.get(f"s/{i}")
                t = np.asarray(t)
                if a is None or a.shape != t.shape or a.dtype != t.dtype:
                    raise RecordError(f"{path}: array {i} does not fit the model's state")
                leaves.append(a)
            if f"s/{len(template)}" in z:
                raise RecordError(f"{path}: more arrays than the model's state")
            logs = {k[2:]: list(v) for k, v in z.items() if k.startswith("h/")}
            chunk = int(z["chunk"])
            if any(len(v) != chunk + 1 for v in logs.values()):
                raise RecordError(f"{path}: its history does not match its chunk count")
            return chunk, leaves, logs
        except (RecordError, KeyError, ValueError) as e:
            if not path.exists():  # moved or removed by another process training the same config
                continue
            warnings.warn(f"ignoring a damaged checkpoint: {e}", RuntimeWarning, stacklevel=2)
    return None
