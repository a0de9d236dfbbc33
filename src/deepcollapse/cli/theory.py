"""`deepcollapse theory ...`: tables (and a plot) of the analytic results, each with --json.

    theory srg-ratio   L_SRG / L_DNC of the MSE ReLU L-DUFM (Súkeník et al., Fig. 3 left)
    theory ce-compare  DNC vs the Eq. (5) pairs in the deep linear CE UFM (Garrod & Keating, Thm 1)
    theory hessian     critical scales and Hessian spectra (Garrod & Keating, Thm 4)
    theory dimension   critical-set dimensions vs width (Garrod & Keating, Thm 5)
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Optional

import typer

from ..theory.ce import ce_compare
from ..theory.dimension import COUNTS, dimension_ratio, ratio_limit
from ..theory.landscape import STRUCTURES, critical_point_report, lam_threshold
from ..theory.srg import TABLE_VARIANTS, srg_ratio_table
from ._app import theory_app as app


SRG_COLUMNS = ("r", "K", "L", "loss_dnc", "loss_srg", "ratio")


def _cell(v) -> str:
    """A number of a theory table: ints and flags as they are, floats to 6 significant digits."""
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def print_table(title: str, columns, rows: list[dict]) -> None:
    """A rich table of `rows` (dicts) with the given columns, right-aligned."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(*(_cell(row[c]) for c in columns))
    Console().print(table)


def write_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(SRG_COLUMNS))
        w.writeheader()
        for row in rows:
            w.writerow({k: row[k] for k in SRG_COLUMNS})


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
    print_table(f"L_SRG / L_DNC (MSE ReLU L-DUFM, lam = {lam:g}, n = {n}, SRG variant {variant})", SRG_COLUMNS, rows)
    if out is not None:
        typer.echo(f"wrote {out / 'srg_ratio.png'} and {out / 'srg_ratio.csv'}")


CE_COLUMNS = ("K", "L", "loss_dnc", "loss_lowrank", "lowrank_wins", "theorem1_predicts")


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
    print_table(f"Deep linear CE UFM: DNC vs Eq. (5) pairs (lam = {lam:g}, n = {n})", CE_COLUMNS, rows)


HESSIAN_COLUMNS = ("which", "scale", "loss", "max_abs_grad", "min_eig", "max_eig", "n_negative", "trace",
                   "frobenius", "spectral")


def hessian_report(K: int, L: int, lam: float, n: int, width: int, structure: str = "dnc",
                   method: str = "auto") -> dict:
    """{K, L, lam, n, width, structure, lam_max, s_star, critical_points: [critical_point_report rows]}."""
    lam_max, s_star = lam_threshold(structure, K, L, n)
    rows = critical_point_report(K, L, lam, n, width, structure=structure, method=method)
    return {"K": K, "L": L, "lam": lam, "n": n, "width": width, "structure": structure,
            "lam_max": lam_max, "s_star": s_star, "critical_points": rows}


@app.command("hessian")
def hessian_cmd(
    K: int = typer.Option(4, "--K", help="number of classes"),
    L: int = typer.Option(3, "--L", help="number of weight matrices W_1..W_L"),
    lam: float = typer.Option(0.001, "--lam", help="weight decay of every factor"),
    n: int = typer.Option(1, "--n", help="samples per class"),
    width: int = typer.Option(4, "--width", help="width d of every hidden layer"),
    structure: str = typer.Option("dnc", "--structure", help=f"one of {', '.join(STRUCTURES)}"),
    method: str = typer.Option("auto", "--method", help="Hessian spectrum: auto, dense or lanczos"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object on stdout"),
) -> None:
    """Critical scales of DNC (Eq. 19) or the Eq. 5 pairs, and the full-loss Hessian spectrum at each
    (Garrod & Keating, Theorem 4)."""
    try:
        report = hessian_report(K, L, lam, n, width, structure, method)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    if as_json:
        typer.echo(json.dumps(report))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not report["critical_points"]:
        console.print(f"No critical scale: lam = {lam:g} >= lam_max = {report['lam_max']:.6g}.")
        return
    tol = report["critical_points"][0]["tol"]
    table = Table(title=f"{structure} critical points, K={K}, L={L}, lam={lam:g}, n={n}, d={width} "
                        f"(lam_max={report['lam_max']:.4g}; n_negative: eig < -{tol:g} max|eig|)")
    for col in HESSIAN_COLUMNS:
        table.add_column(col, justify="right")
    for row in report["critical_points"]:
        table.add_row(*(row[c] if isinstance(row[c], str) else f"{row[c]:.4g}" for c in HESSIAN_COLUMNS))
    console.print(table)


def _widths(width: list[int], extra: list[str]) -> list[int]:
    """`--width 10 20 40` arrives as width=[10] and extra args ["20", "40"]; also allow `--width 10 --width 20`."""
    out = list(width)
    for a in extra:
        try:
            out.append(int(a))
        except ValueError:
            raise typer.BadParameter(f"widths must be integers, got {a!r}", param_hint="--width") from None
    return out


@app.command("dimension", context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
def dimension_cmd(
    ctx: typer.Context,
    K: int = typer.Option(10, "--K", help="number of classes (DNC has rank K-1)"),
    r: int = typer.Option(5, "--r", help="rank of the low-rank output, 1 <= r < K-1"),
    L: int = typer.Option(2, "--L", help="number of weight matrices W_1..W_L"),
    width: list[int] = typer.Option([10, 20, 40, 80, 160], "--width", help="widths d: --width 10 20 40"),
    count: str = typer.Option("exact", "--count", help=f"one of {', '.join(COUNTS)} (see dimension.py)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object on stdout"),
) -> None:
    """Dimensions of the critical sets of DNC (rank K-1) and a rank-r output vs width, and their ratio
    (Garrod & Keating, Theorem 5)."""
    widths = _widths(width, ctx.args)
    try:
        rows = dimension_ratio(K, r, L, widths, count)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    if as_json:
        typer.echo(json.dumps({"K": K, "r": r, "L": L, "count": count, "limit": ratio_limit(K, r), "rows": rows}))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Critical-set dimensions, K={K}, r={r}, L={L} ({count} count; "
                        f"ratio -> (K-1)/r = {ratio_limit(K, r):.4g})")
    for col in ("width", "dim_dnc", "dim_lowrank", "ratio"):
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(str(row["width"]), str(row["dim_dnc"]), str(row["dim_lowrank"]), f"{row['ratio']:.4f}")
    Console().print(table)
