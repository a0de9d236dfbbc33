"""The results store: one folder per run, atomic writes, tables other tools can read.

A run folder `<root>/<run_id>/` holds
  config.yaml     the config that made it (run_id = its content hash, `DUFMConfig.run_id`)
  history.parquet tidy table, one row per step x lane x layer x metric (also history.csv)
  params.npz      final parameters of every lane, keys like `lane3/W/1`
  summary.json    per-lane final numbers (loss, fit, reg, ranks, found_dnc, divergence)
  checkpoint.npz  while running: the state after the last finished chunk (removed at the end)
Every file is written to a temporary name and moved into place, so a stopped run never leaves a
half-written file.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and os.replace."""
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


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def save_json(path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if not np.isfinite(o) else float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.bool_,)):
        return bool(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def save_npz(path, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    atomic_write_bytes(path, buf.getvalue())


def load_npz(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def save_table(path_parquet, df) -> None:
    """Write a pandas DataFrame as Parquet and, next to it, CSV (both atomically)."""
    import pandas as pd  # noqa: F401

    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(path_parquet, buf.getvalue())
    atomic_write_text(Path(path_parquet).with_suffix(".csv"), df.to_csv(index=False))


def load_table(path):
    import pandas as pd

    return pd.read_parquet(path)


def save_config(path, config) -> None:
    import yaml

    atomic_write_text(path, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=True))


def flatten_params(params: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """{"H1": a, "W": (w1, w2)} -> {"H1": a, "W/1": w1, "W/2": w2} (layers numbered from 1)."""
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


def load_params(run_dir, lane: int) -> dict:
    """The final parameters of one lane of a finished run."""
    return unflatten_params(load_npz(Path(run_dir) / "params.npz"), prefix=f"lane{lane}/")
