"""`reproduce(name, out, size)`: run one registered experiment and write its figures, table and summary.

Layout of `out/<name>/`:
  points/<run_id>/     the sweep points, run records of DUFM or network runs (`deepcollapse.sweep`;
                       complete points are reused on a rerun)
  <figure>.png/.pdf    the figure(s) (matplotlib, Agg)
  results.parquet/.csv the tidy results table
  summary.md           the numbers the figure shows
  experiment.json      name, paper, figure, size, description, the reasons for unstated settings, the
                       settings derived from the configs, the run ids, the figure files
An experiment with `points_from` trains into `out/<points_from>/points/` instead, so that two figures
drawn from the same runs (Garrod & Keating, Fig. 2 and Fig. 5) train them once.
"""

from __future__ import annotations

import time
from pathlib import Path

from deepcollapse import results
from deepcollapse.experiments.registry import Data, describe_configs, get, parse_size

BACKENDS = ("local", "ray")


def reproduce(name: str, out: str | Path, size: str | None = None, *, quick: bool = False, smoke: bool = False,
              backend: str = "local", ray_address: str | None = None, progress: bool = False) -> Path:
    """Run experiment `name` at `size` (or the --quick / --smoke flags; default the paper's "full")
    into `out/<name>/` and return that folder. backend/ray_address: passed to `sweep.run_sweep`."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    exp = get(name)
    size = exp.check_size(parse_size(size, quick=quick, smoke=smoke))
    t0 = time.perf_counter()
    exp_dir = Path(out) / name
    exp_dir.mkdir(parents=True, exist_ok=True)
    configs = list(exp.configs(size))
    data = Data(name=name, size=size, dir=exp_dir, configs=configs, params=exp.params(size))
    sweep_info = None
    if configs:
        from deepcollapse import sweep

        sweep_dir = Path(out) / (exp.points_from or name)
        rep = sweep.run_sweep(configs, sweep_dir, backend=backend, ray_address=ray_address, progress=progress)
        sweep_info = {"ran": rep.ran, "skipped": rep.skipped, "retried": rep.retried, "failed": rep.failed,
                      "errors": {k: str(v) for k, v in (rep.errors or {}).items()}}
        ids = {c.run_id() for c in configs}
        points = sweep.load_points(sweep_dir)
        points = points[points["run_id"].isin(ids)].reset_index(drop=True)
        if points.empty:
            from deepcollapse.data import DataError
            from deepcollapse.data.errors import error_names

            data_errors = [e for e in sweep_info["errors"].values() if e.split(":")[0] in error_names()]
            if data_errors:  # missing or damaged data: the message names the file and what to do
                raise DataError(data_errors[0].split(": ", 1)[-1])
            raise RuntimeError(f"{name}: no point finished; errors: {sweep_info['errors']}")
        hist = sweep.load_histories(sweep_dir)
        data.points = points
        data.histories = hist[hist["run_id"].isin(ids)].reset_index(drop=True)
        data.table = points
        data.sweep_dir = sweep_dir
    if exp.compute is not None:
        exp.compute(data)
    figures = [Path(p) for p in exp.plot(exp_dir, data)]
    missing = [p for p in figures if not p.exists()]
    if not figures or missing:
        raise RuntimeError(f"{name}: the plot function wrote no figure or missed {missing}")
    if data.table is not None:
        results.save_table(exp_dir / "results.parquet", _tidy(data.table))
    seconds = time.perf_counter() - t0
    flag = {"full": "", "quick": " --quick", "smoke": " --smoke"}.get(size, f" --size {size}")
    head = (f"# {name}: {exp.paper}, {exp.figure}\n\n{exp.description}\n\n"
            f"Size: **{size}**. Command: `deepcollapse reproduce {name}{flag}`. Wall time of this call {seconds:.0f} s"
            + (f" ({sweep_info['ran']} point(s) trained, {sweep_info['skipped']} reused from disk)"
               if sweep_info else "") + ".\n\n")
    if sweep_info and sweep_info["failed"]:
        head += f"**{sweep_info['failed']} point(s) failed**: {sweep_info['errors']}\n\n"
    results.atomic_write_text(exp_dir / "summary.md", head + exp.summarize(data))
    results.save_json(exp_dir / "experiment.json", {
        "name": name, "paper": exp.paper, "figure": exp.figure, "description": exp.description, "size": size,
        "choices": exp.choices, "settings": describe_configs(configs), "params": data.params,
        "run_ids": [c.run_id() for c in configs], "points_dir": str(data.sweep_dir) if data.sweep_dir else None,
        "figures": [p.name for p in figures], "sweep": sweep_info, "seconds": round(seconds, 2),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })
    return exp_dir


def _tidy(df):
    """A table Parquet can store: tuple/list/dict cells become strings."""
    df = df.copy()
    for c in df.columns:
        if df[c].dtype == object and df[c].map(lambda v: isinstance(v, (tuple, list, dict))).any():
            df[c] = df[c].map(lambda v: str(v) if isinstance(v, (tuple, list, dict)) else v)
    return df
