"""The registry of paper figures: one `Experiment` per figure, looked up by name.

A figure is data (STYLE.md: "a paper figure is a config plus a plot function, registered under a
name"): `configs(size)` gives the run configs it needs (DUFM or network configs, run as sweep points
by `runner.reproduce`; none for a figure of closed forms), `compute(data)` turns the finished runs (or
the closed forms of `params(size)`) into the figure's table, `summarize(data)` says in Markdown what
the figure shows in numbers and `plot(out_dir, data)` draws it. `choices` holds, in a few sentences,
the reasons for the settings the paper does not state; `experiment.json` records the settings derived
from the configs (`describe_configs`), never typed twice. Measurements and findings live in
docs/findings.md, each with the command that reproduces it.

Sizes (parsed in one place, `parse_size`): "smoke" (seconds, CI), "quick" (a 2-core CPU in minutes),
"medium" (real networks that converge on a 2-core CPU in at most 30 minutes) and "full" (the paper's
settings). An experiment lists the sizes it has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

SIZES = ("smoke", "quick", "medium", "full")


def parse_size(size: str | None = None, quick: bool = False, smoke: bool = False) -> str:
    """The size named by `size`, or by the --quick / --smoke flags (default "full"); ValueError for an
    unknown size or contradicting flags."""
    flags = [s for s, on in (("quick", quick), ("smoke", smoke)) if on]
    if size is not None and size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    chosen = ([size] if size is not None else []) + flags
    if len(set(chosen)) > 1:
        raise ValueError(f"give one size, got {', '.join(chosen)}")
    return chosen[0] if chosen else "full"


@dataclass
class Data:
    """Everything one experiment's compute, plot and summary read.

    configs: this size's run configs; points: one row per (point, lane) of them (`sweep.load_points`);
    histories: their tidy training histories; table: the tidy results table written as
    results.parquet/.csv (default: points); extra: anything else (closed-form numbers, matrices);
    params: the parameters of a figure of closed forms (`Experiment.params`).
    """

    name: str
    size: str
    dir: Path
    configs: list = field(default_factory=list)
    params: dict = field(default_factory=dict)
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

    def point_dir(self, run_id: str) -> Path:
        return Path(self.sweep_dir) / "points" / run_id

    def config(self, run_id: str):
        """The config of a point of this experiment."""
        return {c.run_id(): c for c in self.configs}[run_id]


def _no_configs(size: str) -> list:
    return []


def _no_params(size: str) -> dict:
    return {}


@dataclass(frozen=True)
class Experiment:
    """One paper figure; `est_seconds`: estimated 2-core CPU time of each size it has."""

    name: str
    paper: str
    figure: str
    description: str
    plot: Callable[[Path, Data], list]
    summarize: Callable[[Data], str]
    configs: Callable[[str], list] = _no_configs
    compute: Callable[[Data], None] | None = None
    params: Callable[[str], dict] = _no_params
    choices: str = ""
    sizes: tuple[str, ...] = ("smoke", "quick", "full")
    est_seconds: dict = field(default_factory=dict)
    points_from: str | None = None  # reuse (and extend) another experiment's sweep folder

    @property
    def kind(self) -> str:
        return "training" if self.configs is not _no_configs else "theory"

    def check_size(self, size: str) -> str:
        if size not in self.sizes:
            raise ValueError(f"{self.name} has the sizes {', '.join(self.sizes)}, not {size!r}")
        return size


def describe_configs(configs: Sequence) -> dict:
    """The settings of a list of configs, derived from them: {"kind", "fixed": fields equal in every
    config, "varied": field -> sorted distinct values}, fields as config.yaml writes them."""
    if not configs:
        return {}
    dicts = [c.to_dict() for c in configs]
    keys = sorted({k for d in dicts for k in d})
    fixed, varied = {}, {}
    for k in keys:
        vals = [json.dumps(d.get(k), sort_keys=True) for d in dicts]
        if len(set(vals)) == 1:
            fixed[k] = dicts[0].get(k)
        else:
            distinct = [json.loads(v) for v in sorted(set(vals))]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in distinct):
                distinct.sort()
            varied[k] = distinct
    return {"kind": configs[0].kind, "n_configs": len(configs), "fixed": fixed, "varied": varied}


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
    unknown = set(exp.sizes) - set(SIZES)
    if unknown:
        raise ValueError(f"sizes: unknown {sorted(unknown)}; known are {', '.join(SIZES)}")
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


_MODULES = ("sukenik", "garrod", "zangrando", "maps", "nets_figures")


def _load_all() -> None:
    """Import every experiment module (each registers its figures)."""
    import importlib

    for m in _MODULES:
        importlib.import_module(f"deepcollapse.experiments.{m}")
