"""A census of the solutions gradient descent finds for one DUFM config: which, how often, how good.

`run_census(cfg, seeds=N)` trains N seeds of `cfg` as lanes of one program (`train.train`; with
backend="ray", chunks of seeds as sweep points, `sweep.run_sweep`) until the convergence criterion
holds (`config.Convergence`; the census default `CENSUS_CONVERGENCE` unless the config sets one) and,
with `from_constructions`, also starts `starts_per_construction` lanes at every known construction of
the config plus N(0, noise^2) (`config.Start`, `theory.constructions.known_constructions`).

Every final solution is described by its class-mean invariants and named by `theory.classify`
(the oracle that every run's summary carries: `engine.lane_summary`). Solutions are grouped into
classes: equal structure name and equal class-mean ranks of every layer; with by_gram, the "new" ones
also by cosine Grams of every layer that agree up to one permutation of the classes
(`classify.same_solution`, entry tolerance 2 x `classify.TOLERANCE`). Per class: count and
probability among the random initialisations with a Wilson 95% interval, loss min / mean, loss
relative to L_DNC and to the best known construction, which construction starts ended there, and the
parameters of its lowest-loss member.

Pure parts: `wilson_interval`, `group_solutions`, `census_summary`. Side effects (files, figure) are in
`write_census` and the CLI (`deepcollapse census`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import Convergence, DUFMConfig, Start
from .theory import classify

#: The census's stopping rule when the config gives none (chosen by measurement: docs/census.md).
CENSUS_CONVERGENCE = Convergence(rtol=1e-4, window=2000, stop=True)
#: Std of the noise added to a construction start (each entry), relative to nothing: absolute.
CONSTRUCTION_NOISE = 1e-3
#: Lanes started at every known construction with --from-constructions.
STARTS_PER_CONSTRUCTION = 5
#: Seeds per sweep point with the Ray backend (one task each).
RAY_CHUNK = 64


def wilson_interval(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k/n (95% for the default z); (0, 1) for n = 0.

    centre (p + z^2/2n) / (1 + z^2/n), half-width z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n).
    """
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


@dataclass
class Solution:
    """One final lane: where it started, its loss terms, whether it converged, its oracle row
    (`classify.oracle` fields) and class means (layer -> d x K: H1..HL, Z)."""

    origin: str  # "random" or the construction name it started at
    seed: int
    loss: float | None
    fit: float | None
    reg: float | None
    diverged: bool
    converged: bool
    structure: str | None
    closest: str | None
    distance: float | None
    ranks: dict
    means: dict
    params: dict | None = None  # the DUFM pytree of the lane (kept for class representatives)


@dataclass
class CensusClass:
    """Solutions with the same invariants (module docstring)."""

    structure: str
    ranks: dict
    members: list[int] = field(default_factory=list)  # indices into the census's solutions


@dataclass
class Census:
    config: DUFMConfig
    solutions: list[Solution]
    classes: list[CensusClass]
    references: dict
    settings: dict


def census_configs(cfg: DUFMConfig, seeds: int | None = None, from_constructions: bool = False,
                   noise: float = CONSTRUCTION_NOISE, starts: int = STARTS_PER_CONSTRUCTION,
                   chunk: int | None = None) -> list[tuple[str, DUFMConfig]]:
    """(origin, config) pairs of a census: the random seeds (0..seeds-1, default cfg's seeds; split into
    seed lists of `chunk` when given) with the census's convergence rule, and with `from_constructions`
    `starts` lanes at every known construction plus N(0, noise^2)."""
    from .theory.constructions import known_constructions

    seed_list = list(range(seeds)) if seeds is not None else list(cfg.seed_list)
    if not seed_list:
        raise ValueError("seeds: need at least one seed")
    conv = cfg.converge if cfg.converge is not None else CENSUS_CONVERGENCE
    base = cfg.model_copy(update={"converge": conv, "start": None})
    step = chunk or len(seed_list)
    out = [("random", base.model_copy(update={"seeds": tuple(seed_list[i:i + step])}))
           for i in range(0, len(seed_list), step)]
    if from_constructions:
        for name in known_constructions(base):
            c = DUFMConfig(**(base.to_dict() | {"start": Start(structure=name, noise=noise).model_dump(),
                                                "seeds": starts}))
            out.append((name, c))
    return out


def solutions_of(res, origin: str) -> list[Solution]:
    """The Solutions of a finished run (its summary rows carry the oracle; class means recomputed)."""
    from .engine import lanes_class_means
    from .results import unflatten_params

    means_of = {}  # lane index -> layer -> d x K, one program per config
    for ci in {lane.config_index for lane in res.lanes}:
        idx = [lane.index for lane in res.lanes if lane.config_index == ci]
        m = lanes_class_means(unflatten_params({k: v[idx] for k, v in res.params.items()}), res.configs[ci])
        means_of.update({p: {k: v[j] for k, v in m.items()} for j, p in enumerate(idx)})
    out = []
    for lane, row in zip(res.lanes, res.summary):
        params = means = None
        if not row["diverged"]:
            params = res.lane_params(lane.index)
            means = classify.solution_means(means_of[lane.index])
        out.append(Solution(origin=origin, seed=lane.seed, loss=row["loss"], fit=row["fit"], reg=row["reg"],
                            diverged=row["diverged"], converged=bool(row.get("converged")),
                            structure=row.get("structure"), closest=row.get("structure_closest"),
                            distance=row.get("structure_distance"), ranks=dict(row.get("ranks") or {}),
                            means=means or {}, params=params))
    return out


def group_solutions(solutions: Sequence[Solution], tol: float = 2 * classify.TOLERANCE,
                    by_gram: bool = False) -> list[CensusClass]:
    """Classes of the non-diverged solutions, lowest loss first: equal structure name and equal
    class-mean ranks of every layer. With by_gram, a "new" solution moreover joins only a class whose
    representative (lowest-loss member) it matches up to a permutation of the classes
    (`classify.same_solution` at tol), else it opens a new class; without it (the default) "new"
    solutions of equal ranks are one class: gradient descent ends on continuous families there (in
    the quickstart census almost every "new" solution differed from every other beyond tol), and a
    class per lane says nothing. Sorted by random-init count, then loss."""
    classes: list[CensusClass] = []
    order = sorted((i for i, s in enumerate(solutions) if not s.diverged and s.loss is not None),
                   key=lambda i: solutions[i].loss)
    for i in order:
        s = solutions[i]
        for c in classes:
            if c.structure == s.structure and c.ranks == s.ranks and (
                    s.structure != "new" or not by_gram
                    or classify.same_solution(s.means, solutions[c.members[0]].means, tol)):
                c.members.append(i)
                break
        else:
            classes.append(CensusClass(structure=s.structure, ranks=s.ranks, members=[i]))
    random_count = lambda c: sum(solutions[i].origin == "random" for i in c.members)
    classes.sort(key=lambda c: (-random_count(c), solutions[c.members[0]].loss))
    return classes


def class_row(c: CensusClass, solutions: Sequence[Solution], n_random: int, references: dict) -> dict:
    """The census's report of one class (keys of `--json`'s `classes`)."""
    members = [solutions[i] for i in c.members]
    rnd = [s for s in members if s.origin == "random"]
    losses = np.array([s.loss for s in members], np.float64)
    rep = solutions[c.members[0]]
    dnc, best = references.get("L_DNC"), references.get("loss_best")
    lo, hi = wilson_interval(len(rnd), n_random)
    starts: dict[str, int] = {}
    for s in members:
        if s.origin != "random":
            starts[s.origin] = starts.get(s.origin, 0) + 1
    return {"structure": c.structure, "closest": rep.closest, "distance": rep.distance, "ranks": c.ranks,
            "count": len(rnd), "probability": len(rnd) / n_random if n_random else None,
            "probability_ci95": [lo, hi], "count_all": len(members), "from_constructions": starts,
            "unconverged": sum(not s.converged for s in members),
            "loss_min": float(losses.min()), "loss_mean": float(losses.mean()),
            "loss_min_vs_dnc": float(losses.min()) / dnc if dnc else None,
            "loss_min_vs_best": float(losses.min()) / best if best else None,
            "representative": {"origin": rep.origin, "seed": rep.seed, "loss": rep.loss}}


def census_summary(c: Census) -> dict:
    """The census as one JSON object: settings, references (L_DNC, L_SRG / L_lowrank, the best known
    construction), counts, and `classes` (`class_row`, most frequent first)."""
    n_random = sum(s.origin == "random" for s in c.solutions)
    rows = [class_row(k, c.solutions, n_random, c.references) | {"class": i} for i, k in enumerate(c.classes)]
    return {"config": c.config.to_dict(), "settings": c.settings, "references": c.references,
            "n_random": n_random, "n_from_constructions": len(c.solutions) - n_random,
            "diverged": sum(s.diverged for s in c.solutions if s.origin == "random"),
            "converged": sum(s.converged for s in c.solutions if s.origin == "random"),
            "classes": rows}


def references_of(cfg: DUFMConfig) -> dict:
    """L_DNC and the other reference losses (`reference.reference_losses`), and the best known
    construction (`reference.best_construction`) as best_construction / loss_best."""
    from .reference import best_construction, reference_losses

    name, loss = best_construction(cfg)
    return reference_losses(cfg) | {"best_construction": name, "loss_best": loss}


def run_census(cfg: DUFMConfig, seeds: int | None = None, from_constructions: bool = False,
               noise: float = CONSTRUCTION_NOISE, starts: int = STARTS_PER_CONSTRUCTION,
               backend: str = "local", ray_address: str | None = None, out: str | Path | None = None,
               progress: Callable | None = None, tol: float = 2 * classify.TOLERANCE, by_gram: bool = False
               ) -> Census:
    """Train, classify and group (module docstring). backend "local": every group of lanes in this
    process (`train.train`, nothing written); "ray": sweep points under `out/points/` (`out` needed,
    on a file system every node mounts), read back when done."""
    from .train import train

    if backend not in ("local", "ray"):
        raise ValueError(f"backend: must be local or ray, got {backend!r}")
    pairs = census_configs(cfg, seeds, from_constructions, noise, starts,
                           chunk=RAY_CHUNK if backend == "ray" else None)
    solutions: list[Solution] = []
    if backend == "local":
        for origin, c in pairs:
            solutions += solutions_of(train(c, progress=progress), origin)
    else:
        if out is None:
            raise ValueError("out: the Ray backend writes its points there (a folder every node mounts)")
        from . import results, sweep

        report = sweep.run_sweep([c for _, c in pairs], out, backend="ray", ray_address=ray_address,
                                 progress=progress is not None, max_lanes=RAY_CHUNK)
        if report.failed:
            raise RuntimeError(f"{report.failed} census point(s) failed: {'; '.join(report.errors.values())}")
        for origin, c in pairs:
            solutions += solutions_of(results.load_run(sweep.point_dir(out, c)), origin)
    classes = group_solutions(solutions, tol, by_gram)
    base = pairs[0][1]
    settings = {"seeds": sum(len(c.seed_list) for o, c in pairs if o == "random"), "backend": backend,
                "from_constructions": from_constructions, "noise": noise if from_constructions else None,
                "starts_per_construction": starts if from_constructions else None,
                "convergence": base.converge.model_dump(), "tolerance": classify.TOLERANCE,
                "group_by_gram": by_gram, "group_tolerance": tol if by_gram else None}
    return Census(config=base.model_copy(update={"seeds": settings["seeds"]}), solutions=solutions,
                  classes=classes, references=references_of(base), settings=settings)


# ---- the edges: files and the figure ------------------------------------------------------------------

def write_census(c: Census, out_dir: str | Path, plot: bool = True) -> Path:
    """census.json (`census_summary`), representatives.npz (`class<i>/H1`, `class<i>/W/<l>`: the
    parameters of every class's lowest-loss member), solutions.csv (one row per lane) and, with plot,
    the figure census.png/.pdf, into out_dir."""
    from . import results

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for i, k in enumerate(c.classes):
        rep = c.solutions[k.members[0]]
        arrays |= results.flatten_params(rep.params, prefix=f"class{i}/")
    results.save_npz(out_dir / "representatives.npz", arrays)
    klass = {m: i for i, k in enumerate(c.classes) for m in k.members}
    lines = ["origin,seed,class,structure,closest,distance,loss,fit,reg,converged,diverged," +
             ",".join(f"rank_{n}" for n in _layers(c))]
    for j, s in enumerate(c.solutions):
        lines.append(",".join(str(x) for x in [s.origin, s.seed, klass.get(j, ""), s.structure, s.closest, s.distance,
                                               s.loss, s.fit, s.reg, s.converged, s.diverged,
                                               *[s.ranks.get(n, "") for n in _layers(c)]]))
    results.atomic_write_text(out_dir / "solutions.csv", "\n".join(lines) + "\n")
    if plot:
        plot_census(c, out_dir)
    results.save_json(out_dir / "census.json", census_summary(c))
    return out_dir


def load_census(folder: str | Path, by_gram: bool = False) -> Census:
    """A census read back from its folder (`write_census`) and regrouped (`group_solutions`).

    The lanes come from solutions.csv (origin, seed, losses, structure, ranks); the class means and
    parameters only of the saved class representatives (representatives.npz). Without by_gram the
    regrouping needs nothing more: a class of equal structure and ranks is a union of the saved
    classes, and its lowest-loss member is one of their representatives. by_gram needs every lane's
    class means: ValueError unless every lane was a representative.
    """
    import csv

    from . import results
    from .engine import final_class_means

    folder = Path(folder)
    summary = json.loads((folder / "census.json").read_text())
    cfg = DUFMConfig(**summary["config"])
    arrays = results.load_npz(folder / "representatives.npz")
    with open(folder / "solutions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    rep_of = {}  # lane row index -> saved class index
    for i, row in enumerate(rows):
        k = row["class"]
        if k != "" and int(k) not in rep_of.values() and f"class{k}/H1" in arrays:
            best = min((j for j, r in enumerate(rows) if r["class"] == k), key=lambda j: float(rows[j]["loss"]))
            rep_of[best] = int(k)
    num = lambda x: None if x in ("", "None") else float(x)
    sols = []
    for i, row in enumerate(rows):
        params = means = None
        if i in rep_of:
            params = results.unflatten_params(arrays, prefix=f"class{rep_of[i]}/")
            means = classify.solution_means(final_class_means(params, cfg))
        elif by_gram:
            raise ValueError("load_census(by_gram=True): only the class representatives' class means are saved")
        ranks = {k[5:]: int(v) for k, v in row.items() if k.startswith("rank_") and v != ""}
        sols.append(Solution(origin=row["origin"], seed=int(row["seed"]), loss=num(row["loss"]), fit=num(row["fit"]),
                             reg=num(row["reg"]), diverged=row["diverged"] == "True",
                             converged=row["converged"] == "True", structure=row["structure"],
                             closest=row["closest"], distance=num(row["distance"]), ranks=ranks, means=means or {},
                             params=params))
    settings = dict(summary["settings"], group_by_gram=by_gram)
    return Census(config=cfg, solutions=sols, classes=group_solutions(sols, by_gram=by_gram),
                  references=summary["references"], settings=settings)


def _layers(c: Census) -> list[str]:
    return [f"H{l}" for l in range(1, c.config.L + 1)] + ["Z"]


def gram_layer(means: dict) -> str:
    """The layer a class's figure shows: the hidden layer H2..HL of lowest class-mean rank (H1 if L = 1)."""
    hidden = [n for n in means if n.startswith("H") and n != "H1"] or ["H1"]
    return min(hidden, key=lambda n: (classify.rank_of(means[n]), int(n[1:])))


def plot_census(c: Census, out_dir: str | Path, max_grams: int = 8) -> list[Path]:
    """Left: final loss against the mean class-mean rank of H1..HL, one colour per class, L_DNC and the
    best construction as lines. Right: the cosine Gram (`classify.canonical_gram`) of each class
    representative's lowest-rank hidden layer (`gram_layer`), up to max_grams classes."""
    from .plots import pyplot, save_figure

    plt = pyplot()
    shown = c.classes[:max_grams]
    cols = min(4, max(1, len(shown)))
    rows = max(1, math.ceil(len(shown) / cols))
    fig = plt.figure(figsize=(5 + 2.6 * cols, max(4.0, 2.6 * rows)), layout="constrained")
    gs = fig.add_gridspec(rows, cols + 2)
    ax = fig.add_subplot(gs[:, :2])
    cmap = plt.get_cmap("tab10")
    palette = [cmap(j) if j != 7 else "k" for j in range(10)]  # tab10's grey is kept for the other classes
    rng = np.random.default_rng(0)
    for i, k in enumerate(c.classes):
        xs, ys = [], []
        for m in k.members:
            s = c.solutions[m]
            xs.append(np.mean([s.ranks[f"H{l}"] for l in range(1, c.config.L + 1)]) + rng.uniform(-0.08, 0.08))
            ys.append(s.loss)
        if i < 10:
            ax.scatter(xs, ys, s=12, color=palette[i], label=f"{i}: {k.structure} ({len(k.members)})", alpha=0.7)
        else:
            label = f"{len(c.classes) - 10} other classes" if i == 10 else None
            ax.scatter(xs, ys, s=12, facecolors="none", edgecolors="0.6", label=label, alpha=0.7)
    refs = c.references
    if refs.get("L_DNC") is not None:
        ax.axhline(refs["L_DNC"], color="k", ls="--", lw=1, label=f"L_DNC = {refs['L_DNC']:.4f}")
    if refs.get("loss_best") is not None and refs.get("best_construction") != "dnc":
        ax.axhline(refs["loss_best"], color="tab:red", ls=":", lw=1,
                   label=f"best construction ({refs['best_construction']}) = {refs['loss_best']:.4f}")
    ax.set_xlabel(f"mean class-mean rank of H1..HL (rtol {c.config.rank_rtol:g})")
    ax.set_ylabel("final loss")
    ax.set_title(f"census: K={c.config.K}, L={c.config.L}, {c.config.activation}/{c.config.loss}, "
                 f"{c.settings['seeds']} seeds")
    ax.legend(fontsize=7)
    for i, k in enumerate(shown):
        rep = c.solutions[k.members[0]]
        layer = gram_layer(rep.means)
        g = fig.add_subplot(gs[i // cols, 2 + i % cols])
        g.imshow(classify.canonical_gram(classify.cosine_gram(rep.means[layer])), vmin=-1, vmax=1, cmap="RdBu_r")
        g.set_title(f"{i}: {k.structure}, {layer} rank {rep.ranks[layer]}", fontsize=8)
        g.set_xticks([])
        g.set_yticks([])
    paths = save_figure(fig, out_dir, "census")
    plt.close(fig)
    return paths


__all__ = [
    "CENSUS_CONVERGENCE",
    "CONSTRUCTION_NOISE",
    "STARTS_PER_CONSTRUCTION",
    "Census",
    "CensusClass",
    "Solution",
    "census_configs",
    "census_summary",
    "class_row",
    "group_solutions",
    "plot_census",
    "references_of",
    "run_census",
    "solutions_of",
    "wilson_interval",
    "write_census",
]
