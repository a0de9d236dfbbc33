"""Tests of deepcollapse.metrics against closed forms, constructed collapsed/DNC solutions,
direct NumPy computations and invariances."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepcollapse import metrics as m


def balanced_labels(K, n):
    return np.repeat(np.arange(K), n)


def orthonormal(rng, d, k):
    """d x k matrix with orthonormal columns."""
    Q, _ = np.linalg.qr(rng.normal(size=(d, k)))
    return Q[:, :k]


def simplex_etf(K):
    """K x K simplex ETF: unit-norm columns with cosines -1/(K-1)."""
    return np.sqrt(K / (K - 1)) * (np.eye(K) - np.ones((K, K)) / K)


def np_covariances(H, y, K):
    """Sigma_W, Sigma_B by explicit loops (Papyan et al. definitions, mu_G = mean of all columns)."""
    d, N = H.shape
    mu_G = H.mean(axis=1)
    Sw, Sb = np.zeros((d, d)), np.zeros((d, d))
    for k in range(K):
        Hk = H[:, y == k]
        mu = Hk.mean(axis=1)
        for h in Hk.T:
            Sw += np.outer(h - mu, h - mu) / N
        Sb += np.outer(mu - mu_G, mu - mu_G) / K
    return Sw, Sb


# A hand-computable example: d = 2, K = 2, n = 2.
# class 0: (2, 1), (0, -1) -> mu_0 = (1, 0), deviations +-(1, 1); class 1: (-1, +-1) -> mu_1 = (-1, 0).
# mu_G = 0, Sigma_B = diag(1, 0), Sigma_W = 1/4 [[2, 2], [2, 4]], Sigma_B^+ = diag(1, 0).
H_HAND = np.array([[2.0, 0.0, -1.0, -1.0], [1.0, -1.0, 1.0, -1.0]])
Y_HAND = np.array([0, 0, 1, 1])


def test_hand_example_closed_forms():
    np.testing.assert_allclose(m.class_means(H_HAND, Y_HAND, 2), [[1.0, -1.0], [0.0, 0.0]])
    np.testing.assert_allclose(m.within_class_cov(H_HAND, Y_HAND, 2), [[0.5, 0.5], [0.5, 1.0]])
    np.testing.assert_allclose(m.between_class_cov(H_HAND, Y_HAND, 2), [[1.0, 0.0], [0.0, 0.0]])
    assert float(m.nc1(H_HAND, Y_HAND, 2)) == pytest.approx(0.5 / 2)  # tr(Sw Sb^+) / K
    assert float(m.nc1_trace_ratio(H_HAND, Y_HAND, 2)) == pytest.approx(1.5)
    assert float(m.tcv(H_HAND, Y_HAND, 2)) == pytest.approx(2 + 2 + 1 + 1)
    assert float(m.tcv_normalised(H_HAND, Y_HAND, 2)) == pytest.approx(6 / 10)


def test_nc1_matches_numpy_pinv_imbalanced():
    rng = np.random.default_rng(1)
    K, d = 4, 7
    y = np.repeat(np.arange(K), [2, 3, 5, 4])
    H = rng.normal(size=(d, y.size)) + 2.0 * rng.normal(size=(d, K))[:, y]
    Sw, Sb = np_covariances(H, y, K)
    np.testing.assert_allclose(m.within_class_cov(H, y, K), Sw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m.between_class_cov(H, y, K), Sb, rtol=1e-12, atol=1e-12)
    expected = np.trace(Sw @ np.linalg.pinv(Sb, rcond=1e-10, hermitian=True)) / K
    assert float(m.nc1(H, y, K)) == pytest.approx(expected, rel=1e-10)
    assert float(m.nc1_trace_ratio(H, y, K)) == pytest.approx(np.trace(Sw) / np.trace(Sb), rel=1e-12)
    mu_G = H.mean(axis=1, keepdims=True)
    tcv_np = sum(np.sum((H[:, y == k] - H[:, y == k].mean(1, keepdims=True)) ** 2) for k in range(K))
    assert float(m.tcv(H, y, K)) == pytest.approx(tcv_np, rel=1e-12)
    assert float(m.tcv_normalised(H, y, K)) == pytest.approx(tcv_np / np.sum((H - mu_G) ** 2), rel=1e-12)


def test_global_mean_options_imbalanced():
    y = np.array([0, 0, 0, 1])
    H = np.array([[1.0, 1.0, 1.0, 5.0]])
    assert float(m.global_mean(H)[0]) == pytest.approx(2.0)
    assert float(m.global_mean(H, y, 2, of_class_means=True)[0]) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="of_class_means"):
        m.global_mean(H, of_class_means=True)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_collapsed_features(dtype):
    rng = np.random.default_rng(2)
    K, n, d = 5, 4, 8
    y = balanced_labels(K, n)
    H = (10.0 + rng.normal(size=(d, K)))[:, y].astype(dtype)  # large common offset
    summary = m.layer_summary(H, y, K)
    tol = 1e-20 if dtype == np.float64 else 1e-8
    for key in ("nc1", "nc1_trace", "tcv_norm"):
        assert 0.0 <= float(summary[key]) < tol, key
    assert float(summary["tcv"]) < tol * np.sum(H.astype(np.float64) ** 2)
    assert int(summary["rank_means"]) == K
    assert all(np.isfinite(float(v)) for v in summary.values())


def test_all_zero_layer_defined_and_undefined_values():
    K, n, d = 3, 2, 4
    y = balanced_labels(K, n)
    s = m.layer_summary(np.zeros((d, K * n)), y, K)
    assert float(s["tcv"]) == 0.0
    assert int(s["rank_means"]) == 0
    for key in ("nc1", "nc1_trace", "tcv_norm", "nc2_etf", "nc2_orth"):
        assert np.isnan(float(s[key])), key


def test_equal_class_means_make_nc1_undefined():
    rng = np.random.default_rng(3)
    K, n, d = 3, 4, 5
    y = balanced_labels(K, n)
    H = rng.normal(size=(d, K * n))
    H = H - m.class_means(H, y, K)[:, y] + 3.0  # every class mean = (3, ..., 3)
    assert np.isnan(float(m.nc1(H, y, K)))
    assert np.isnan(float(m.nc1_trace_ratio(H, y, K)))
    assert float(m.tcv_normalised(H, y, K)) == pytest.approx(1.0)


def test_simplex_etf_and_orthogonal_frame():
    rng = np.random.default_rng(4)
    K, d = 5, 9
    Q = orthonormal(rng, d, K)
    etf = 3.0 * Q @ simplex_etf(K) + rng.normal(size=(d, 1))  # rotated, scaled, shifted by mu_G
    ortho = 2.0 * Q  # orthogonal frame, equal norms
    closed = np.sqrt(2 - 2 * np.sqrt((K - 1) / K))  # ||I/sqrt(K) - E/sqrt(K-1)||_F
    assert float(m.nc2_etf_distance(etf)) == pytest.approx(0.0, abs=1e-12)
    assert float(m.nc2_orthogonal_distance(ortho)) == pytest.approx(0.0, abs=1e-12)
    assert float(m.nc2_etf_distance(ortho, centre=False)) == pytest.approx(closed, rel=1e-12)
    assert float(m.nc2_orthogonal_distance(Q @ simplex_etf(K))) == pytest.approx(closed, rel=1e-12)
    # centring an orthogonal frame yields the simplex ETF
    assert float(m.nc2_etf_distance(ortho, centre=True)) == pytest.approx(0.0, abs=1e-12)
    # explicit mu_G: centring the shifted ETF at the wrong point breaks it
    assert float(m.nc2_etf_distance(etf, mu_G=np.zeros(d))) > 0.1
    # unequal norms are not a frame
    assert float(m.nc2_orthogonal_distance(ortho * np.arange(1, K + 1))) > 0.1


def test_nc3_alignment():
    rng = np.random.default_rng(5)
    K, d = 4, 6
    M = rng.normal(size=(d, K))
    Mc = M - M.mean(axis=1, keepdims=True)
    assert float(m.nc3(2.5 * Mc.T, M)) == pytest.approx(0.0, abs=1e-12)
    assert float(m.nc3(-Mc.T, M)) == pytest.approx(2.0, rel=1e-12)
    assert float(m.nc3(0.3 * M.T, M, centre=False)) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="W must be K x d"):
        m.nc3(M, M)


def test_singular_values_and_numerical_rank():
    rng = np.random.default_rng(6)
    s = np.array([5.0, 2.0, 1.0, 1e-5, 0.0])
    A = orthonormal(rng, 7, 5) @ np.diag(s) @ orthonormal(rng, 5, 5).T
    np.testing.assert_allclose(m.singular_values(A), s, atol=1e-12)
    assert int(m.numerical_rank(A)) == 3  # 1e-5 < 1e-3 * 5
    assert int(m.numerical_rank(A, rtol=1e-7)) == 4
    assert int(m.numerical_rank(s[::-1])) == 3  # singular values in any order
    assert int(m.numerical_rank(np.zeros((3, 4)))) == 0
    with pytest.raises(ValueError, match="rtol"):
        m.numerical_rank(A, rtol=-1.0)
    with pytest.raises(ValueError, match="A_or_singular_values"):
        m.numerical_rank(np.zeros((2, 2, 2)))


def test_distance_to_rank_diagonal():
    W = np.diag([3.0, 2.0, 1.0, 0.0])
    assert float(m.distance_to_rank(W, 0)) == pytest.approx(1.0)
    assert float(m.distance_to_rank(W, 1)) == pytest.approx(5 / 14)
    assert float(m.distance_to_rank(W, 2)) == pytest.approx(1 / 14)
    assert float(m.distance_to_rank(W, 3)) == 0.0
    assert float(m.distance_to_rank(W[::-1], 2)) == pytest.approx(1 / 14)
    assert np.isnan(float(m.distance_to_rank(np.zeros((2, 3)), 1)))
    with pytest.raises(ValueError, match="k must be"):
        m.distance_to_rank(W, -1)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**16), c=st.floats(1e-2, 1e2))
def test_permutation_and_scale_invariance(seed, c):
    rng = np.random.default_rng(seed)
    K, n, d = 3, 4, 5
    y = balanced_labels(K, n)
    H = rng.normal(size=(d, K * n)) + 2.0 * rng.normal(size=(d, K))[:, y]
    base = {k: float(v) for k, v in m.layer_summary(H, y, K).items()}
    perm = rng.permutation(K * n)
    permuted = m.layer_summary(H[:, perm], y[perm], K)
    scaled = m.layer_summary(c * H, y, K)
    for key, value in base.items():
        assert float(permuted[key]) == pytest.approx(value, rel=1e-9), key
        expected = c**2 * value if key == "tcv" else value
        assert float(scaled[key]) == pytest.approx(expected, rel=1e-9), key


def test_layer_summary_jit_and_vmap_equal_eager():
    rng = np.random.default_rng(7)
    K, n, d = 4, 3, 6
    y = balanced_labels(K, n)
    lanes = np.stack([
        rng.normal(size=(d, K * n)),
        rng.normal(size=(d, K))[:, y],  # collapsed
        np.zeros((d, K * n)),  # all-zero layer
    ])
    eager = [m.layer_summary(F, y, K) for F in lanes]
    assert set(eager[0]) == set(m.SUMMARY_KEYS)
    jitted = jax.jit(lambda F: m.layer_summary(F, y, K))
    vmapped = jax.jit(jax.vmap(lambda F: m.layer_summary(F, y, K)))(jnp.asarray(lanes))
    for i, F in enumerate(lanes):
        j = jitted(jnp.asarray(F))
        for key in m.SUMMARY_KEYS:
            assert np.shape(vmapped[key]) == (3,)
            np.testing.assert_allclose(j[key], eager[i][key], rtol=1e-10, atol=1e-25, equal_nan=True)
            np.testing.assert_allclose(vmapped[key][i], eager[i][key], rtol=1e-10, atol=1e-25,
                                       equal_nan=True)
    assert not any(np.isnan(float(vmapped[key][1])) for key in m.SUMMARY_KEYS)


def test_found_dnc_orthogonal_and_etf():
    rng = np.random.default_rng(8)
    K, d = 6, 10
    frames = [c * np.eye(d)[:, rng.permutation(d)[:K]] + 1e-5 * rng.normal(size=(d, K))
              for c in (0.5, 1.0, 3.0)]  # non-negative orthogonal frames: ReLU DNC
    assert m.found_dnc(frames, "orthogonal")
    assert m.found_dnc(frames, "etf")  # a centred orthogonal frame is a simplex ETF
    etfs = [c * orthonormal(rng, d, K) @ simplex_etf(K) + rng.normal(size=(d, 1)) for c in (1.0, 2.0)]
    assert m.found_dnc(etfs, "etf")
    assert not m.found_dnc(etfs, "orthogonal")  # an ETF has rank K-1

    # SRG-like low-rank layer: vertex-edge incidence of K_4, r = 4 < K = 6
    r = 4
    edges = [(a, b) for a in range(r) for b in range(a + 1, r)]
    B = np.zeros((r, len(edges)))
    for k, (a, b) in enumerate(edges):
        B[a, k] = B[b, k] = 1.0
    low = np.vstack([B, np.zeros((d - r, K))])
    report = m.dnc_report([frames[0], low, frames[2]], "orthogonal")
    assert report["ranks"] == [K, r, K]
    assert report["rank_ok"] == [True, False, True]
    assert report["found_dnc"] is False
    assert not m.found_dnc([low], "etf")


def test_found_dnc_rejects_full_rank_non_frame_and_bad_input():
    K = 4
    skewed = np.eye(K) + 0.5 * np.ones((K, K))  # rank K, but far from an orthogonal frame
    report = m.dnc_report([skewed], "orthogonal")
    assert report["ranks"] == [K] and report["nc2_ok"] == [False]
    assert not report["found_dnc"]
    assert m.found_dnc([skewed], "orthogonal", nc2_tol=2.0)  # only the tolerance made it fail
    with pytest.raises(ValueError, match="kind"):
        m.found_dnc([skewed], "simplex")
    with pytest.raises(ValueError, match="at least one"):
        m.found_dnc([], "etf")
    with pytest.raises(ValueError, match="K columns"):
        m.found_dnc([skewed, np.eye(5)], "etf")


def test_bad_labels_and_shapes():
    H = np.ones((2, 4))
    with pytest.raises(ValueError, match="0..K-1"):
        m.class_means(H, np.array([0, 1, 2, 3]), 3)
    with pytest.raises(ValueError, match="length N=4"):
        m.class_means(H, np.array([0, 1]), 2)
    with pytest.raises(ValueError, match=r"no sample of class\(es\) \[2\]"):
        m.class_means(H, np.array([0, 1, 0, 1]), 3)
    with pytest.raises(ValueError, match="integer"):
        m.class_means(H, np.array([0.0, 1.0, 0.0, 1.0]), 2)
    with pytest.raises(ValueError, match="K must be"):
        m.class_means(H, np.array([0, 1, 0, 1]), 2.0)
    with pytest.raises(ValueError, match="H must be a 2-D"):
        m.tcv(np.ones(4), np.array([0, 1, 0, 1]), 2)
    with pytest.raises(ValueError, match="K >= 2"):
        m.nc1(H, np.zeros(4, dtype=int), 1)


def test_torch_input():
    torch = pytest.importorskip("torch")
    H = torch.tensor(H_HAND, requires_grad=True)
    y = torch.tensor(Y_HAND)
    assert float(m.nc1(H, y, 2)) == pytest.approx(0.25)
    assert float(m.tcv(H, y, 2)) == pytest.approx(6.0)


def test_weight_summary_of_a_constructed_matrix():
    """W = U diag(3, 2, 1, 0.1) V^T: rank 4 (rtol 1e-3), distance to rank 2 = (1 + 0.01) / 14.01."""
    rng = np.random.default_rng(5)
    U, _ = np.linalg.qr(rng.standard_normal((6, 4)))
    V, _ = np.linalg.qr(rng.standard_normal((5, 4)))
    W = U @ np.diag([3.0, 2.0, 1.0, 0.1]) @ V.T
    out = m.weight_summary(W, 2)
    assert set(out) == set(m.WEIGHT_KEYS)
    assert float(out["dist_rank_K"]) == pytest.approx(1.01 / 14.01, rel=1e-12)
    assert int(out["rank"]) == 4 and int(m.weight_summary(W, 2, rtol=0.05)["rank"]) == 3
    assert float(out["norm"]) == pytest.approx(np.sqrt(14.01), rel=1e-12)
