"""The structure classifier on the explicit constructions: each is recognised, also with its classes
permuted and with noise below the tolerance, and none is taken for another; the matcher, the
spectral lower bound and the canonical order on constructed matrices."""

import numpy as np
import pytest

from deepcollapse.config import DUFMConfig
from deepcollapse.theory import classify as C
from deepcollapse.theory.constructions import known_constructions

EXPECTED = {"dnc": "dnc", "srg": "srg", "srg-balanced": "srg", "srg-relaxed": "srg", "pairs": "pairs",
            "rank2": "rank2", "relu-pairs": "pairs"}
CONFIGS = [
    dict(K=10, L=4, width=10, activation="relu", loss="mse"),
    dict(K=6, L=2, width=6, activation="relu", loss="mse"),
    dict(K=10, L=3, width=10, activation="linear", loss="ce", lam_H=1e-3, lam_W=1e-3),
    dict(K=7, L=2, width=7, activation="linear", loss="ce", lam_H=1e-3, lam_W=1e-3),
    dict(K=8, L=3, width=8, activation="relu", loss="ce", lam_H=1e-3, lam_W=1e-3),
]


def _means(params, activation, K, n):
    """Class means of H1..HL and Z of an L-DUFM point (numpy forward; columns class by class)."""
    H = np.asarray(params["H1"])
    out = {}
    W = params["W"]
    for l, Wl in enumerate(W, start=1):
        out[f"H{l}"] = H.reshape(H.shape[0], K, n).mean(-1)
        Z = np.asarray(Wl) @ H
        H = np.maximum(Z, 0) if activation == "relu" else Z
    out["Z"] = Z.reshape(K, K, n).mean(-1)
    return out


def _solutions():
    for kw in CONFIGS:
        cfg = DUFMConfig(n=2, **kw)
        for name, build in known_constructions(cfg).items():
            yield cfg, name, _means(build().params, cfg.activation, cfg.K, 2)


SOLUTIONS = list(_solutions())
IDS = [f"K{c.K}-L{c.L}-{c.activation}-{c.loss}-{n}" for c, n, _ in SOLUTIONS]


def _expected(cfg, name):
    from deepcollapse.reference import triangular_r

    e = EXPECTED[name]
    return f"srg({triangular_r(cfg.K)})" if e == "srg" else e


def _permute(means, rng):
    """Relabel the classes: columns of every layer, and the rows of the output Z (its coordinates are
    the classes)."""
    p = rng.permutation(next(iter(means.values())).shape[1])
    return {k: M[np.ix_(p, p)] if k == "Z" else M[:, p] for k, M in means.items()}


def _noisy(means, rng, level):
    """Every class mean moved by Gaussian noise of `level` times its norm (spread over its entries)."""
    out = {}
    for k, M in means.items():
        norms = np.linalg.norm(M, axis=0, keepdims=True)
        out[k] = M + level * norms * rng.standard_normal(M.shape) / np.sqrt(M.shape[0])
    return out


def test_every_config_has_its_constructions():
    assert {n for _, n, _ in SOLUTIONS} == set(EXPECTED)


@pytest.mark.parametrize("cfg, name, means", SOLUTIONS, ids=IDS)
def test_each_construction_is_recognised_permuted_and_with_noise(cfg, name, means):
    """Noise 2e-4 (relative) is below both tolerances: the rank rtol 1e-3 (rank-2 is a rank rule) and
    the entry tolerance 0.1; the templates and the DNC rule also take noise 0.02."""
    rng = np.random.default_rng(0)
    want = _expected(cfg, name)
    cases = [means, _permute(means, rng), _permute(_noisy(means, rng, 2e-4), rng)]
    if want != "rank2":
        cases.append(_permute(_noisy(means, rng, 0.02), rng))
    for m in cases:
        out = C.classify(m, cfg.activation, cfg.loss)
        assert out["structure"] == want, out
        assert out["closest"] == want
        assert out["distance"] <= C.TOLERANCE


@pytest.mark.parametrize("cfg, name, means", SOLUTIONS, ids=IDS)
def test_no_construction_matches_another_template(cfg, name, means):
    from deepcollapse import metrics

    want = _expected(cfg, name)
    for t in C.templates(cfg.K, cfg.L, cfg.activation, cfg.loss):
        assert C.template_match(means, t)["match"] == (t.name == want), t.name
    judged = metrics.dnc_verdict(means, metrics.dnc_kind(cfg.activation, cfg.loss))["found_dnc"]
    assert judged == (want == "dnc")


def test_noise_above_the_tolerance_is_not_a_match():
    _, _, means = next(s for s in SOLUTIONS if s[1] == "srg" and s[0].K == 10)
    t = C.templates(10, 4, "relu", "mse")[0]
    m = C.template_match(_noisy(means, np.random.default_rng(1), 0.5), t)
    assert not m["match"]
    assert m["spectral"] > 0


def test_partial_structures_are_recognised_and_distinct_from_pairs():
    K, rng = 10, np.random.default_rng(2)
    for m in (4, 6, 8):
        T = C.partial_gram(K, m)
        # class means with this cosine Gram: the factor of T, the simplex block at twice the scale
        w, V = np.linalg.eigh(T)
        M = (V * np.sqrt(np.clip(w, 0, None))).T
        M[:, :m] *= 2.0
        means = _permute({"H1": M, "Z": M}, rng)
        out = C.classify(means, "linear", "ce")
        assert out["structure"] == f"partial({m})"
        assert C.rank_of(M) == m - 1 + (K - m) // 2
    P = C.pairs_gram(K)
    w, V = np.linalg.eigh(P)
    M = (V * np.sqrt(np.clip(w, 0, None))).T
    assert C.classify({"H1": M, "Z": M}, "linear", "ce")["structure"] == "pairs"


def test_match_permutation_recovers_a_permutation_and_rejects_a_cospectral_graph():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((7, 7))
    T = A + A.T
    p = rng.permutation(7)
    Cm = T[np.ix_(p, p)]
    pi = C.match_permutation(Cm, T, tol=1e-9)
    assert pi is not None and C.aligned_deviation(Cm, T, pi) < 1e-12
    np.testing.assert_array_equal(pi, p)
    # the star K_{1,4} and C_4 + K_1 have the same adjacency spectrum but are not isomorphic
    star = np.zeros((5, 5))
    star[0, 1:] = star[1:, 0] = 1
    cyc = np.zeros((5, 5))
    for i in range(4):
        cyc[i, (i + 1) % 4] = cyc[(i + 1) % 4, i] = 1
    G1, G2 = np.eye(5) + 0.3 * star, np.eye(5) + 0.3 * cyc
    assert C.spectral_distance(G1, G2) < 1e-12
    assert C.match_permutation(G1, G2, tol=0.1) is None


def test_spectral_distance_is_a_lower_bound_of_every_alignment():
    rng = np.random.default_rng(4)
    for _ in range(20):
        A, B = rng.standard_normal((2, 6, 6))
        Cm, T = A + A.T, B + B.T
        pi = rng.permutation(6)
        assert C.spectral_distance(Cm, T) <= C.aligned_deviation(Cm, T, pi) + 1e-12


def test_cosine_gram_ignores_the_scale_of_each_class_and_norm_spread_measures_it():
    rng = np.random.default_rng(5)
    M = rng.standard_normal((4, 6))
    D = np.diag(rng.uniform(0.5, 3.0, 6))
    np.testing.assert_allclose(C.cosine_gram(M @ D), C.cosine_gram(M), atol=1e-12)
    np.testing.assert_allclose(np.diag(C.cosine_gram(M)), 1.0)
    E = np.eye(3)
    assert C.norm_spread(E) == 0
    assert C.norm_spread(E @ np.diag([1.0, 1.0, 2.0])) == pytest.approx(1.0)
    E[:, 2] = 0
    assert C.norm_spread(E) == np.inf and C.cosine_gram(E)[2, 2] == 0


@pytest.mark.parametrize("T", [np.eye(6), C.pairs_gram(8), C.partial_gram(10, 4), C.srg_gram(5)],
                         ids=["identity", "pairs", "partial", "srg"])
def test_canonical_gram_is_the_same_for_every_class_order(T):
    rng = np.random.default_rng(6)
    ref = C.canonical_gram(T)
    for _ in range(5):
        p = rng.permutation(T.shape[0])
        np.testing.assert_array_equal(C.canonical_gram(T[np.ix_(p, p)]), ref)


def test_same_solution_up_to_a_class_permutation():
    _, _, srg = next(s for s in SOLUTIONS if s[1] == "srg" and s[0].K == 10)
    _, _, dnc = next(s for s in SOLUTIONS if s[1] == "dnc" and s[0].K == 10 and s[0].loss == "mse")
    rng = np.random.default_rng(7)
    assert C.same_solution(srg, _permute(_noisy(srg, rng, 2e-4), rng))
    assert not C.same_solution(srg, dnc)
