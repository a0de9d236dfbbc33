"""Which known structure a trained L-DUFM solution is: invariants that ignore the class order and the
scale, matching up to a permutation of the classes, and a stated tolerance.

A solution is described by the class-mean matrices M_l (d_l x K) of its layers H_1..H_L and of the
output Z (`metrics.layer_class_means`). Its invariants:
  - `cosine_gram(M)`: C_jk = <m_j, m_k> / (||m_j|| ||m_k||), the class-mean Gram with every class
    scaled to norm 1 (scale invariant; a permutation of the classes permutes rows and columns);
  - `norm_spread(M)`: max_k ||m_k|| / min_k ||m_k|| - 1 (0 for equinorm means);
  - `sv_profile(M)`: singular values over the largest one, and the numerical rank at rtol.

Known structures (SPEC.md, "Structures to compare"), each a target cosine Gram per layer:
  - "dnc": decided by `metrics.dnc_verdict`, the project's one found-DNC rule (orthogonal frame for
    the MSE ReLU model, simplex ETF otherwise), not by a second copy of it;
  - "srg(r)" (Súkeník et al., Fig. 1; MSE ReLU, K = C(r, 2)): the class means of H_2..H_(L-1) (H_1
    when L = 2) have the Gram B^T B = 2 I + A(T(r)) of the triangular graph: cosine 1/2 between
    classes whose edges of K_r share a vertex, 0 otherwise; rank r;
  - "pairs" (Garrod & Keating, Eq. (5); cross-entropy): the class-mean logits Z are paired, cosine -1
    within a pair, 0 across (odd K: one class alone); rank ceil(K/2);
  - "partial(m)" (Garrod & Keating, Sec. 5, the ranks between the pairs and DNC): a simplex on m
    classes (cosine -1/(m-1)) plus pairs on the other K - m, 0 across; rank m - 1 + (K - m)/2;
    the two blocks may have different scales, so the norm spread is not tested;
  - "rank2" (Garrod & Keating, Sec. 3.2): the class-mean logits have rank 2 and are diagonally
    superior (column k largest in entry k: every class mean is classified correctly); a family, tested
    by that property, not by a Gram.
A template matches when some permutation pi of the classes, the same for every layer, brings every
entry of every observed cosine Gram within `tol` of the target (max_jk |C_jk - T_pi(j)pi(k)| <= tol)
and the norm spread of those layers is at most `tol` (`match_permutation`: exact backtracking search
with that bound as the pruning rule). TOLERANCE = 0.1 is far below the gaps between the targets'
levels (0.5 for the SRG, 1 for the pairs, 1/(m-1) >= 1/7 for partial(m) at K <= 10; the simplex
level of partial(m) with m >= 11 comes within the tolerance of 0, a limit of that template) and above
what converged float32 runs leave (entries within ~1e-2 of the ideal after 10^4 steps).

When nothing matches, the closest structure is the one with the smallest `spectral_distance`: by the
Hoffman-Wielandt inequality, ||eig(C) - eig(T)||_2 <= min_pi ||C - P_pi T P_pi^T||_F, so this
permutation-free number is a lower bound of every alignment's Frobenius error (divided by K, of its
largest entry error).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepcollapse.metrics import DEFAULT_RANK_RTOL, dnc_kind, dnc_verdict

#: Largest entry deviation of a cosine Gram (and largest norm spread) at which a template matches.
TOLERANCE = 0.1
#: Nodes the backtracking search may visit before it gives up (reported as no match).
SEARCH_BUDGET = 20000


# ---------------------------------------------------------------------------------------------------
# Invariants
# ---------------------------------------------------------------------------------------------------

def _means(M) -> np.ndarray:
    M = np.asarray(M, np.float64)
    if M.ndim != 2 or M.shape[1] < 2:
        raise ValueError(f"class means must be a d x K matrix with K >= 2, got shape {M.shape}")
    return M


def class_norms(M) -> np.ndarray:
    """||m_k||, the norm of every class mean (column of M)."""
    return np.linalg.norm(_means(M), axis=0)


def cosine_gram(M) -> np.ndarray:
    """C = D^-1/2 M^T M D^-1/2 with D = diag(M^T M): the cosine of every pair of class means.

    Independent of the scale of each class; a class mean of norm 0 (a class switched off by a ReLU)
    has a zero row and column, diagonal included, so no template (diagonal 1) can match it.
    """
    M = _means(M)
    n = class_norms(M)
    scale = np.where(n > 1e-12 * max(n.max(), 1e-300), n, np.inf)
    return (M.T @ M) / scale[:, None] / scale[None, :]


def norm_spread(M) -> float:
    """max_k ||m_k|| / min_k ||m_k|| - 1: 0 for equinorm class means, inf if one is 0."""
    n = class_norms(M)
    return float(n.max() / n.min() - 1) if n.min() > 0 else float("inf")


def sv_profile(M) -> np.ndarray:
    """Singular values of the class means over the largest one (descending; zeros if M = 0)."""
    s = np.linalg.svd(_means(M), compute_uv=False)
    return s / s[0] if s[0] > 0 else s


def rank_of(M, rtol: float = DEFAULT_RANK_RTOL) -> int:
    """Numerical rank of the class means at rtol (as `metrics.numerical_rank`: s_j > rtol s_max)."""
    s = sv_profile(M)
    return int(np.sum(s > rtol)) if s[0] > 0 else 0


# ---------------------------------------------------------------------------------------------------
# Matching up to a permutation of the classes
# ---------------------------------------------------------------------------------------------------

def _stack(C) -> np.ndarray:
    C = np.asarray(C, np.float64)
    return C[None] if C.ndim == 2 else C


def match_permutation(C, T, tol: float = TOLERANCE, budget: int = SEARCH_BUDGET) -> np.ndarray | None:
    """A permutation pi with |C[l, j, k] - T[l, pi(j), pi(k)]| <= tol for every layer l and j, k; None
    if there is none (or the search used up `budget` nodes).

    C, T: K x K matrices or stacks (layers x K x K), the same pi for every layer. Exact depth-first
    search: class j is assigned to a free target class whose entries with every class assigned so far
    (and its diagonal) agree within tol. The classes are taken in an order that puts the most
    distinctive first (largest spread of their rows), which prunes early.
    """
    C, T = _stack(C), _stack(T)
    if C.shape != T.shape or C.shape[1] != C.shape[2]:
        raise ValueError(f"C and T must be K x K matrices (or equal stacks), got {C.shape} and {T.shape}")
    K = C.shape[1]
    order = list(np.argsort(-np.std(C, axis=(0, 2)), kind="stable"))
    pi = -np.ones(K, int)
    used = np.zeros(K, bool)
    nodes = [0]

    def extend(depth: int) -> bool:
        if depth == K:
            return True
        j = order[depth]
        done = order[:depth]
        diag_ok = np.all(np.abs(np.diagonal(T, axis1=1, axis2=2) - C[:, j, j][:, None]) <= tol, axis=0)
        ok = diag_ok & ~used
        if done:
            tj = pi[done]
            # candidate t: |C[:, j, done] - T[:, t, pi(done)]| <= tol for all layers and done classes
            diff = np.abs(T[:, :, tj] - C[:, j, done][:, None, :])
            ok &= np.all(diff <= tol, axis=(0, 2))
        for t in np.flatnonzero(ok):
            nodes[0] += 1
            if nodes[0] > budget:
                return False
            pi[j], used[t] = t, True
            if extend(depth + 1):
                return True
            pi[j], used[t] = -1, False
        return False

    return pi.copy() if extend(0) else None


def aligned_deviation(C, T, pi) -> float:
    """max_{l,j,k} |C[l, j, k] - T[l, pi(j), pi(k)]|: the entry error of the alignment pi."""
    C, T = _stack(C), _stack(T)
    pi = np.asarray(pi)
    return float(np.max(np.abs(C - T[:, pi][:, :, pi])))


def spectral_distance(C, T) -> float:
    """max over layers of ||eig(C_l) - eig(T_l)||_2 / K (eigenvalues sorted): a lower bound of the
    largest entry error of every alignment of T with C (Hoffman-Wielandt; module docstring)."""
    C, T = _stack(C), _stack(T)
    K = C.shape[1]
    out = 0.0
    for a, b in zip(C, T):
        ea = np.linalg.eigvalsh((a + a.T) / 2)
        eb = np.linalg.eigvalsh((b + b.T) / 2)
        out = max(out, float(np.linalg.norm(ea - eb)) / K)
    return out


def _refined_colours(Cq: np.ndarray, placed: list[int]) -> list[int]:
    """Colour refinement (1-dimensional Weisfeiler-Leman) of the classes of the rounded stack Cq with
    the placed classes individualised: a class's colour is refined by the multiset of (colour, entries)
    of its relations to every other class until the partition is stable. Colours are ranks of
    signatures built from entries and placement indices only, so they do not depend on class labels."""
    K = Cq.shape[1]
    colour = [0] * K
    for i, v in enumerate(placed):
        colour[v] = i + 1
    n_colours = len(set(colour))
    for _ in range(K):
        sig = [(colour[v], tuple(sorted((colour[u], *Cq[:, v, u].tolist()) for u in range(K) if u != v)))
               for v in range(K)]
        ranks = {x: r for r, x in enumerate(sorted(set(sig)))}
        colour = [ranks[x] for x in sig]
        if len(ranks) == n_colours:
            break
        n_colours = len(ranks)
    return colour


def canonical_order(C, decimals: int = 1) -> np.ndarray:
    """An order of the classes computed from the entries of C alone (a K x K matrix or a stack).

    Greedy on C rounded to `decimals`: repeatedly take the class with the largest |C| to the classes
    placed so far, most recent first (so partners and blocks come out next to each other), then the
    signed entries, then its colour under colour refinement with the placed classes individualised
    (`_refined_colours`, which separates classes that look alike to the placed ones but not to the
    rest), the lowest index last. Permuting the classes of C permutes the order the same way wherever
    the remaining ties are symmetries of C (tested on DNC, pairs, partial and the SRG Gram). Equality
    of solutions is decided by `match_permutation`, not by this form.
    """
    C = np.round(_stack(C), decimals) + 0.0  # + 0.0: no negative zeros
    K = C.shape[1]
    placed: list[int] = []
    left = list(range(K))
    while left:
        colour = _refined_colours(C, placed)

        def key(j, colour=colour):
            to_placed = C[:, j, placed[::-1]]
            return (tuple(np.abs(to_placed).T.ravel()), tuple(to_placed.T.ravel()), colour[j], -j)
        best = max(left, key=key)
        placed.append(best)
        left.remove(best)
    return np.asarray(placed)


def canonical_gram(C, decimals: int = 1) -> np.ndarray:
    """C (or a stack) with rows and columns in `canonical_order`."""
    o = canonical_order(C, decimals)
    S = _stack(C)[:, o][:, :, o]
    return S[0] if np.ndim(C) == 2 else S


# ---------------------------------------------------------------------------------------------------
# The known structures
# ---------------------------------------------------------------------------------------------------

def srg_gram(r: int) -> np.ndarray:
    """Cosine Gram of the SRG class means: B^T B / 2 = I + A(T(r)) / 2 (`theory.srg.incidence_matrix`)."""
    from deepcollapse.theory.srg import incidence_matrix

    B = incidence_matrix(r)
    return B.T @ B / 2.0


def pairs_gram(K: int) -> np.ndarray:
    """Cosine Gram of the Eq. (5) pair logits (`theory.ce.pair_structure`): -1 within a pair."""
    from deepcollapse.theory.ce import pair_structure

    return cosine_gram(pair_structure(K))


def partial_gram(K: int, m: int) -> np.ndarray:
    """Cosine Gram of a simplex on classes 0..m-1 (-1/(m-1)) plus pairs on the other K - m classes."""
    if not 3 <= m <= K - 2 or (K - m) % 2:
        raise ValueError(f"partial(m) needs 3 <= m <= K-2 with K-m even, got K={K}, m={m}")
    T = np.zeros((K, K))
    T[:m, :m] = np.full((m, m), -1.0 / (m - 1)) + np.eye(m) * (1 + 1.0 / (m - 1))
    T[m:, m:] = pairs_gram(K - m)
    return T


@dataclass(frozen=True)
class Template:
    """A known structure as target cosine Grams: layer name -> K x K matrix; `equinorm`: the norm
    spread of those layers must be at most the tolerance too."""

    name: str
    layers: dict
    equinorm: bool = True


def templates(K: int, L: int, activation: str, loss: str) -> list[Template]:
    """The template structures of a model (module docstring); "dnc" and "rank2" are tested apart."""
    from deepcollapse.reference import triangular_r

    out = []
    if loss == "mse" and activation == "relu":
        r = triangular_r(K)
        if r is not None and r >= 3 and L >= 2:
            names = [f"H{l}" for l in range(2, L)] if L >= 3 else ["H1"]
            out.append(Template(f"srg({r})", {n: srg_gram(r) for n in names}))
    if loss == "ce":
        out.append(Template("pairs", {"Z": pairs_gram(K)}, equinorm=K % 2 == 0))  # odd K: a lone class
        for m in range(3, K - 1):
            if (K - m) % 2 == 0:
                out.append(Template(f"partial({m})", {"Z": partial_gram(K, m)}, equinorm=False))
    return out


def template_match(means: dict, t: Template, tol: float = TOLERANCE) -> dict:
    """{"match": bool, "deviation": entry error of the alignment found (None if none),
    "spectral": `spectral_distance` lower bound, "permutation": pi or None} of one template; for an
    equinorm template both numbers are at least the norm spread of its layers."""
    C = np.stack([cosine_gram(means[n]) for n in t.layers])
    T = np.stack(list(t.layers.values()))
    spread = max(norm_spread(means[n]) for n in t.layers) if t.equinorm else 0.0
    spec = max(spectral_distance(C, T), spread)
    pi = match_permutation(C, T, tol) if spec <= tol else None
    dev = None if pi is None else max(aligned_deviation(C, T, pi), spread)
    return {"match": dev is not None and dev <= tol, "spectral": spec, "deviation": dev,
            "permutation": None if pi is None else pi.tolist()}


def is_rank2(means: dict, rtol: float = DEFAULT_RANK_RTOL) -> bool:
    """Garrod & Keating Sec. 3.2's rank-2 structure: the logit class means have rank 2 and column k
    is largest in entry k (`theory.ce.is_diagonally_superior`)."""
    from deepcollapse.theory.ce import is_diagonally_superior

    Z = np.asarray(means["Z"], np.float64)
    return Z.shape[0] == Z.shape[1] and rank_of(Z, rtol) == 2 and is_diagonally_superior(Z)


def classify(means: dict, activation: str, loss: str, rtol: float = DEFAULT_RANK_RTOL,
             tol: float = TOLERANCE, rank_only=("H1",), ignore=(), verdict: dict | None = None) -> dict:
    """The known structure a solution matches, or "new"; and the closest one.

    means: layer name -> class means (d x K) of H1..HL and the output Z (as `engine.dnc_verdict`
    reads them). Returns {"structure": name or "new", "closest": name, "distance": the closest
    structure's entry error (0 for "dnc" and "rank2", which are rules, not templates; else the aligned
    error if a permutation within tol was found, the spectral lower bound otherwise), "ranks":
    {layer: rank}, "tol": tol}. "dnc" is `metrics.dnc_verdict` (rtol, its NC2 tolerance); pass its
    result as `verdict` where it is already computed.
    """
    names = [n for n in means if n.startswith("H")] + ["Z"]
    K = np.asarray(means["Z"]).shape[1]
    L = len(names) - 1
    ranks = {n: rank_of(means[n], rtol) for n in names}
    base = {"ranks": ranks, "tol": float(tol)}
    if verdict is None:
        verdict = dnc_verdict({n: means[n] for n in names}, dnc_kind(activation, loss), rtol=rtol,
                              rank_only=rank_only, ignore=ignore)
    if verdict["found_dnc"]:
        return base | {"structure": "dnc", "closest": "dnc", "distance": 0.0}
    best = ("dnc", float(max(v for v in verdict["nc2"].values() if np.isfinite(v)) if any(
        np.isfinite(v) for v in verdict["nc2"].values()) else np.inf))
    for t in templates(K, L, activation, loss):
        m = template_match(means, t, tol)
        if m["match"]:
            return base | {"structure": t.name, "closest": t.name, "distance": m["deviation"]}
        d = m["spectral"] if m["deviation"] is None else m["deviation"]
        if d < best[1]:
            best = (t.name, d)
    if loss == "ce" and is_rank2(means, rtol):  # after the templates: the K = 4 pairs are rank 2 too
        return base | {"structure": "rank2", "closest": "rank2", "distance": 0.0}
    return base | {"structure": "new", "closest": best[0], "distance": float(best[1])}


def oracle(means: dict, cfg, loss: float | None, verdict: dict | None = None, n: int | None = None,
           tol: float = TOLERANCE) -> dict:
    """The theory's word on one trained lane: its structure (`classify`) and its loss relative to L_DNC
    and to the best known construction of the config (`reference.best_construction`).

    Returns {"structure", "structure_closest", "structure_distance", "loss_vs_dnc" (loss / L_DNC),
    "best_construction" (name), "loss_best" (its loss), "loss_vs_best" (loss / loss_best)}; ratios are
    None where a reference is undefined (fixed data, zero weight decay) or the loss is not finite.
    cfg: a DUFM config, or a network config (its head; n: samples per class, default n_per_class).
    """
    from deepcollapse.reference import best_construction, reference_losses

    c = classify(means, cfg.activation, cfg.loss, cfg.rank_rtol, tol,
                 ignore=("H1",) if getattr(cfg, "data", None) is not None else (), verdict=verdict)
    dnc = reference_losses(cfg, n).get("L_DNC")
    name, best = best_construction(cfg, n)
    ok = loss is not None and np.isfinite(loss)
    return {"structure": c["structure"], "structure_closest": c["closest"], "structure_distance": c["distance"],
            "loss_vs_dnc": loss / dnc if ok and dnc else None, "best_construction": name, "loss_best": best,
            "loss_vs_best": loss / best if ok and best else None}


def same_solution(a: dict, b: dict, tol: float = 2 * TOLERANCE) -> bool:
    """Whether two solutions (layer -> class means, the same layers) agree up to one permutation of
    the classes: equal ranks, every cosine Gram within tol entrywise after the permutation, and norm
    spreads within tol of each other."""
    names = list(a)
    if [rank_of(a[n]) for n in names] != [rank_of(b[n]) for n in names]:
        return False
    if any(abs(norm_spread(a[n]) - norm_spread(b[n])) > tol for n in names
           if np.isfinite(norm_spread(a[n])) and np.isfinite(norm_spread(b[n]))):
        return False
    Ca = np.stack([cosine_gram(a[n]) for n in names])
    Cb = np.stack([cosine_gram(b[n]) for n in names])
    return spectral_distance(Ca, Cb) <= tol and match_permutation(Ca, Cb, tol) is not None


def solution_means(class_means: dict) -> dict:
    """The classifier's layers from `engine.final_class_means` output: H1..HL and Z = Z_L."""
    L = sum(1 for n in class_means if n.startswith("H"))
    return {f"H{l}": class_means[f"H{l}"] for l in range(1, L + 1)} | {"Z": class_means[f"Z{L}"]}


__all__ = ["TOLERANCE", "Template", "aligned_deviation", "canonical_gram", "canonical_order", "class_norms",
           "classify", "cosine_gram", "is_rank2", "match_permutation", "norm_spread", "oracle", "pairs_gram",
           "partial_gram", "rank_of", "same_solution", "solution_means", "spectral_distance", "srg_gram",
           "sv_profile", "template_match", "templates"]
