"""`deepcollapse train CONFIG.yaml` and `deepcollapse quickstart`: one DUFM run with a progress bar,
its results folder, its figure and a table of the final numbers per seed."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ..results import dumps
from ._app import app, config_or_fail, fail, validation_message

# Quickstart: Súkeník et al. (2024) Fig. 2 top: 4-DUFM, K=10, n=5, width 30, lam=0.004 everywhere, lr 0.5,
# 10 seeds. The paper states neither the initialisation nor the number of steps: entries N(0, 0.3^2)
# (0.4 and above diverge at lr 0.5) and 30,000 full-batch steps, after which the loss has stopped moving.
QUICKSTART = dict(K=10, n=5, L=4, width=30, activation="relu", loss="mse", lam_H=0.004, lam_W=0.004,
                  init_scale=0.3, lr=0.5, steps=30000, seeds=10, log_every=500, dtype="float32")


def _progress(console: Console):
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
        TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[div]}"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
    )


def run_training(cfg, out: Path, console: Console, plot: bool = True, pdf: bool = False):
    """Train with a progress bar, write the results folder (and plots), return the TrainResult.

    The record and the figure are written by a helper process forked before training starts
    (`cli.helper`; in this process where that is not possible). A run that cannot fit the machine,
    or whose data is missing or damaged, ends with one message and exit code 2; a failed allocation
    or other runtime error of the backend with one message and 1.
    """
    from ..data import DataError
    from ..engine import ResourceError
    from ..train import train
    from .helper import HelperProcess

    with HelperProcess.start(cfg, plot) as helper:
        with _progress(console) as prog:
            task = prog.add_task(f"training {cfg.run_id()}", total=None, loss="-", div="")

            def cb(step, total, loss, n_div):
                prog.update(task, completed=step, total=total, loss=f"{loss:.6f}",
                            div=f"[red]{n_div} diverged[/]" if n_div else "")

            try:
                res = train(cfg, out=out, progress=cb, write=helper.write_run)
            except (ResourceError, DataError, ModuleNotFoundError) as e:
                prog.stop()
                fail(str(e))
            except RuntimeError as e:  # e.g. XLA's RESOURCE_EXHAUSTED when an allocation fails
                prog.stop()
                fail(f"{type(e).__name__}: {' '.join(str(e).split())[:500]}", code=1)
        if plot:
            helper.plot_run(res, formats=("png", "pdf") if pdf else ("png",))
        helper.wait()
    return res


SEED_KEYS = ("seed", "loss", "fit", "reg", "ranks", "found_dnc", "diverged", "diverged_at", "loss_dnc",
             "loss_lowrank", "train_accuracy", "logit_rank_1e6", "structure", "structure_closest",
             "structure_distance", "loss_vs_dnc", "best_construction", "loss_vs_best")


def summary_json(res) -> dict:
    """The --json object: run id, folder, and per seed the final numbers (`SEED_KEYS` it has)."""
    return {
        "run_id": res.run_dir.name if res.run_dir else res.configs[0].run_id(),
        "kind": res.kind,
        "results": str(res.run_dir) if res.run_dir else None,
        "seeds": [{k: row[k] for k in SEED_KEYS if k in row} for row in res.summary],
    }


def summary_table(res, refs: dict) -> Table:
    cfg = res.configs[0]
    names = [f"H{l}" for l in range(1, cfg.L + 1)] + ["Z"]
    t = Table(title="final loss per seed; numerical rank of each layer's class means (rtol %g)" % cfg.rank_rtol)
    for col in ["seed", "loss", "fit", "reg", *names, "DNC", "structure", "/ L_DNC", "/ best"]:
        t.add_column(col, justify="right")
    ratio = lambda x: "-" if x is None else f"{x:.4f}"
    for row in res.summary:
        if row["diverged"]:
            t.add_row(str(row["seed"]), f"[red]diverged at step {row['diverged_at']}[/]", *[""] * (len(names) + 6))
            continue
        t.add_row(str(row["seed"]), f"{row['loss']:.5f}", f"{row['fit']:.5f}", f"{row['reg']:.5f}",
                  *[str(row["ranks"][n]) for n in names], "yes" if row["found_dnc"] else "[yellow]no[/]",
                  str(row.get("structure")), ratio(row.get("loss_vs_dnc")), ratio(row.get("loss_vs_best")))
    if refs:
        t.caption = ", ".join(f"{k} = {v:.6f}" for k, v in refs.items())
    return t


@app.command()
def train(
    config: Path = typer.Argument(..., help="YAML file of config fields (DUFMConfig; `kind: net`: NetConfig)"),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="override a field: key=value (repeatable)"),
    out: Path = typer.Option(Path("runs"), "--out", help="results root; the run goes to OUT/<run id>/"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object on stdout"),
    plot: bool = typer.Option(True, "--plot/--no-plot", help="write the training figure (training.png)"),
    pdf: bool = typer.Option(False, "--pdf", help="also write training.pdf"),
):
    """Train a DUFM (every seed in one compiled program) or a network from a YAML config; resumes a
    stopped run and reads a finished one back."""
    cfg = config_or_fail(config, set_, out)
    console = Console(stderr=as_json, width=max(100, Console().width))
    res = run_training(cfg, out, console, plot, pdf)
    if as_json:
        print(dumps(summary_json(res)))
    else:
        from ..reference import run_references

        console.print(summary_table(res, run_references(res)))
        console.print(f"results: {res.run_dir}")


@app.command()
def quickstart(
    out: Path = typer.Option(Path("runs"), "--out", help="results root"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object on stdout"),
    steps: int = typer.Option(QUICKSTART["steps"], "--steps", help="gradient steps"),
    seeds: int = typer.Option(QUICKSTART["seeds"], "--seeds", help="number of seeds"),
):
    """Súkeník et al. Fig. 2 (top): a 4-DUFM, K=10, 10 seeds, and its three panels."""
    from ..config import DUFMConfig
    from ..reference import reference_losses

    try:
        cfg = DUFMConfig(**(QUICKSTART | {"steps": steps, "seeds": seeds,
                                          "log_every": min(QUICKSTART["log_every"], steps)}))
    except Exception as e:
        fail(validation_message(e))
    console = Console(stderr=as_json, width=max(100, Console().width))
    res = run_training(cfg, out, console, plot=True)
    refs = reference_losses(cfg)
    if as_json:
        print(dumps(summary_json(res) | {"reference": refs}))
        return
    console.print(summary_table(res, refs))
    ok = [r for r in res.summary if not r["diverged"]]
    if ok:
        below = sum(r["loss"] < refs["L_DNC"] for r in ok)
        console.print(f"{sum(r['found_dnc'] for r in ok)}/{len(ok)} seeds found DNC; "
                      f"{below}/{len(ok)} ended below L_DNC = {refs['L_DNC']:.6f}")
    console.print(f"results and figure: {res.run_dir}/training.png")
