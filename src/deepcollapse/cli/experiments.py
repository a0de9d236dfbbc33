"""`deepcollapse list | reproduce NAME | report`: the experiment registry on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ._app import app, fail

DEFAULT_OUT = Path("results/experiments")
SIZE_COLUMNS = ("quick", "medium", "full")


def _fmt_seconds(s: float) -> str:
    s = float(s)
    if s < 120:
        return f"{s:.0f} s"
    return f"{s / 60:.0f} min" if s < 3 * 3600 else f"{s / 3600:.0f} h"


@app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help="print a JSON list instead of a table")) -> None:
    """Registered experiments: paper, figure, description, the sizes and their estimated CPU time."""
    from deepcollapse.experiments.registry import all_experiments

    exps = all_experiments()
    if as_json:
        typer.echo(json.dumps([{"name": e.name, "paper": e.paper, "figure": e.figure, "kind": e.kind,
                                "description": e.description, "sizes": list(e.sizes), "est_seconds": e.est_seconds}
                               for e in exps], indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Registered experiments (times: estimated, 2-core CPU)")
    for col in ("name", "paper / figure", "description", *SIZE_COLUMNS):
        table.add_column(col, overflow="fold")
    for e in exps:
        times = [_fmt_seconds(e.est_seconds[s]) if s in e.est_seconds else "-" for s in SIZE_COLUMNS]
        table.add_row(e.name, f"{e.paper.split(',')[0].split('(')[0].strip()}, {e.figure}", e.description, *times)
    Console(width=160).print(table)


@app.command("reproduce")
def reproduce_cmd(
    name: str = typer.Argument(..., help="experiment name (see `list`)"),
    size: str = typer.Option(None, "--size", help="smoke, quick, medium or full (default full)"),
    quick: bool = typer.Option(False, "--quick", help="--size quick: a 2-core CPU in minutes"),
    smoke: bool = typer.Option(False, "--smoke", help="--size smoke: seconds (CI)"),
    out: Path = typer.Option(DEFAULT_OUT, "--out", help="results root; the experiment writes out/NAME/"),
    backend: str = typer.Option("local", "--backend", help="local or ray"),
    ray_address: str = typer.Option(None, "--ray-address", help="address of a running Ray cluster"),
) -> None:
    """Run one experiment (resuming finished points) and write its figures, table and summary."""
    from deepcollapse.data import DataError
    from deepcollapse.experiments.registry import get, parse_size
    from deepcollapse.experiments.runner import reproduce

    if backend not in ("local", "ray"):
        raise typer.BadParameter(f"must be 'local' or 'ray', got {backend!r}", param_hint="--backend")
    try:
        get(name).check_size(parse_size(size, quick=quick, smoke=smoke))
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    if out.exists() and not out.is_dir():
        fail(f"--out {out} is not a folder")
    try:
        d = reproduce(name, out, size, quick=quick, smoke=smoke, backend=backend, ray_address=ray_address,
                      progress=True)
    except ModuleNotFoundError as e:
        extra = {"flax": "nets", "ray": "dist", "torch": "torch"}.get((e.name or "").split(".")[0])
        if extra is None:
            raise
        fail(f"{name} needs the optional package {e.name!r}: pip install 'deepcollapse[{extra}]'")
    except DataError as e:  # a data set that is missing or damaged (the message names the file)
        fail(str(e))
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
