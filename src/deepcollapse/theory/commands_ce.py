"""`deepcollapse theory ce-compare`: DNC vs the Eq. (5) pairs in the deep linear CE UFM (Garrod & Keating, Thm 1)."""

from __future__ import annotations

import json

import typer

from deepcollapse.theory.ce import ce_compare
from deepcollapse.theory.cli import app

COLUMNS = ("K", "L", "loss_dnc", "loss_lowrank", "lowrank_wins", "theorem1_predicts")


def ce_compare_table(Ks: list[int], Ls: list[int], lam: float, n: int) -> list[dict]:
    """One `ce_compare` row per (K, L), K outer."""
    return [ce_compare(K, L, lam, n) for K in Ks for L in Ls]


@app.command("ce-compare")
def ce_compare_cmd(
    K: list[int] = typer.Option([3, 4, 5, 6, 8, 10], "--K", help="numbers of classes (repeat: --K 4 --K 6)"),
    L: list[int] = typer.Option([1, 2, 3, 4, 6], "--L", help="depths L (repeat: --L 2 --L 3)"),
    lam: float = typer.Option(0.001, "--lam", help="weight decay of every factor"),
    n: int = typer.Option(1, "--n", help="samples per class"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON list of rows on stdout"),
) -> None:
    """Optimal-scale losses of DNC and the Eq. (5) pairs, and Theorem 1's prediction (Garrod & Keating)."""
    try:
        rows = ce_compare_table(K, L, lam, n)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    if as_json:
        typer.echo(json.dumps(rows))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Deep linear CE UFM: DNC vs Eq. (5) pairs (lam = {lam:g}, n = {n})")
    for col in COLUMNS:
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(str(row["K"]), str(row["L"]), f"{row['loss_dnc']:.6g}", f"{row['loss_lowrank']:.6g}",
                      str(row["lowrank_wins"]), str(row["theorem1_predicts"]))
    Console().print(table)
