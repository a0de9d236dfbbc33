"""Tests of deepcollapse.theory.dimension (Garrod & Keating, Theorem 5) and the `dimension` command."""


import numpy as np
import pytest

from deepcollapse.theory import dimension as dm
from deepcollapse.theory import landscape as ls
from deepcollapse.theory.factors import balanced_factors
from deepcollapse.theory.hessian import dense_hessian


def test_manifold_dimensions_of_known_cases():
    assert dm.stiefel_dim(1, 5) == 4  # the sphere S^4
    assert dm.stiefel_dim(4, 4) == 6  # O(4)
    assert dm.grassmann_dim(1, 5) == 4  # RP^4
    assert dm.grassmann_dim(3, 3) == 0
    assert dm.fibre_dimension(2, (3, 5), 2) == (6 - 3) + (10 - 3)
    assert dm.fibre_dimension(2, 5, 2, count="paper") == 2 * 2 * 3
    assert dm.fibre_dimension(2, 5, 2, count="paper", equal_singular_values=False) == 2 * 7


@pytest.mark.parametrize("L,width", [(1, 4), (2, 3), (2, 5), (3, 4)])
def test_orbit_dimension_matches_closed_form_for_dnc_pairs_and_distinct_singular_values(L, width):
    K, n = 4, 2
    rng = np.random.default_rng(L * 10 + width)
    U = np.linalg.qr(rng.standard_normal((K, 2)))[0]
    V = np.linalg.qr(rng.standard_normal((K * n, 2)))[0]
    cases = [(ls.logits("dnc", K, n, 3.0), K - 1), (ls.logits("pairs", K, n, 2.0), K // 2),
             (U @ np.diag([3.0, 1.2]) @ V.T, 2)]
    for Z, r in cases:
        p = balanced_factors(Z, L, width, 1.0, 1.0)
        assert dm.orbit_dimension(p) == dm.fibre_dimension(r, width, L)


@pytest.mark.parametrize("structure,L,width", [("dnc", 2, 4), ("dnc", 3, 5), ("pairs", 2, 5)])
def test_critical_set_dimension_equals_orbit_dimension_at_critical_points(structure, L, width):
    K, n, lam = 4, 1, 1e-3
    p = ls.critical_point(structure, K, L, lam, n, width)
    r = K - 1 if structure == "dnc" else K // 2
    args = ls.ce_args(K, n, lam)
    upper = dm.critical_set_dimension(dense_hessian(ls.ce_loss, p, args), p)
    lower = dm.orbit_dimension(p)
    assert upper == lower == dm.fibre_dimension(r, width, L)
    if structure == "dnc":  # the paper's Grassmannian count is strictly smaller than the measured one
        assert dm.fibre_dimension(r, width, L, count="paper") == upper - L * r * (r - 1) // 2


def test_theorem5_paper_count_ratio_increases_from_below_one_to_its_limit():
    K, r, L = 10, 5, 2
    widths = [10, 11, 12, 20, 40, 80, 160, 10_000]
    rows = dm.dimension_ratio(K, r, L, widths, count="paper")
    ratios = np.array([row["ratio"] for row in rows])
    assert ratios[0] < 1 < ratios[-1]
    assert np.all(np.diff(ratios) > 0)
    assert ratios[-1] == pytest.approx(dm.ratio_limit(K, r), rel=1e-3)
    assert rows[0]["dim_dnc"] == L * (K - 1) * (10 - K + 1)


def test_exact_count_ratio_increases_to_the_same_limit_but_starts_at_or_above_one():
    for K, r in [(10, 5), (6, 1), (6, 4), (4, 2)]:
        rows = dm.dimension_ratio(K, r, 3, [K - 1, K, K + 1, 2 * K, 50 * K])
        ratios = np.array([row["ratio"] for row in rows])
        assert np.all(np.diff(ratios) > 0)
        assert ratios[1] == pytest.approx(K * (K - 1) / (r * (2 * K - r - 1)), rel=1e-14)
        assert ratios[0] >= 1 - 1e-14
        assert ratios[-1] < dm.ratio_limit(K, r) and ratios[-1] == pytest.approx(dm.ratio_limit(K, r), rel=0.02)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="r must"):
        dm.dimension_ratio(10, 9, 2, [10])
    with pytest.raises(ValueError, match="width"):
        dm.dimension_ratio(10, 5, 2, [8])
    with pytest.raises(ValueError, match="count"):
        dm.fibre_dimension(2, 4, 2, count="grassmann")
    with pytest.raises(ValueError, match="width d"):
        dm.stiefel_dim(3, 2)


