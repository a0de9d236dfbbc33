"""Imbalanced deep linear CE UFM (Garrod & Keating, App. A): STEP sizes, SEL matrix, DNC vs pairs."""

import numpy as np
import pytest

from deepcollapse import dufm
from deepcollapse.theory.ce import (
    ScaleProfile,
    ce_compare,
    dnc_structure,
    numerical_rank,
    optimal_scale,
    pair_structure,
    repeat_columns,
    structure_sigma_sum,
)
from deepcollapse.theory.factors import fit_ce_np, reduced_loss
from deepcollapse.theory.imbalanced import imbalanced_compare, sel_matrix, step_sizes


def test_step_sizes():
    assert step_sizes(6, 10, 0.5, 20) == [20, 20, 20, 2, 2, 2]
    assert step_sizes(5, 4, 0.4, 8) == [8, 8, 8, 2, 2]
    assert step_sizes(4, 1, 0.25, 3) == [3, 3, 3, 3]
    with pytest.raises(ValueError, match="rho"):
        step_sizes(5, 2, 0.5, 10)
    with pytest.raises(ValueError, match="n_maj / R"):
        step_sizes(4, 3, 0.5, 10)
    with pytest.raises(ValueError, match="R"):
        step_sizes(4, 0.5, 0.5, 10)


def test_sel_matrix():
    sizes = step_sizes(6, 5, 0.5, 10)
    Z = sel_matrix(sizes)
    assert Z.shape == (6, sum(sizes))
    assert numerical_rank(Z) == 5
    y = dufm.labels(sizes)
    # diagonally superior in the generalised sense: every column of class k has its strict max in row k
    assert np.all(np.argmax(Z, axis=0) == y)
    assert np.all(np.max(Z, axis=0) - np.sort(Z, axis=0)[-2] == pytest.approx(1.0))
    for k in range(6):
        np.testing.assert_allclose(Z[:, y == k], np.outer(dnc_structure(6)[:, k], np.ones(sizes[k])))


def test_weighted_fit_and_singular_values_match_full_output():
    sizes = [7, 7, 2, 2, 1]
    K, L, lam, s = 5, 3, 1e-3, 2.5
    Y = dufm.one_hot(sizes)
    for S in (dnc_structure(K), pair_structure(K)):
        prof = ScaleProfile(S, L, lam, sizes)
        Z = repeat_columns(s * S, sizes)
        np.testing.assert_allclose(prof.fit(s), fit_ce_np(Z, Y), rtol=1e-13)
        np.testing.assert_allclose(prof(s), reduced_loss(Z, Y, L, lam, lam), rtol=1e-12)
    # a pair block with sizes (a, b): one singular value sqrt(2 (a + b)) per unit scale
    p = 2 / (L + 1)
    expect = np.sqrt(2 * 14) ** p + np.sqrt(2 * 4) ** p + np.sqrt(1) ** p
    np.testing.assert_allclose(structure_sigma_sum(pair_structure(K), L, sizes), expect, rtol=1e-12)


def test_balanced_sizes_reproduce_ce_compare():
    a = imbalanced_compare([3] * 6, 3, 1e-3)
    b = ce_compare(6, 3, 1e-3, 3)
    for key in ("loss_dnc", "loss_lowrank", "s_dnc", "s_lowrank", "lowrank_wins"):
        assert a[key] == pytest.approx(b[key], rel=1e-12)


@pytest.mark.parametrize("R", [1, 4, 10])
def test_theorem_a3_small_lam_decided_by_rank_term(R):
    """Theorem A3: at small lam the reg term decides, so the pairs win exactly when their
    sum_i sigma_i^(2/(L+1)) is below the SEL one; for enough layers they always win."""
    sizes = step_sizes(6, R, 0.5, 20)
    for L in (1, 2, 3, 6):
        row = imbalanced_compare(sizes, L, 1e-12)
        reg_pairs = structure_sigma_sum(pair_structure(6), L, sizes)
        reg_sel = structure_sigma_sum(dnc_structure(6), L, sizes)
        assert row["lowrank_wins"] == (reg_pairs < reg_sel)
        assert row["s_dnc"] > 0
    assert imbalanced_compare(sizes, 6, 1e-12)["lowrank_wins"]


def test_optimal_scale_per_class_sizes_is_stationary():
    sizes = step_sizes(4, 3, 0.5, 6)
    s_star, loss = optimal_scale(dnc_structure(4), 2, 1e-3, sizes=sizes)
    prof = ScaleProfile(dnc_structure(4), 2, 1e-3, sizes)
    h = 1e-5 * s_star
    assert abs(prof(s_star + h) - prof(s_star - h)) / (2 * h) < 1e-7
    assert loss == pytest.approx(prof(s_star), rel=1e-14)
    with pytest.raises(ValueError, match="sizes"):
        optimal_scale(dnc_structure(4), 2, 1e-3, sizes=[1, 2, 3])
