"""Reference losses of the analytic solutions for a training config (the lines in the loss plots).

L_DNC: the MSE ReLU DNC optimum (Súkeník et al.; `theory.mse.dnc_loss`), any K, class sizes and
per-layer lams. L_SRG: the SRG solution's optimum (`theory.srg.srg_loss`, SPEC.md construction), only
when K = C(r, 2), classes are balanced and L >= 2. Cross-entropy runs get the deep linear CE DNC and
Eq. 5 pair-structure optima (Garrod & Keating; `theory.ce.optimal_scale`). A value that the theory
does not define is left out. Also used for the real networks' heads (`experiments.nets_figures`).
"""

from __future__ import annotations

import functools
import math

from .dufm import per_layer


def triangular_r(K: int) -> int | None:
    """r with K = C(r, 2), or None."""
    r = int(round((1 + math.sqrt(1 + 8 * K)) / 2))
    return r if r * (r - 1) // 2 == K else None


def reference_losses_for(K: int, L: int, sizes, lam_H: float, lam_W, loss: str, activation: str
                         ) -> dict[str, float]:
    """The analytic losses a model with these shapes and weight decays is compared with.

    MSE: L_DNC (`theory.mse.dnc_loss`, any class sizes, per-layer lams) and, with ReLU, K = C(r, 2),
    balanced classes and L >= 2, L_SRG (`theory.srg.srg_loss`). CE, balanced classes: the deep linear
    DNC optimum L_DNC and the Eq. (5) pair optimum L_lowrank (`theory.ce.optimal_scale`) at
    lam_geo = (lam_H prod_l lam_l)^(1/(L+1)), on which the reduced loss of Garrod & Keating's
    Lemma 1 depends alone (SPEC.md). Keys the theory does not define are left out.
    """
    return dict(_references(int(K), int(L), tuple(int(x) for x in sizes), float(lam_H),
                            tuple(per_layer(lam_W, L).tolist()), loss, activation))


@functools.lru_cache(maxsize=256)
def _references(K: int, L: int, sizes: tuple, lam_H: float, lams: tuple, loss: str, activation: str) -> dict:
    sizes = list(sizes)
    out: dict[str, float] = {}
    if min(lams) <= 0 or lam_H <= 0:
        return out
    balanced = len(set(sizes)) == 1
    if loss == "mse":
        from .theory.mse import dnc_loss
        from .theory.srg import srg_loss

        out["L_DNC"] = float(dnc_loss(K, L, sizes, lam_H, lams)[0])
        r = triangular_r(K)
        if r is not None and r >= 3 and balanced and L >= 2 and activation == "relu":
            out["L_SRG"] = float(srg_loss(r, L, sizes[0], lam_H, lams)[0])
    elif balanced:
        from .theory.ce import dnc_structure, optimal_scale, pair_structure

        lam_geo = math.exp((math.log(lam_H) + sum(math.log(x) for x in lams)) / (L + 1))
        out["L_DNC"] = float(optimal_scale(dnc_structure(K), L, lam_geo, n=sizes[0])[1])
        out["L_lowrank"] = float(optimal_scale(pair_structure(K), L, lam_geo, n=sizes[0])[1])
    return out


def reference_losses(cfg, n: int | None = None) -> dict[str, float]:
    """`reference_losses_for` a run config.

    DUFM: its K, L, class sizes and lams (none with fixed data: H_1 is not free). Network: its head
    (K, L, lams, activation, loss) at `n` samples per class (default cfg.n_per_class); none with standard
    weight decay, which regularises the backbone too. A network's loss is at least the DUFM's global
    minimum at the same n (its H_1 is constrained), so below L_DNC means better than every DNC solution.
    """
    if cfg.kind == "net":
        n = cfg.n_per_class if n is None else n
        if cfg.reg != "dufm" or n is None:
            return {}
        return reference_losses_for(cfg.K, cfg.L, [n] * cfg.K, cfg.lam_H_value, list(cfg.lams_W), cfg.loss,
                                    cfg.activation)
    if getattr(cfg, "data", None) is not None:
        return {}
    return reference_losses_for(cfg.K, cfg.L, cfg.sizes, cfg.lam_H, cfg.lams_W, cfg.loss, cfg.activation)


def run_references(res) -> dict[str, float]:
    """The reference losses of a run (`results.TrainResult`), as its figure and table show them:
    `reference_losses` of its first config (a network's at the n per class of its summary)."""
    cfg = res.configs[0]
    n = res.summary[0].get("n_per_class") if res.summary else None
    return reference_losses(cfg, n) if cfg.kind == "net" else reference_losses(cfg)


def summary_references(cfg, n: int | None = None) -> dict:
    """The references of a run's summary: loss_dnc (L_DNC) and loss_lowrank (the best known low-rank
    construction: L_SRG for MSE, the Eq. (5) pairs for CE), None where the theory defines none."""
    refs = reference_losses(cfg, n)
    return {"loss_dnc": refs.get("L_DNC"), "loss_lowrank": refs.get("L_SRG", refs.get("L_lowrank"))}


def best_construction(cfg, n: int | None = None) -> tuple[str | None, float | None]:
    """(name, loss) of the known construction with the lowest loss for a DUFM config
    (`theory.constructions.known_constructions`: DNC, the SRG variants, the Eq. (5) pairs, rank-2, the
    ReLU pairs, as the config allows); (None, None) when it has none. Built once per shape and lams
    (or taken from another process, `prefetch_best_construction`).

    A network config: the DUFM of its head (K, L, width, activation, loss, lam_H, lam_W) at `n` samples
    per class (default n_per_class); none with standard weight decay, as in `reference_losses`.
    """
    key = _best_key(cfg, n)
    if key is None:
        return None, None
    rid = key.run_id()
    if rid not in _BEST:
        _BEST[rid] = _prefetched(rid) or _best_construction(key)
    return _BEST[rid]


def prefetch_best_construction(cfg, future, n: int | None = None) -> None:
    """Let another process build the constructions: `future` (a `concurrent.futures.Future`) will
    hold `best_construction(cfg, n)`, and this process's first `best_construction(cfg, n)` takes its
    result instead of building them (and builds them if the future failed or was cancelled). The
    command line's helper process computes it while the run trains (`cli.helper`)."""
    key = _best_key(cfg, n)
    if key is not None and key.run_id() not in _BEST:
        _PREFETCHED[key.run_id()] = future


def _best_key(cfg, n):
    """The DUFM config (float64, one seed and step) `best_construction` is cached under; None when it
    has no constructions (fixed data, a network's standard weight decay or a head narrower than K)."""
    if cfg.kind == "net":
        from .config import DUFMConfig

        n = cfg.n_per_class if n is None else n
        if cfg.reg != "dufm" or n is None or cfg.width < cfg.K:
            return None
        cfg = DUFMConfig(K=cfg.K, n=int(n), L=cfg.L, width=cfg.width, activation=cfg.activation, loss=cfg.loss,
                         lam_H=cfg.lam_H_value, lam_W=tuple(cfg.lams_W))
    if getattr(cfg, "data", None) is not None:
        return None
    return cfg.model_copy(update={"seeds": 1, "steps": 1, "log_every": 1, "converge": None, "start": None,
                                  "lr": 1.0, "init_scale": 0.0, "dtype": "float64"})


def _prefetched(rid: str) -> tuple[str | None, float | None] | None:
    """The result of a prefetch of `rid` (waited for), or None: none, failed or cancelled."""
    future = _PREFETCHED.pop(rid, None)
    if future is None:
        return None
    try:
        return tuple(future.result())
    except Exception:  # noqa: BLE001 - a dead helper, its error, a cancellation: build them here
        return None


_BEST: dict[str, tuple[str | None, float | None]] = {}
_PREFETCHED: dict[str, object] = {}


def _best_construction(cfg) -> tuple[str | None, float | None]:
    from .theory.constructions import known_constructions

    losses = {}
    for name, build in known_constructions(cfg).items():
        try:
            losses[name] = float(build().loss)
        except ValueError:  # a construction that does not exist at these widths or weight decays
            continue
    if not losses:
        return None, None
    name = min(losses, key=losses.get)
    return name, losses[name]
