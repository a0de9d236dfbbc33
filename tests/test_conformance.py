"""Our NC1, NC2 and NC3 next to independent implementations of the definitions that two field tools
document, on fixtures where they must agree (docs/metrics.md: the table and the conversions).

The reference functions below are written from the tools' documented formulas (samples as rows,
X: N x D, class means M: K x D), in plain NumPy, not copied from their code:

- the accumulator library neural-collapse (rhubarbwu): Sigma_W = sum_i (x_i - mu_yi)(x_i - mu_yi)^T / N;
  between-class matrix V_inter = Mc^T Mc / D (D, the feature dimension, not K); global mean = mean of
  the class means; variability_pinv = tr(pinv(V_inter) Sigma_W) / K, variability_ratio =
  tr Sigma_W / tr V_inter, variability_cdnv = mean over pairs of (v_k + v_l) / 2 / ||mu_k - mu_l||^2
  (v_k = mean_{i in k} ||x_i - mu_k||^2), simplex_etf_error = || G/||G||_F - (I - 11^T/K)/sqrt(K-1) ||_F
  with G = Mc Mc^T, self_duality_error = the same with G = W Mc^T;
- nc-toolbox (felixsh): var_c = sum_{i in c} ||x_i - mu_c||^2 / (N_c - 1); nc1_cdnv = coefficient of
  variation (std / mean) of the pairwise CDNVs; nc3_self_duality = || W/||W||_F - Mc/||Mc||_F ||_F
  with Mc centred by the global mean of the samples; Sigma_B = Mc^T Mc / K, Sigma_W as above;
- Papyan, Han, Donoho (2020): NC1 = tr(Sigma_W Sigma_B^+) / K.

Fixtures: balanced Gaussian clusters in float64 with D > K, where every tool's global mean (of the
samples or of the class means) is the same vector and Sigma_B has exactly rank K-1.
"""

import numpy as np
import pytest

from deepcollapse import metrics
from deepcollapse.stats import StreamStats, cdnv_pairs, collapse_metrics

K, n, D = 5, 12, 9


def _fixture(seed):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(K), n)
    X = 2.0 * rng.standard_normal((K, D))[y] + rng.standard_normal((K * n, D)) * rng.uniform(0.3, 1.0, K)[y, None]
    W = rng.standard_normal((K, D))
    return X, y, W


def _ours(X, y, W=None):
    st = StreamStats.zeros(D, K, covariance=True)
    for sl in (slice(0, 17), slice(17, 40), slice(40, None)):
        st = st.accumulate(X[sl].T, y[sl])
    fin = st.finalize()
    return fin, {k: np.asarray(v) for k, v in collapse_metrics(fin, W, feature_dtype=np.float64).items()}


# --- independent references (rows = samples) ------------------------------------------------------

def _means(X, y):
    return np.stack([X[y == k].mean(axis=0) for k in range(K)])


def _sigma_w(X, y, M):
    R = X - M[y]
    return R.T @ R / X.shape[0]


def _etf_error(A, B):
    G = B @ A.T
    G = G / np.linalg.norm(G)
    ideal = (np.eye(K) - np.ones((K, K)) / K) / np.sqrt(K - 1)
    return np.linalg.norm(G - ideal)


def ncacc_reference(X, y, W):
    """The accumulator library's definitions (docstring)."""
    M = _means(X, y)
    Mc = M - M.mean(axis=0)
    Sw = _sigma_w(X, y, M)
    V_inter = Mc.T @ Mc / D
    v = np.array([np.mean(np.sum((X[y == k] - M[k]) ** 2, axis=1)) for k in range(K)])
    i, j = np.triu_indices(K, k=1)
    pairs = (v[i] + v[j]) / 2 / np.sum((M[i] - M[j]) ** 2, axis=1)
    return {"pinv": np.trace(np.linalg.pinv(V_inter) @ Sw) / K, "ratio": np.trace(Sw) / np.trace(V_inter),
            "cdnv": pairs.mean(), "etf": _etf_error(Mc, Mc), "self_duality": _etf_error(Mc, W)}


def nctoolbox_reference(X, y, W):
    """nc-toolbox's definitions (docstring)."""
    M = _means(X, y)
    mu_g = X.mean(axis=0)
    var_c = np.array([np.sum((X[y == c] - M[c]) ** 2) / (np.sum(y == c) - 1) for c in range(K)])
    i, j = np.triu_indices(K, k=1)
    cd = (var_c[i] + var_c[j]) / (2 * np.sum((M[i] - M[j]) ** 2, axis=1))
    Mc = M - mu_g
    Sb = Mc.T @ Mc / K
    return {"cdnv_cov": cd.std() / cd.mean(), "var_c": var_c,
            "nc3": np.linalg.norm(W / np.linalg.norm(W) - Mc / np.linalg.norm(Mc)),
            "sigma_b": Sb, "sigma_w": _sigma_w(X, y, M),
            "papyan_nc1": np.trace(_sigma_w(X, y, M) @ np.linalg.pinv(Sb)) / K}


# --- tests ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_accumulator_library_definitions(seed):
    X, y, W = _fixture(seed)
    _, ours = _ours(X, y, W)
    ref = ncacc_reference(X, y, W)
    # Sigma_B scaled by 1/D instead of 1/K: both NC1 forms are D/K times ours
    np.testing.assert_allclose(ref["pinv"], D / K * ours["nc1"], rtol=1e-9)
    np.testing.assert_allclose(ref["ratio"], D / K * ours["dnc1"], rtol=1e-10)
    np.testing.assert_allclose(ref["cdnv"], ours["nc1_cdnv"], rtol=1e-10)
    np.testing.assert_allclose(ref["etf"], ours["nc2_etf"], rtol=1e-10)
    # self_duality_error is the ETF error of W Mc^T, not our NC3: it equals our NC2 when W = c Mc
    assert abs(ref["self_duality"] - float(ours["nc3"])) > 1e-3
    Mc = _means(X, y) - _means(X, y).mean(axis=0)
    _, dual = _ours(X, y, 3.0 * Mc)
    assert abs(float(dual["nc3"])) < 1e-12
    np.testing.assert_allclose(ncacc_reference(X, y, 3.0 * Mc)["self_duality"], dual["nc2_etf"], rtol=1e-10)


@pytest.mark.parametrize("seed", [0, 3])
def test_nc_toolbox_definitions(seed):
    X, y, W = _fixture(seed)
    fin, ours = _ours(X, y, W)
    ref = nctoolbox_reference(X, y, W)
    np.testing.assert_allclose(ref["nc3"], ours["nc3"], rtol=1e-10)
    np.testing.assert_allclose(ref["sigma_b"], fin.sigma_B, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(ref["sigma_w"], fin.sigma_W, rtol=1e-9, atol=1e-12)
    # unbiased per-class variance: n/(n-1) times ours; the coefficient of variation of the pairwise
    # CDNVs does not see that factor (balanced classes)
    np.testing.assert_allclose(ref["var_c"], n / (n - 1) * np.asarray(fin.class_var), rtol=1e-10)
    pairs = np.asarray(cdnv_pairs(fin))
    np.testing.assert_allclose(ref["cdnv_cov"], pairs.std() / pairs.mean(), rtol=1e-10)
    # Papyan et al.'s NC1 with a plain pseudo-inverse (Sigma_B has exact rank K-1 here)
    np.testing.assert_allclose(ref["papyan_nc1"], ours["nc1"], rtol=1e-8)
    np.testing.assert_allclose(ours["nc1"], metrics.nc1(X.T, y, K), rtol=1e-9)


def test_collapsed_fixture_every_tool_is_zero():
    """Features at their class means, the means a simplex ETF and W = Mc: every NC1 form, NC2 and NC3
    of every tool is 0."""
    E = np.eye(K) - 1.0 / K
    M = np.zeros((K, D))
    M[:, :K] = E
    y = np.repeat(np.arange(K), n)
    X = M[y]
    _, ours = _ours(X, y, M)
    for k in ("nc1", "dnc1", "nc1_cdnv", "nc2_etf", "nc3"):
        assert abs(float(ours[k])) < 1e-12, k
    ref = ncacc_reference(X, y, M)
    for k in ("pinv", "ratio", "cdnv", "etf", "self_duality"):
        assert abs(ref[k]) < 1e-12, k
