"""Root bracketing for the closed forms: Brent's method in plain Python.

Brent (1973), *Algorithms for Minimization without Derivatives*, ch. 4: inverse quadratic
interpolation or the secant step where it stays well inside the bracket, bisection otherwise; the
same algorithm and the same stopping rule as `scipy.optimize.brentq`. It is written out here because
`scipy.optimize` costs about half a second to import and every `deepcollapse train` needs a root
(L_DNC, `theory.mse`) for its summary; `tests/theory/test_roots.py` checks it against scipy.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

_EPS = sys.float_info.epsilon


def brentq(f: Callable[[float], float], a: float, b: float, xtol: float = 2e-12, rtol: float = 4 * _EPS,
           maxiter: int = 100) -> float:
    """A root of f in [a, b], where f(a) and f(b) differ in sign, to |error| <= xtol + rtol |x| (as
    `scipy.optimize.brentq(f, a, b, xtol=xtol, rtol=rtol, maxiter=maxiter)`).

    Raises ValueError if f(a) and f(b) have the same sign or rtol is below 4 eps, RuntimeError if
    `maxiter` iterations did not converge.
    """
    if xtol <= 0:
        raise ValueError(f"xtol must be positive, got {xtol}")
    if rtol < 4 * _EPS:
        raise ValueError(f"rtol must be at least 4 eps = {4 * _EPS}, got {rtol}")
    x_pre, x_cur = float(a), float(b)
    f_pre, f_cur = float(f(x_pre)), float(f(x_cur))
    if f_pre == 0:
        return x_pre
    if f_cur == 0:
        return x_cur
    if math.copysign(1.0, f_pre) == math.copysign(1.0, f_cur):
        raise ValueError(f"f(a) and f(b) must have different signs, got f({a}) = {f_pre}, f({b}) = {f_cur}")
    x_blk = f_blk = s_pre = s_cur = 0.0
    for _ in range(maxiter):
        if f_pre != 0 and f_cur != 0 and math.copysign(1.0, f_pre) != math.copysign(1.0, f_cur):
            x_blk, f_blk = x_pre, f_pre  # the other end of the bracket
            s_pre = s_cur = x_cur - x_pre
        if abs(f_blk) < abs(f_cur):  # keep the best point in x_cur
            x_pre, x_cur, x_blk = x_cur, x_blk, x_cur
            f_pre, f_cur, f_blk = f_cur, f_blk, f_cur
        delta = (xtol + rtol * abs(x_cur)) / 2
        s_bis = (x_blk - x_cur) / 2
        if f_cur == 0 or abs(s_bis) < delta:
            return x_cur
        if abs(s_pre) > delta and abs(f_cur) < abs(f_pre):
            try:
                if x_pre == x_blk:  # secant
                    s_try = -f_cur * (x_cur - x_pre) / (f_cur - f_pre)
                else:  # inverse quadratic interpolation
                    d_pre = (f_pre - f_cur) / (x_pre - x_cur)
                    d_blk = (f_blk - f_cur) / (x_blk - x_cur)
                    s_try = -f_cur * (f_blk * d_blk - f_pre * d_pre) / (d_blk * d_pre * (f_blk - f_pre))
            except ZeroDivisionError:  # C's inf / nan here fails the test below: bisect
                s_try = math.inf
            if 2 * abs(s_try) < min(abs(s_pre), 3 * abs(s_bis) - delta):  # a good short step
                s_pre, s_cur = s_cur, s_try
            else:
                s_pre = s_cur = s_bis
        else:
            s_pre = s_cur = s_bis
        x_pre, f_pre = x_cur, f_cur
        x_cur += s_cur if abs(s_cur) > delta else (delta if s_bis > 0 else -delta)
        f_cur = float(f(x_cur))
    raise RuntimeError(f"brentq: no convergence in {maxiter} iterations (last x = {x_cur}, f = {f_cur})")
