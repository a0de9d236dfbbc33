"""The registry of paper figures: one `Experiment` per figure, looked up by name.

An experiment is data plus three functions (STYLE.md: "a paper figure is a config plus a plot
function, registered under a name"):
  - `configs(quick, smoke)`: the DUFM training points (`DUFMConfig`s) the figure needs, run through
    `deepcollapse.sweep.run_sweep` (MLPs on fixed data too: `DUFMConfig(data=...)`); an empty list for
    theory-only figures and for figures with their own training (the real networks, `nets`);
  - `compute(data)` (optional): fills `data.table` / `data.extra` with whatever the plot needs
    (closed forms, final class means, the real networks' training);
  - `plot(out_dir, data) -> [paths]` and `summarize(data) -> markdown`.

Three sizes: "full" (the paper's settings), "quick" (a 2-core CPU in minutes, keeping the qualitative
result where possible) and "smoke" (seconds, for CI). Settings a paper does not state are chosen
once, in the experiment's `settings(size)`, with a comment; `experiment.json` records them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

SIZES = ("full", "quick", "smoke")


def size_name(quick: bool = False, smoke: bool = False) -> str:
    """"smoke" if smoke, else "quick" if quick, else "full"."""
    return "smoke" if smoke else ("quick" if quick else "full")


@dataclass
class Data:
    """Everything one experiment's plot and summary read.

    points: one row per (point, lane) of this run's configs (`sweep.load_points`, filtered to them);
    histories: their tidy training histories (`sweep.load_histories`, filtered); table: the tidy
    results table written as results.parquet/.csv (default: points); extra: anything else
    (closed-form numbers, matrices, arrays).
    """

    name: str
    size: str
    dir: Path
    configs: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    points: Any = None
    histories: Any = None
    table: Any = None
    extra: dict = field(default_factory=dict)
    sweep_dir: Path | None = None

    @property
    def quick(self) -> bool:
        return self.size == "quick"

    @property
    def smoke(self) -> bool:
        return self.size == "smoke"


def _no_configs(quick: bool, smoke: bool) -> list:
    return []


@dataclass(frozen=True)
class Experiment:
    """One paper figure. `est_seconds_*`: estimated CPU time (2 cores) of the quick / full size."""

    name: str
    paper: str
    figure: str
    description: str
    plot: Callable[[Path, Data], list]
    summarize: Callable[[Data], str]
    configs: Callable[[bool, bool], list] = _no_configs
    compute: Callable[[Data], None] | None = None
    settings: Callable[[str], dict] = lambda size: {}  # noqa: E731
    est_seconds_quick: float = 60.0
    est_seconds_full: float = 600.0
    points_from: str | None = None  # reuse (and extend) another experiment's sweep folder
    not_implemented: str | None = None  # why the figure cannot be reproduced (reproduce raises)

    @property
    def kind(self) -> str:
        if self.not_implemented:
            return "not implemented"
        return "training" if self.configs is not _no_configs else ("custom" if self.compute else "theory")


_REGISTRY: dict[str, Experiment] = {}


def register(name: str, **fields) -> Callable:
    """Decorator registering an experiment whose plot function is the decorated function.

        @register("sukenik-fig1", paper=..., figure=..., description=..., summarize=..., ...)
        def plot(out_dir, data): ...

    A second registration under the same name replaces the first (modules may be reloaded).
    """
    def deco(plot_fn: Callable) -> Callable:
        add(Experiment(name=name, plot=plot_fn, **fields))
        return plot_fn

    return deco


def add(exp: Experiment) -> Experiment:
    """Register an `Experiment` object (the non-decorator form of `register`)."""
    if not exp.name or exp.name != exp.name.strip().lower() or " " in exp.name:
        raise ValueError(f"name must be a non-empty lower-case name without spaces, got {exp.name!r}")
    _REGISTRY[exp.name] = exp
    return exp


def get(name: str) -> Experiment:
    """The registered experiment `name` (ValueError listing the known names otherwise)."""
    _load_all()
    if name not in _REGISTRY:
        raise ValueError(f"unknown experiment {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def all_experiments() -> list[Experiment]:
    """Every registered experiment, sorted by name."""
    _load_all()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


_MODULES = ("sukenik", "garrod", "zangrando", "nets_figures")


def _load_all() -> None:
    """Import every experiment module (each registers its figures); a module not written yet is skipped."""
    import importlib

    for m in _MODULES:
        name = f"deepcollapse.experiments.{m}"
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
