"""CLI commands of the experiment registry: `list`, `reproduce NAME`, `report`.

(mounted at the top level: `deepcollapse list | reproduce | report`).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ._app import app

DEFAULT_OUT = Path("results/experiments")


def _fmt_seconds(s: float) -> str:
    s = float(s)
    if s < 120:
        return f"{s:.0f} s"
    return f"{s / 60:.0f} min" if s < 3 * 3600 else f"{s / 3600:.0f} h"



@app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help="print a JSON list instead of a table")) -> None:
    """Registered experiments: paper, figure, description, estimated quick/full CPU time."""
    from deepcollapse.experiments.registry import all_experiments

    exps = all_experiments()
    if as_json:
        typer.echo(json.dumps([{"name": e.name, "paper": e.paper, "figure": e.figure, "kind": e.kind,
                                "description": e.description, "est_seconds_quick": e.est_seconds_quick,
                                "est_seconds_full": e.est_seconds_full} for e in exps], indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Registered experiments (times: estimated, 2-core CPU)")
    for col in ("name", "paper / figure", "description", "quick", "full"):
        table.add_column(col, overflow="fold")
    for e in exps:
        note = " [red](not implemented)[/red]" if e.not_implemented else ""
        table.add_row(e.name, f"{e.paper.split(',')[0].split('(')[0].strip()}, {e.figure}", e.description + note,
                      _fmt_seconds(e.est_seconds_quick), _fmt_seconds(e.est_seconds_full))
    Console(width=160).print(table)

@app.command("reproduce")
def reproduce_cmd(
    name: str = typer.Argument(..., help="experiment name (see `list`)"),
    quick: bool = typer.Option(False, "--quick", help="2-core CPU size (minutes)"),
    smoke: bool = typer.Option(False, "--smoke", help="CI size (seconds)"),
    out: Path = typer.Option(DEFAULT_OUT, "--out", help="results root; the experiment writes out/NAME/"),
    backend: str = typer.Option("local", "--backend", help="local or ray"),
    ray_address: str = typer.Option(None, "--ray-address", help="address of a running Ray cluster"),
) -> None:
    """Run one experiment (resuming finished points) and write its figures, table and summary."""
    from deepcollapse.experiments.registry import get
    from deepcollapse.experiments.runner import reproduce

    if backend not in ("local", "ray"):
        raise typer.BadParameter(f"--backend must be 'local' or 'ray', got {backend!r}")
    try:
        get(name)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    try:
        d = reproduce(name, out, quick=quick, smoke=smoke, backend=backend, ray_address=ray_address,
                      progress=True)
    except NotImplementedError as e:
        typer.echo(f"not implemented: {e}", err=True)
        raise typer.Exit(2) from e
    except ModuleNotFoundError as e:
        extra = {"flax": "nets", "ray": "dist"}.get((e.name or "").split(".")[0])
        if extra is None:
            raise
        typer.echo(f"error: {name} needs the optional package {e.name!r}: pip install 'deepcollapse[{extra}]'",
                   err=True)
        raise typer.Exit(2) from e
    except FileNotFoundError as e:  # a data set that is not on disk (the message says where to put it)
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    typer.echo((d / "summary.md").read_text())
    typer.echo(f"wrote {d}")

@app.command("report")
def report_cmd(
    out: Path = typer.Option(DEFAULT_OUT, "--out", help="results root holding reproduced experiments"),
) -> None:
    """One offline HTML page and a Markdown file of every reproduced experiment under --out."""
    from deepcollapse.experiments.report import write_report

    try:
        h, m = write_report(out)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    typer.echo(f"wrote {h} and {m}")
