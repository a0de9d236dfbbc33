"""`deepcollapse theory srg-ratio`: the table and plot of L_SRG / L_DNC (Súkeník et al., Fig. 3 left)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Optional

import typer

from deepcollapse.theory.cli import app
from deepcollapse.theory.srg import TABLE_VARIANTS, srg_ratio_table

COLUMNS = ("r", "K", "L", "loss_dnc", "loss_srg", "ratio")


def write_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(COLUMNS))
        w.writeheader()
        for row in rows:
            w.writerow({k: row[k] for k in COLUMNS})


def plot_ratio(rows: list[dict], path: Path, lam: float, n: int) -> None:
    """L_SRG / L_DNC against r, one curve per L (Súkeník et al., Fig. 3 left); PNG and PDF."""
    from deepcollapse.plots import pyplot, save_figure

    fig, ax = pyplot().subplots(figsize=(4.5, 3.5))
    for L in sorted({row["L"] for row in rows}):
        sel = sorted((row for row in rows if row["L"] == L), key=lambda row: row["r"])
        ax.plot([row["r"] for row in sel], [row["ratio"] for row in sel], "o-", label=f"L = {L}")
    ax.axhline(1.0, color="gray", lw=0.8, ls="--")
    ax.set_xlabel("r  (K = r(r-1)/2 classes)")
    ax.set_ylabel(r"$\mathcal{L}_{SRG} / \mathcal{L}_{DNC}$")
    ax.set_title(f"lambda = {lam:g}, n = {n}")
    ax.legend()
    save_figure(fig, path.parent, path.stem)


@app.command("srg-ratio")
def srg_ratio(
    r: list[int] = typer.Option([4, 5, 6, 7, 8], "--r", help="graph sizes r (repeat: --r 4 --r 5); K = C(r,2)"),
    L: list[int] = typer.Option([3, 4, 5], "--L", help="depths L (repeat: --L 3 --L 4)"),
    lam: float = typer.Option(0.004, "--lam", help="weight decay of every factor (lam_H = lam_l)"),
    n: int = typer.Option(1, "--n", help="samples per class"),
    variant: str = typer.Option("spec", "--variant", help=f"SRG construction: one of {TABLE_VARIANTS} (spec = SPEC.md / paper)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON list of rows on stdout"),
    out: Optional[Path] = typer.Option(None, "--out", help="directory for srg_ratio.png and srg_ratio.csv"),
) -> None:
    """L_SRG / L_DNC of the MSE ReLU L-DUFM (Súkeník et al., Fig. 3 left), exact closed forms."""
    try:
        rows = srg_ratio_table(r, L, lam, n, variant)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_csv(rows, out / "srg_ratio.csv")
        plot_ratio(rows, out / "srg_ratio.png", lam, n)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"L_SRG / L_DNC (MSE ReLU L-DUFM, lam = {lam:g}, n = {n}, SRG variant {variant})")
    for col in COLUMNS:
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(str(row["r"]), str(row["K"]), str(row["L"]), f"{row['loss_dnc']:.6g}",
                      f"{row['loss_srg']:.6g}", f"{row['ratio']:.4f}")
    Console().print(table)
    if out is not None:
        Console().print(f"wrote {out / 'srg_ratio.png'} and {out / 'srg_ratio.csv'}")
