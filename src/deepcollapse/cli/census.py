"""`deepcollapse census CONFIG [--seeds N] [--from-constructions] [--backend local|ray]`: which solutions
gradient descent finds for one DUFM config, how often, and how they compare with the theory
(`deepcollapse.census`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from ..results import dumps
from ._app import app, config_or_fail, fail


def census_table(summary: dict) -> Table:
    """One row per class: structure, ranks, count, probability (Wilson 95%), losses vs the references."""
    refs = summary["references"]
    t = Table(title=f"census: {summary['n_random']} random seeds"
                    + (f" + {summary['n_from_constructions']} construction starts" if summary["n_from_constructions"] else ""))
    for col in ["class", "structure", "closest (dist.)", "ranks H1..HL, Z", "count", "P (95% CI)", "loss min",
                "loss mean", "min / L_DNC", "min / best", "starts"]:
        t.add_column(col, justify="right")
    for c in summary["classes"]:
        lo, hi = c["probability_ci95"]
        p = "-" if c["probability"] is None else f"{c['probability']:.3f} [{lo:.3f}, {hi:.3f}]"
        ratio = lambda x: "-" if x is None else f"{x:.4f}"
        t.add_row(str(c["class"]), c["structure"], f"{c['closest']} ({c['distance']:.3f})",
                  " ".join(str(v) for v in c["ranks"].values()), str(c["count"]), p, f"{c['loss_min']:.5f}",
                  f"{c['loss_mean']:.5f}", ratio(c["loss_min_vs_dnc"]), ratio(c["loss_min_vs_best"]),
                  ", ".join(f"{k} {v}" for k, v in c["from_constructions"].items()))
    t.caption = ", ".join(f"{k} = {v:.6f}" if isinstance(v, float) else f"{k} = {v}" for k, v in refs.items()) + \
        f"; {summary['converged']} of {summary['n_random']} random lanes converged, {summary['diverged']} diverged"
    return t


@app.command("census")
def census_command(
    config: Path = typer.Argument(..., help="YAML file of DUFMConfig fields (its steps are the cap)"),
    seeds: Optional[int] = typer.Option(None, "--seeds", min=1, help="random seeds 0..N-1 (default: the config's)"),
    from_constructions: bool = typer.Option(False, "--from-constructions",
                                            help="also start at every known construction plus small noise"),
    noise: float = typer.Option(1e-3, "--noise", min=0.0, help="std of the noise added to a construction start"),
    starts: int = typer.Option(5, "--starts", min=1, help="lanes started at each construction"),
    backend: str = typer.Option("local", "--backend", help="local (this process) or ray"),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray cluster to join (with --backend ray)"),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="override a config field: key=value (repeatable)"),
    out: Path = typer.Option(Path("runs"), "--out", help="results root; the census goes to OUT/census-<id>/"),
    by_gram: bool = typer.Option(False, "--split-by-gram",
                                 help="split new solutions of equal ranks by their Grams up to a class permutation"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object on stdout"),
    plot: bool = typer.Option(True, "--plot/--no-plot", help="write census.png/.pdf"),
) -> None:
    """Train many seeds to convergence, name every solution's structure, group them into classes and
    report each class's frequency and loss against L_DNC and the best known construction."""
    from ..config import DUFMConfig

    if backend not in ("local", "ray"):
        fail(f"--backend: must be local or ray, got {backend!r}")
    if ray_address is not None and backend != "ray":
        fail("--ray-address: only used with --backend ray")
    cfg = config_or_fail(config, set_, out)
    if not isinstance(cfg, DUFMConfig):
        fail("a census needs a DUFM config (kind: net is not supported)")
    if cfg.data is not None:
        fail("a census needs free features (data: is set; the constructions and references need H_1 free)")
    from .. import census as cz
    from ..engine import ResourceError

    console = Console(stderr=as_json, width=max(160, Console().width))
    n = seeds if seeds is not None else len(cfg.seed_list)
    ident = cfg.model_copy(update={"seeds": n}) if seeds is not None else cfg
    folder = out / f"census-{ident.run_id()}{'-c' if from_constructions else ''}"
    with console.status(f"census of {n} seeds ({cfg.steps} steps at most) ...") if not as_json else _null():
        try:
            c = cz.run_census(cfg, seeds=seeds, from_constructions=from_constructions, noise=noise, starts=starts,
                              backend=backend, ray_address=ray_address, out=folder, by_gram=by_gram)
        except (ResourceError, ValueError, ModuleNotFoundError) as e:
            fail(" ".join(str(e).split()))
        except RuntimeError as e:
            fail(f"{type(e).__name__}: {' '.join(str(e).split())[:500]}", code=1)
    cz.write_census(c, folder, plot=plot)
    summary = cz.census_summary(c)
    if as_json:
        print(dumps(summary | {"results": str(folder)}))
        return
    console.print(census_table(summary))
    console.print(f"results: {folder}")


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False
