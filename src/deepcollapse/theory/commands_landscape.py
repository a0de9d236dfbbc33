"""`deepcollapse theory hessian` and `deepcollapse theory dimension`: the landscape of the deep linear
CE UFM (Garrod & Keating, Theorems 4 and 5)."""

from __future__ import annotations

import json

import typer

from deepcollapse.theory.cli import app
from deepcollapse.theory.dimension import COUNTS, dimension_ratio, ratio_limit
from deepcollapse.theory.landscape import STRUCTURES, critical_point_report, lam_threshold

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
