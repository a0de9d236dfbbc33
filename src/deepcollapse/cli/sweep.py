"""`deepcollapse sweep SWEEP.yaml --out DIR [--backend local|ray]`.

SWEEP.yaml holds `base:` (config fields; `kind: net` for real-network points) and `grid:` (field ->
list of values; dotted keys such as `optimizer.name` set nested fields). Every grid point is stored
once under DIR/points/<run_id>/; rerunning the command skips complete points.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ._app import app, fail

BACKENDS = ("local", "ray")


@app.command("sweep")
def sweep_command(
    config: Path = typer.Argument(..., help="sweep YAML with base: (config fields) and grid: (field -> list of values)"),
    out: Path = typer.Option(..., "--out", help="results folder (shared by all workers with Ray)"),
    backend: str = typer.Option("local", "--backend", help="local (this process) or ray"),
    ray_address: Optional[str] = typer.Option(None, "--ray-address",
                                              help="Ray cluster to join, e.g. auto or host:6379; "
                                                   "default: start a local Ray instance"),
    max_lanes: int = typer.Option(64, "--max-lanes", min=1, help="most lanes (config x seed) per compiled program"),
    max_retries: int = typer.Option(2, "--max-retries", min=0, help="re-runs of a group whose Ray worker died"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON (no progress bar)"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
) -> None:
    """Run a grid of DUFM or network configs; complete points are skipped, failed points recorded."""
    from .. import sweep

    if backend not in BACKENDS:
        raise typer.BadParameter(f"must be one of {', '.join(BACKENDS)}, got {backend!r}", param_hint="--backend")
    if ray_address is not None and backend != "ray":
        raise typer.BadParameter("only used with --backend ray", param_hint="--ray-address")
    if not config.is_file():
        fail(f"sweep file not found: {config}")
    if out.exists() and not out.is_dir():
        fail(f"--out {out} is not a folder")
    try:
        configs = sweep.read_sweep_file(config)
    except ValueError as e:
        fail(str(e))
    report = sweep.run_sweep(configs, out, backend=backend, ray_address=ray_address,
                             progress=progress and not as_json, max_retries=max_retries, max_lanes=max_lanes)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    else:
        from rich.console import Console

        console = Console()
        console.print(report.line())
        for rid, msg in report.errors.items():
            console.print(f"[red]failed[/red] {rid}: {msg}  (see {report.point_dirs[rid]}/error.json)")
    if report.failed:
        raise typer.Exit(code=1)
