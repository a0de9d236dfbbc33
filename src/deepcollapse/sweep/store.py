"""The sweep's store read back: one run folder per point under `out/points/<run_id>/`.

A point is complete when its run record is (`results.is_complete`: summary.json written last, with
the checksums of the other files, all matching); a damaged point counts as not done and is trained
again by the next run of the sweep.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import results
from ..config import RunConfig

#: Lane columns of `load_points`, after the config's own fields.
LANE_COLUMNS = ("lane", "seed", "loss", "fit", "reg", "found_dnc", "diverged", "diverged_at")


def point_dir(out: str | Path, config: RunConfig) -> Path:
    return Path(out) / "points" / config.run_id()


def is_complete(d: str | Path) -> bool:
    """True if the point folder holds an intact run record (see `results.is_complete`)."""
    return results.is_complete(d)


def complete_points(out: str | Path) -> list[Path]:
    root = Path(out) / "points"
    return sorted(d for d in root.iterdir() if is_complete(d)) if root.is_dir() else []


def _config_columns(cfg: dict) -> dict:
    """Config fields as table columns: `loss` (mse/ce) becomes `loss_fn` (the lanes' `loss` is the
    final loss value), the optimizer becomes `optimizer` (name) and `optimizer_kwargs` (JSON), nested
    mappings become JSON, lists become tuples."""
    row = {}
    for k, v in cfg.items():
        if k == "optimizer":
            row["optimizer"] = v.get("name")
            row["optimizer_kwargs"] = json.dumps(v.get("kwargs") or {}, sort_keys=True)
        elif k == "loss":
            row["loss_fn"] = v
        elif isinstance(v, dict):
            row[k] = json.dumps(v, sort_keys=True)
        else:
            row[k] = tuple(v) if isinstance(v, list) else v
    return row


def load_points(out: str | Path):
    """One row per (point, lane) of every complete point under `out/points/`.

    Columns: the point's config fields (for a DUFM: K, n, L, width, lam_H, lam_W, lr, init_scale,
    activation, loss_fn = the config's `loss` mse/ce, optimizer, optimizer_kwargs, steps, seeds,
    dtype, ...), the lane's lane, seed, loss, fit, reg (final values; NaN if diverged), found_dnc,
    diverged, diverged_at, every other scalar of the lane's summary (loss_dnc, loss_lowrank,
    train_accuracy, converged, ...), rank_<layer> and nc2_<layer> per layer, and run_id.
    """
    import pandas as pd

    rows = []
    for d in complete_points(out):
        summary = results.read_summary(d)
        cfg = _config_columns(results.read_config_dicts(d)[0])
        for lane in summary["lanes"]:
            row = dict(cfg)
            row.update({k: lane.get(k) for k in LANE_COLUMNS})
            for k, v in lane.items():
                if k not in row and (v is None or isinstance(v, (bool, int, float, str))):
                    row[k] = v
            for name, r in (lane.get("ranks") or {}).items():
                row[f"rank_{name}"] = r
            for name, v in (lane.get("nc2") or {}).items():
                row[f"nc2_{name}"] = v
            row["run_id"] = d.name
            rows.append(row)
    if not rows:
        return pd.DataFrame(columns=["run_id", *LANE_COLUMNS])
    df = pd.DataFrame(rows)
    for k in ("loss", "fit", "reg"):
        df[k] = df[k].astype(float)  # None (diverged) -> NaN
    return df


def load_histories(out: str | Path):
    """The history tables of every complete point, concatenated (each carries its run_id)."""
    import pandas as pd

    frames = [results.load_table(d / results.HISTORY) for d in complete_points(out)]
    if not frames:
        return pd.DataFrame(columns=["step", "lane", "layer", "metric", "value", "run_id"])
    return pd.concat(frames, ignore_index=True)
