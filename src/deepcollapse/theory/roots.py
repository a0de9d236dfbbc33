"""Root bracketing for the closed forms: scipy.optimize.brentq, imported on first use.

scipy.optimize costs about a second to import, and most commands (`deepcollapse train`, `--help`)
never solve for a root, so the theory modules call this wrapper instead of importing it at the top.
"""

from __future__ import annotations


def brentq(*args, **kwargs):
    """`scipy.optimize.brentq(*args, **kwargs)`."""
    from scipy.optimize import brentq as _brentq

    return _brentq(*args, **kwargs)
