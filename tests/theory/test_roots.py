"""theory.roots.brentq: Brent's method gives scipy.optimize.brentq's roots, at the closed forms' tolerances."""

import math

import numpy as np
import pytest
from scipy.optimize import brentq as scipy_brentq

from deepcollapse.theory.roots import brentq

EPS = np.finfo(float).eps
CASES = [
    (lambda x: x**3 - 2 * x - 5, 2.0, 3.0),  # Wallis' cubic
    (lambda x: math.cos(x) - x, 0.0, 1.0),
    (lambda x: math.exp(x) - 1e-8, -30.0, 5.0),
    (lambda x: (x - 1e-7) * (x + 3), 0.0, 1.0),  # a root near a small scale
    (lambda x: math.log(x) + 40, 1e-30, 1.0),  # a root spanning decades
    (lambda x: math.tanh(20 * (x - 0.3)), -5.0, 10.0),  # steep, flat far from the root
]


@pytest.mark.parametrize("f, a, b", CASES)
def test_same_root_as_scipy(f, a, b):
    for kw in ({}, {"xtol": 1e-300, "rtol": 4 * EPS, "maxiter": 500}):
        ours, theirs = brentq(f, a, b, **kw), scipy_brentq(f, a, b, **kw)
        assert ours == pytest.approx(theirs, rel=8 * EPS, abs=1e-300), (ours, theirs)


def test_bad_brackets_and_tolerances():
    with pytest.raises(ValueError, match="different signs"):
        brentq(lambda x: x * x + 1, -1.0, 1.0)
    with pytest.raises(ValueError, match="rtol"):
        brentq(lambda x: x, -1.0, 1.0, rtol=EPS)
    with pytest.raises(RuntimeError, match="no convergence"):
        brentq(lambda x: math.atan(x - 0.3) ** 3, -5.0, 10.0, xtol=1e-300, rtol=4 * EPS, maxiter=3)
    assert brentq(lambda x: x - 2.0, 2.0, 5.0) == 2.0  # a root at an end


def test_a_flat_stretch_that_zeroes_the_interpolation_denominator_bisects_like_scipy():
    """f equal at two iterates (a step function with a plateau): the secant's 0 denominator, which
    C turns into inf and scipy then bisects, must bisect here too."""
    f = lambda x: -1.0 if x < 0.3 else (0.0 if x < 0.7 else 1.0)  # noqa: E731
    g = lambda x: math.floor(8 * x) / 8 - 0.3  # noqa: E731  plateaus of equal values
    for h, a, b in ((f, -1.0, 2.0), (g, 0.0, 1.0)):
        assert brentq(h, a, b) == pytest.approx(scipy_brentq(h, a, b), rel=8 * EPS)
